using StreamPlatform.Protos.Grpc.Controller;
using static StreamPlatform.UnitTests.Controller.ControllerHarness;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Controller;

public class CreatePartitionsTests
{
    private static CreatePartitionsTopic Topic(string name, int count, params int[][] assignments)
    {
        var t = new CreatePartitionsTopic { Name = name, Count = count };
        foreach (var a in assignments) t.Assignments.Add(new ReplicaList { BrokerIds = { a } });
        return t;
    }

    private static ControllerHarness Cluster()
    {
        var h = new ControllerHarness();
        for (var b = 1; b <= 3; b++) h.RegisterBroker(b);
        Assert.Equal(0, h.CreateTopic("t", 2, 2).ErrorCode);
        return h;
    }

    [Fact]
    public void New_partitions_are_assigned_with_the_topics_replication_factor_and_every_live_replica_in_sync()
    {
        using var h = Cluster();
        var before = h.Controller.State.Topics["t"].Partitions;
        var response = h.Controller.CreatePartitions(new CreatePartitionsRequest { Topics = { Topic("t", 5) } });
        Assert.Equal(0, response.Results.Single().ErrorCode);
        Assert.Equal(h.Controller.State.Epoch, response.MetadataEpoch);
        var after = h.Controller.State.Topics["t"].Partitions;
        Assert.Equal(5, after.Length);
        // Existing partitions are untouched.
        for (var i = 0; i < 2; i++) Assert.Same(before[i], after[i]);
        foreach (var p in after.Skip(2))
        {
            Assert.Equal(2, p.Replicas.Length);
            Assert.Equal((p.Replicas[0], 0, 0), (p.Leader, p.LeaderEpoch, p.PartitionEpoch));
            Assert.Equal(Members(p.Replicas), Members(p.Isr));
        }
        Assert.Equal(5, h.Controller.GetMetadata().Topics.Single().Partitions.Count);
        // Durable through a restart.
        h.Restart();
        Assert.Equal(5, h.Controller.State.Topics["t"].Partitions.Length);
    }

    [Fact]
    public void Manual_assignments_and_fenced_brokers()
    {
        using var h = Cluster();
        h.LetSessionsExpire(3);
        var response = h.Controller.CreatePartitions(new CreatePartitionsRequest { Topics = { Topic("t", 4, [3, 1], [2, 3]) } });
        Assert.Equal(0, response.Results.Single().ErrorCode);
        var p2 = h.Controller.State.Topics["t"].Partitions[2];
        // 3 is fenced: 1 leads and only 1 is in sync; 3 joins once it has caught up.
        Assert.Equal((1, "[3,1]", "[1]"), (p2.Leader, Members(p2.Replicas), Members(p2.Isr)));
        var p3 = h.Controller.State.Topics["t"].Partitions[3];
        Assert.Equal((2, "[2]"), (p3.Leader, Members(p3.Isr)));
    }

    [Fact]
    public void Invalid_requests_get_kafkas_errors_and_change_nothing()
    {
        using var h = Cluster();
        h.LetSessionsExpire(3);
        Assert.Equal(0, h.Controller.CreateTopics(new CreateTopicsRequest
        {
            Topics = { new CreatableTopic { Name = "__consumer_offsets", NumPartitions = 1, ReplicationFactor = 1, Internal = true } },
        }).Results.Single().ErrorCode);
        var epoch = h.Controller.State.Epoch;
        var response = h.Controller.CreatePartitions(new CreatePartitionsRequest
        {
            Topics =
            {
                Topic("t", 2),
                Topic("t", 1),
                Topic("missing", 3),
                Topic("dup", 3),
                Topic("dup", 3),
                Topic("__consumer_offsets", 2),
            },
        });
        Assert.Equal(
            [ErrorCodes.InvalidRequest, ErrorCodes.InvalidRequest, ErrorCodes.UnknownTopicOrPartition, ErrorCodes.InvalidRequest, ErrorCodes.InvalidRequest, ErrorCodes.TopicAuthorizationFailed],
            response.Results.Select(r => (short)r.ErrorCode));
        short One(CreatePartitionsTopic t) => (short)h.Controller.CreatePartitions(new CreatePartitionsRequest { Topics = { t } }).Results.Single().ErrorCode;
        Assert.Equal(ErrorCodes.InvalidPartitions, One(Topic("t", 2)));
        Assert.Equal(ErrorCodes.InvalidPartitions, One(Topic("t", 1)));
        Assert.Equal(ErrorCodes.InvalidPartitions, One(Topic("t", 10_001)));
        Assert.Equal(ErrorCodes.InvalidReplicaAssignment, One(Topic("t", 4, [1, 2])));          // one assignment for two partitions
        Assert.Equal(ErrorCodes.InvalidReplicaAssignment, One(Topic("t", 3, [1])));             // replication factor 1, not 2
        Assert.Equal(ErrorCodes.InvalidReplicaAssignment, One(Topic("t", 3, [1, 1])));          // twice
        Assert.Equal(ErrorCodes.InvalidReplicaAssignment, One(Topic("t", 3, [1, 9])));          // not registered
        var empty = Topic("t", 3);
        empty.Assignments.Add(new ReplicaList());
        Assert.Equal(ErrorCodes.InvalidReplicaAssignment, One(empty));
        Assert.Equal(epoch, h.Controller.State.Epoch);
        h.LetSessionsExpire(2);
        epoch = h.Controller.State.Epoch;
        Assert.Equal(ErrorCodes.InvalidReplicaAssignment, One(Topic("t", 3, [2, 3])));          // all fenced
        Assert.Equal(ErrorCodes.InvalidReplicationFactor, One(Topic("t", 3)));                  // only 1 live for rf 2
        Assert.Equal(epoch, h.Controller.State.Epoch);
        Assert.Equal(2, h.Controller.State.Topics["t"].Partitions.Length);
    }

    [Fact]
    public void Validate_only_checks_without_creating()
    {
        using var h = Cluster();
        var epoch = h.Controller.State.Epoch;
        var ok = h.Controller.CreatePartitions(new CreatePartitionsRequest { ValidateOnly = true, Topics = { Topic("t", 4) } });
        Assert.Equal(0, ok.Results.Single().ErrorCode);
        var bad = h.Controller.CreatePartitions(new CreatePartitionsRequest { ValidateOnly = true, Topics = { Topic("t", 1) } });
        Assert.Equal(ErrorCodes.InvalidPartitions, (short)bad.Results.Single().ErrorCode);
        Assert.Equal(epoch, h.Controller.State.Epoch);
        Assert.Equal(2, h.Controller.State.Topics["t"].Partitions.Length);
    }
}
