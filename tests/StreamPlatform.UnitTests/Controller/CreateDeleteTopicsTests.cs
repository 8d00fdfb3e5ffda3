using Google.Protobuf;
using StreamPlatform.Controller.Metadata;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Controller;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Controller;

public class CreateDeleteTopicsTests
{
    private static ControllerHarness WithBrokers(int count, Action<ControllerOptions>? configure = null)
    {
        var h = new ControllerHarness(configure);
        for (var i = 1; i <= count; i++) h.RegisterBroker(i);
        return h;
    }

    [Theory]
    [InlineData("", ErrorCodes.InvalidTopicException)]
    [InlineData(".", ErrorCodes.InvalidTopicException)]
    [InlineData("..", ErrorCodes.InvalidTopicException)]
    [InlineData("has space", ErrorCodes.InvalidTopicException)]
    [InlineData("ünïcode", ErrorCodes.InvalidTopicException)]
    [InlineData("ok.name_with-chars9", ErrorCodes.None)]
    public void Topic_names_are_validated_like_kafka(string name, short expected)
    {
        using var h = WithBrokers(1);
        Assert.Equal(expected, h.CreateTopic(name, 1, 1).ErrorCode);
    }

    [Fact]
    public void Name_length_limit_is_249()
    {
        using var h = WithBrokers(1);
        Assert.Equal(ErrorCodes.None, h.CreateTopic(new string('a', 249), 1, 1).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidTopicException, h.CreateTopic(new string('b', 250), 1, 1).ErrorCode);
    }

    [Fact]
    public void Validation_codes_for_exists_partitions_replication_and_configs()
    {
        using var h = WithBrokers(2);
        Assert.Equal(ErrorCodes.None, h.CreateTopic("t", 3, 2).ErrorCode);
        Assert.Equal(ErrorCodes.TopicAlreadyExists, h.CreateTopic("t", 3, 2).ErrorCode);
        Assert.Equal(ErrorCodes.None, h.CreateTopic("my.topic", 1, 1).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidTopicException, h.CreateTopic("my_topic", 1, 1).ErrorCode); // collides with my.topic
        Assert.Equal(ErrorCodes.InvalidPartitions, h.CreateTopic("p0", 0, 1).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidPartitions, h.CreateTopic("pneg", -2, 1).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidPartitions, h.CreateTopic("phuge", 10_001, 1).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidReplicationFactor, h.CreateTopic("r3", 1, 3).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidReplicationFactor, h.CreateTopic("r0", 1, 0).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidReplicationFactor, h.CreateTopic("rneg", 1, -5).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidConfig, h.CreateTopic("c1", 1, 1, new Dictionary<string, string> { ["no.such"] = "1" }).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidConfig, h.CreateTopic("c2", 1, 1, new Dictionary<string, string> { ["cleanup.policy"] = "shred" }).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidConfig, h.CreateTopic("c3", 1, 1, new Dictionary<string, string> { ["retention.ms"] = "-2" }).ErrorCode);
        Assert.DoesNotContain("c1", h.Controller.State.Topics.Keys);
    }

    [Fact]
    public void Defaults_come_from_broker_configs_and_results_carry_effective_configs()
    {
        using var h = WithBrokers(3, o =>
        {
            o.BrokerConfigs["num.partitions"] = "4";
            o.BrokerConfigs["default.replication.factor"] = "2";
            o.BrokerConfigs["log.retention.ms"] = "1000";
        });
        var r = h.CreateTopic("d", -1, -1, new Dictionary<string, string> { ["cleanup.policy"] = "compact" });
        Assert.Equal(0, r.ErrorCode);
        Assert.Equal((4, 2), (r.NumPartitions, r.ReplicationFactor));
        Assert.Equal(16, r.TopicId.Length);
        Assert.Equal("compact", r.Configs["cleanup.policy"]);
        Assert.Equal("1000", r.Configs["retention.ms"]);
        Assert.Equal("1073741824", r.Configs["segment.bytes"]);
        var topic = h.Controller.State.Topics["d"];
        Assert.Equal(r.TopicId, TopicIds.ToByteString(topic.TopicId));
        Assert.Equal(["cleanup.policy"], topic.Configs.Keys); // only explicit configs are stored
        Assert.All(topic.Partitions, p => Assert.Equal((p.Replicas[0], p.Replicas.Length), (p.Leader, 2)));
        // Every replica is empty at creation, so every live one is in sync (as in Kafka).
        Assert.All(topic.Partitions, p => Assert.Equal(p.Replicas.ToArray(), p.Isr.ToArray()));
        var snapshot = h.Controller.GetMetadata();
        Assert.Equal("4", snapshot.BrokerConfigs["num.partitions"]);
        Assert.Equal("4", snapshot.StaticBrokerConfigs["num.partitions"]);
        // Catalog defaults are not recorded: readers resolve them (DescribeConfigs: DEFAULT_CONFIG).
        Assert.False(snapshot.BrokerConfigs.ContainsKey("delete.topic.enable"));
    }

