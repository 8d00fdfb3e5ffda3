using Google.Protobuf;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Controller;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;
using static StreamPlatform.UnitTests.Controller.ControllerHarness;

namespace StreamPlatform.UnitTests.Controller;

public class AlterPartitionTests
{
    /// <summary>Brokers 1-4; topic "t" with one partition on [1, 2, 3], led by 1, ISR [1, 2, 3].</summary>
    private static ControllerHarness Cluster()
    {
        var h = new ControllerHarness();
        for (var b = 1; b <= 4; b++) h.RegisterBroker(b);
        Assert.Equal(0, h.CreateAssigned("t", null, [1, 2, 3]).ErrorCode);
        return h;
    }

    [Fact]
    public void The_leader_shrinks_and_expands_its_isr_each_change_one_record_bumping_only_the_partition_epoch()
    {
        using var h = Cluster();
        var before = h.Controller.State.Topics["t"].Partitions[0];
        Assert.Equal((1, 0, 0, "[1,2,3]"), (before.Leader, before.LeaderEpoch, before.PartitionEpoch, Members(before.Isr)));
        var epoch = h.Controller.State.Epoch;

        var shrink = h.AlterIsr("t", 0, [1, 3]);
        Assert.Equal(0, shrink.ErrorCode);
        // The answer carries the state after the change, for the leader to adopt at once.
        Assert.Equal((1, 0, 1, "[1,3]"), (shrink.LeaderId, shrink.LeaderEpoch, shrink.PartitionEpoch, Members(shrink.Isr)));
        Assert.Equal(epoch + 1, h.Controller.State.Epoch);
        var published = h.Controller.GetMetadata().Topics.Single().Partitions[0];
        Assert.Equal(("[1,3]", 1, 0), (Members(published.Isr), published.PartitionEpoch, published.LeaderEpoch));

        var expand = h.AlterIsr("t", 0, [1, 3, 2]);
        Assert.Equal((0, 2, "[1,3,2]"), (expand.ErrorCode, expand.PartitionEpoch, Members(expand.Isr)));

        // The same members again: no record, the current state answered.
        var same = h.AlterIsr("t", 0, [2, 1, 3]);
        Assert.Equal((0, 2, "[1,3,2]"), (same.ErrorCode, same.PartitionEpoch, Members(same.Isr)));
        Assert.Equal(epoch + 2, h.Controller.State.Epoch);

        // Durable: a restart replays the changes.
        h.Restart();
        var replayed = h.Controller.State.Topics["t"].Partitions[0];
        Assert.Equal((2, "[1,3,2]"), (replayed.PartitionEpoch, Members(replayed.Isr)));
    }

    [Fact]
    public void Stale_proposals_are_refused_with_kafkas_errors_and_change_nothing()
    {
        using var h = Cluster();
        var epoch = h.Controller.State.Epoch;
        Assert.Equal(ErrorCodes.NotLeaderOrFollower, h.AlterIsr("t", 0, [2, 3], sender: 2).ErrorCode);
        Assert.Equal(ErrorCodes.FencedLeaderEpoch, h.AlterIsr("t", 0, [1, 2], leaderEpoch: 1).ErrorCode);
        Assert.Equal(ErrorCodes.FencedLeaderEpoch, h.AlterIsr("t", 0, [1, 2], leaderEpoch: -1).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidUpdateVersion, h.AlterIsr("t", 0, [1, 2], partitionEpoch: 1).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidRequest, h.AlterIsr("t", 0, [2, 3]).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidRequest, h.AlterIsr("t", 0, []).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidRequest, h.AlterIsr("t", 0, [1, 2, 2]).ErrorCode);
        Assert.Equal(ErrorCodes.IneligibleReplica, h.AlterIsr("t", 0, [1, 4]).ErrorCode); // 4 is no replica
        Assert.Equal(ErrorCodes.UnknownTopicOrPartition, UnknownPartition(h));
        Assert.Equal(epoch, h.Controller.State.Epoch);

        // A refused item still tells the leader the current state.
        var refused = h.AlterIsr("t", 0, [1, 2], partitionEpoch: 5);
        Assert.Equal((1, 0, 0, "[1,2,3]"), (refused.LeaderId, refused.LeaderEpoch, refused.PartitionEpoch, Members(refused.Isr)));

        // A proposal made before another change is stale.
        Assert.Equal(0, h.AlterIsr("t", 0, [1, 2]).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidUpdateVersion, h.AlterIsr("t", 0, [1], partitionEpoch: 0).ErrorCode);
    }