    [Fact]
    public void Spread_over_live_brokers_six_partitions_rf3()
    {
        using var h = WithBrokers(3);
        Assert.Equal(0, h.CreateTopic("spread", 6, 3).ErrorCode);
        var partitions = h.Controller.State.Topics["spread"].Partitions;
        foreach (var b in new[] { 1, 2, 3 })
        {
            Assert.Equal(2, partitions.Count(p => p.Leader == b));
            Assert.Equal(6, partitions.Count(p => p.Replicas.Contains(b)));
        }
    }

    [Fact]
    public void Validate_only_writes_nothing()
    {
        using var h = WithBrokers(1);
        var epoch = h.Controller.State.Epoch;
        var request = new CreateTopicsRequest { ValidateOnly = true };
        request.Topics.Add(new CreatableTopic { Name = "v", NumPartitions = 2, ReplicationFactor = 1 });
        request.Topics.Add(new CreatableTopic { Name = "v2", NumPartitions = 2, ReplicationFactor = 9 });
        var results = h.Controller.CreateTopics(request).Results;
        Assert.Equal((0, 2), (results[0].ErrorCode, results[0].NumPartitions));
        Assert.Equal(ErrorCodes.InvalidReplicationFactor, results[1].ErrorCode);
        Assert.Equal(epoch, h.Controller.State.Epoch);
        Assert.Empty(h.Controller.State.Topics);
    }

    [Fact]
    public void Explicit_assignments_are_validated()
    {
        using var h = WithBrokers(3);
        CreateTopicResult Create(string name, int partitions, int rf, params int[][] replicas)
        {
            var topic = new CreatableTopic { Name = name, NumPartitions = partitions, ReplicationFactor = rf };
            for (var p = 0; p < replicas.Length; p++) topic.Assignments[p] = new ReplicaList { BrokerIds = { replicas[p] } };
            var request = new CreateTopicsRequest { Topics = { topic } };
            return h.Controller.CreateTopics(request).Results.Single();
        }
        var ok = Create("ok", -1, -1, [3, 1], [2, 3]);
        Assert.Equal(0, ok.ErrorCode);
        Assert.Equal([3, 2], h.Controller.State.Topics["ok"].Partitions.Select(p => p.Leader));
        Assert.Equal(ErrorCodes.InvalidRequest, Create("a1", 2, -1, [1], [2]).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidReplicaAssignment, Create("a2", -1, -1, [1, 1]).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidReplicaAssignment, Create("a3", -1, -1, [1, 9]).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidReplicaAssignment, Create("a4", -1, -1, [1, 2], [3]).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidReplicaAssignment, Create("a5", -1, -1, [1], []).ErrorCode);
        var gap = new CreatableTopic { Name = "a6", NumPartitions = -1, ReplicationFactor = -1 };
        gap.Assignments[0] = new ReplicaList { BrokerIds = { 1 } };
        gap.Assignments[2] = new ReplicaList { BrokerIds = { 2 } };
        Assert.Equal(ErrorCodes.InvalidReplicaAssignment, h.Controller.CreateTopics(new CreateTopicsRequest { Topics = { gap } }).Results[0].ErrorCode);
    }

    [Fact]
    public void Duplicate_names_in_one_request_are_invalid_request()
    {
        using var h = WithBrokers(1);
        var request = new CreateTopicsRequest();
        request.Topics.Add(new CreatableTopic { Name = "dup", NumPartitions = 1, ReplicationFactor = 1 });
        request.Topics.Add(new CreatableTopic { Name = "dup", NumPartitions = 1, ReplicationFactor = 1 });
        Assert.All(h.Controller.CreateTopics(request).Results, r => Assert.Equal(ErrorCodes.InvalidRequest, r.ErrorCode));
    }

    [Fact]
    public void Delete_by_name_and_by_id_and_unknown_codes()
    {
        using var h = WithBrokers(1);
        var a = h.CreateTopic("a", 1, 1);
        h.CreateTopic("b", 1, 1);
        var request = new DeleteTopicsRequest
        {
            Topics =
            {
                new TopicRef { Name = "b" },
                new TopicRef { TopicId = a.TopicId },
                new TopicRef { Name = "nope" },
                new TopicRef { TopicId = TopicIds.ToByteString(Guid.NewGuid()) },
                new TopicRef { TopicId = ByteString.CopyFrom(1, 2) },
            },
        };
        var results = h.Controller.DeleteTopics(request).Results;
        Assert.Equal([0, 0, ErrorCodes.UnknownTopicOrPartition, ErrorCodes.UnknownTopicId, ErrorCodes.UnknownTopicId], results.Select(r => (short)r.ErrorCode));
        Assert.Equal("a", results[1].Name);
        Assert.Empty(h.Controller.State.Topics);
        var zeroIdWithName = h.CreateTopic("z", 1, 1);
        var byName = h.Controller.DeleteTopics(new DeleteTopicsRequest { Topics = { new TopicRef { Name = "z", TopicId = ByteString.CopyFrom(new byte[16]) } } }).Results.Single();
        Assert.Equal((0, zeroIdWithName.TopicId), ((short)byName.ErrorCode, byName.TopicId));
        // The name is free again.
        Assert.Equal(0, h.CreateTopic("a", 1, 1).ErrorCode);
    }

    [Fact]
    public void Internal_topics_are_internal_by_name_and_never_deleted()
    {
        using var h = WithBrokers(1);
        var offsets = new CreateTopicsRequest();
        offsets.Topics.Add(new CreatableTopic { Name = "__consumer_offsets", NumPartitions = 2, ReplicationFactor = 1, Internal = true });
        // Created like an ordinary topic (no internal flag): still internal, as Kafka's Topic.isInternal is by name.
        offsets.Topics.Add(new CreatableTopic { Name = "__transaction_state", NumPartitions = 1, ReplicationFactor = 1 });
        offsets.Topics.Add(new CreatableTopic { Name = "__not_internal", NumPartitions = 1, ReplicationFactor = 1 });
        Assert.All(h.Controller.CreateTopics(offsets).Results, r => Assert.Equal(0, r.ErrorCode));
        var snapshot = h.Controller.GetMetadata();
        Assert.Equal(["__consumer_offsets", "__transaction_state"], snapshot.Topics.Where(t => t.Internal).Select(t => t.Name).Order().ToArray());

        var offsetsId = h.Controller.State.Topics["__consumer_offsets"].TopicId;
        var results = h.Controller.DeleteTopics(new DeleteTopicsRequest
        {
            Topics =
            {
                new TopicRef { Name = "__consumer_offsets" },
                new TopicRef { TopicId = TopicIds.ToByteString(offsetsId) },
                new TopicRef { Name = "__transaction_state" },
                new TopicRef { Name = "__not_internal" },
            },
        }).Results;
        Assert.Equal([ErrorCodes.TopicAuthorizationFailed, ErrorCodes.TopicAuthorizationFailed, ErrorCodes.TopicAuthorizationFailed, 0], results.Select(r => (short)r.ErrorCode));
        Assert.Equal("Topic __consumer_offsets is an internal topic and cannot be deleted.", results[0].ErrorMessage);
        Assert.Equal("__consumer_offsets", results[1].Name);
        Assert.Equal(["__consumer_offsets", "__transaction_state"], h.Controller.State.Topics.Keys.Order().ToArray());
    }

    [Fact]
    public void Deletion_disabled()
    {
        using var h = WithBrokers(1, o => o.BrokerConfigs["delete.topic.enable"] = "false");
        h.CreateTopic("a", 1, 1);
        var result = h.Controller.DeleteTopics(new DeleteTopicsRequest { Topics = { new TopicRef { Name = "a" } } }).Results.Single();
        Assert.Equal(ErrorCodes.TopicDeletionDisabled, result.ErrorCode);
        Assert.Single(h.Controller.State.Topics);
    }

    [Fact]
    public void Replication_counts_only_live_brokers()
    {
        using var h = WithBrokers(2);
        h.Time.Advance(TimeSpan.FromMilliseconds(3000));
        h.Heartbeat(1, h.Controller.State.Brokers[1].BrokerEpoch);
        h.Time.Advance(TimeSpan.FromMilliseconds(3000));
        h.Controller.ExpireSessions();
        Assert.Equal(ErrorCodes.InvalidReplicationFactor, h.CreateTopic("x", 1, 2).ErrorCode);
        Assert.Equal(0, h.CreateTopic("y", 4, 1).ErrorCode);
        Assert.All(h.Controller.State.Topics["y"].Partitions, p => Assert.Equal(1, p.Leader));
    }
}

public class RequestLimitTests
{
    [Fact]
    public void Partitions_per_request_and_string_lengths_are_bounded()
    {
        using var h = new ControllerHarness(o => { o.MaxPartitionsPerTopic = 10; o.MaxPartitionsPerRequest = 15; });
        h.RegisterBroker(1);
        var request = new CreateTopicsRequest();
        for (var i = 0; i < 3; i++) request.Topics.Add(new CreatableTopic { Name = $"t{i}", NumPartitions = 7, ReplicationFactor = 1 });
        var results = h.Controller.CreateTopics(request).Results;
        Assert.Equal([0, 0, ErrorCodes.ThrottlingQuotaExceeded], results.Select(r => (short)r.ErrorCode));
        Assert.Equal(2, h.Controller.State.Topics.Count);

        var longValue = new string('x', MetadataController.MaxStringChars + 1);
        // A valid list, just too long to keep in every snapshot.
        var longPolicy = string.Join(",", Enumerable.Repeat("delete", 700));
        Assert.Equal(ErrorCodes.InvalidConfig, h.CreateTopic("c", 1, 1, new Dictionary<string, string> { ["cleanup.policy"] = longPolicy }).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidRequest, h.Controller.RegisterBroker(new RegisterBrokerRequest { BrokerId = 2, GrpcEndpoint = longValue }).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidRequest, h.Controller.RegisterGateway(new RegisterGatewayRequest { NodeId = 2, KafkaHost = longValue, KafkaPort = 1 }).ErrorCode);
    }
}