    private static short UnknownPartition(ControllerHarness h)
    {
        var request = new AlterPartitionRequest { BrokerId = 1, BrokerEpoch = h.Controller.State.Brokers[1].BrokerEpoch };
        request.Topics.Add(new AlterPartitionTopic { TopicId = TopicIds.ToByteString(h.Controller.State.Topics["t"].TopicId), Partitions = { new AlterPartitionItem { Partition = 7, NewIsr = { 1 } } } });
        return (short)h.Controller.AlterPartition(request).Topics.Single().Partitions.Single().ErrorCode;
    }

    [Fact]
    public void A_fenced_broker_cannot_join_the_isr()
    {
        using var h = Cluster();
        Assert.Equal(0, h.AlterIsr("t", 0, [1, 2]).ErrorCode);
        h.LetSessionsExpire(3);
        var refused = h.AlterIsr("t", 0, [1, 2, 3]);
        Assert.Equal(ErrorCodes.IneligibleReplica, refused.ErrorCode);
        Assert.Equal([1, 2], refused.Isr.ToArray());
        h.RegisterBroker(3);
        Assert.Equal(0, h.AlterIsr("t", 0, [1, 2, 3]).ErrorCode);
    }

    [Fact]
    public void Stale_broker_epoch_and_unknown_topic_ids()
    {
        using var h = Cluster();
        var topicId = TopicIds.ToByteString(h.Controller.State.Topics["t"].TopicId);
        var item = new AlterPartitionItem { Partition = 0, NewIsr = { 1, 2 } };
        var stale = h.Controller.AlterPartition(new AlterPartitionRequest
        {
            BrokerId = 1,
            BrokerEpoch = h.Controller.State.Brokers[1].BrokerEpoch - 1,
            Topics = { new AlterPartitionTopic { TopicId = topicId, Partitions = { item } } },
        });
        Assert.Equal(ErrorCodes.StaleBrokerEpoch, stale.ErrorCode);
        Assert.Empty(stale.Topics);
        Assert.Equal(ErrorCodes.StaleBrokerEpoch, h.Controller.AlterPartition(new AlterPartitionRequest { BrokerId = 9, BrokerEpoch = 1 }).ErrorCode);

        var unknown = h.Controller.AlterPartition(new AlterPartitionRequest
        {
            BrokerId = 1,
            BrokerEpoch = h.Controller.State.Brokers[1].BrokerEpoch,
            Topics =
            {
                new AlterPartitionTopic { TopicId = TopicIds.ToByteString(Guid.NewGuid()), Partitions = { item } },
                new AlterPartitionTopic { TopicId = ByteString.CopyFromUtf8("short"), Partitions = { item } },
                new AlterPartitionTopic { TopicId = topicId, Partitions = { item } },
            },
        });
        Assert.Equal(0, unknown.ErrorCode);
        Assert.Equal([ErrorCodes.UnknownTopicId, ErrorCodes.UnknownTopicId, ErrorCodes.None], unknown.Topics.Select(t => (short)t.Partitions.Single().ErrorCode));
        // One entry for the whole request, the valid part applied.
        Assert.Equal([1, 2], h.Controller.State.Topics["t"].Partitions[0].Isr.ToArray());
    }

    [Fact]
    public void A_leader_elected_from_a_shrunk_isr_is_never_an_out_of_sync_replica()
    {
        using var h = Cluster();
        Assert.Equal(0, h.AlterIsr("t", 0, [1, 3]).ErrorCode);
        h.LetSessionsExpire(1);
        var p = h.Controller.State.Topics["t"].Partitions[0];
        // 2 comes first in replica order but left the ISR: 3 leads.
        Assert.Equal((3, 1, "[3]"), (p.Leader, p.LeaderEpoch, Members(p.Isr)));
        // The old leader's late proposal is refused: it no longer leads, its epoch is old.
        h.RegisterBroker(1);
        Assert.Equal(ErrorCodes.NotLeaderOrFollower, h.AlterIsr("t", 0, [1, 3], sender: 1, leaderEpoch: 0).ErrorCode);
        Assert.Equal(ErrorCodes.FencedLeaderEpoch, h.AlterIsr("t", 0, [3, 1], leaderEpoch: 0).ErrorCode);
        Assert.Equal(0, h.AlterIsr("t", 0, [3, 1]).ErrorCode);
    }
}
