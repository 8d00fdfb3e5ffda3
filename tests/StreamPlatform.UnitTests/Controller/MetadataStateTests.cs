using Google.Protobuf;
using StreamPlatform.Controller.Metadata;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Metadata;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;
using static StreamPlatform.UnitTests.Controller.ControllerHarness;

namespace StreamPlatform.UnitTests.Controller;

public class MetadataStateTests
{
    private static readonly Guid TopicA = Guid.Parse("0f3b6a52-8d1e-4c3a-9b7f-1a2b3c4d5e6f");

    private static MetadataRecord Register(int id, long epoch) => new()
    {
        RegisterBroker = new RegisterBrokerRecord { BrokerId = id, GrpcEndpoint = $"http://b{id}", BrokerEpoch = epoch, IncarnationId = $"inc-{epoch}" },
    };

    private static MetadataRecord Fence(int id, long epoch) => new() { FenceBroker = new FenceBrokerRecord { BrokerId = id, BrokerEpoch = epoch } };

    private static MetadataRecord Create(string name, Guid id, params int[][] replicas)
    {
        var r = new CreateTopicRecord { Name = name, TopicId = TopicIds.ToByteString(id) };
        for (var p = 0; p < replicas.Length; p++)
        {
            var pr = new PartitionRecord { Partition = p, Leader = replicas[p][0] };
            pr.Replicas.AddRange(replicas[p]);
            pr.Isr.AddRange(replicas[p]);
            r.Partitions.Add(pr);
        }
        return new MetadataRecord { CreateTopic = r };
    }

    private static MetadataRecord ChangeLeader(Guid id, int partition, int leader, int epoch) => new()
    {
        ChangePartitionLeader = new ChangePartitionLeaderRecord { TopicId = TopicIds.ToByteString(id), Partition = partition, NewLeader = leader, NewLeaderEpoch = epoch },
    };

    private static MetadataState TwoBrokersOneTopic() => MetadataState.Empty.Apply([Register(1, 1), Register(2, 2), Create("a", TopicA, [1, 2], [2, 1])]);

    [Fact]
    public void Every_record_increments_the_epoch_and_the_snapshot_reflects_the_state()
    {
        var state = TwoBrokersOneTopic();
        Assert.Equal(3, state.Epoch);
        var snapshot = state.ToSnapshot("cluster", 0);
        Assert.Equal(3, snapshot.MetadataEpoch);
        Assert.Equal([1, 2], snapshot.Brokers.Select(b => b.BrokerId));
        var topic = Assert.Single(snapshot.Topics);
        Assert.Equal(TopicA, TopicIds.ToGuid(topic.TopicId));
        Assert.Equal(2, topic.ReplicationFactor);
        Assert.Equal([1, 2], topic.Partitions.Select(p => p.Leader));
    }

    [Fact]
    public void Broker_lifecycle_register_fence_unfence_reregister()
    {
        var s = MetadataState.Empty.Apply(Register(1, 1));
        s = s.Apply(Fence(1, 1));
        Assert.True(s.Brokers[1].Fenced);
        s = s.Apply(new MetadataRecord { UnfenceBroker = new UnfenceBrokerRecord { BrokerId = 1, BrokerEpoch = 1 } });
        Assert.False(s.Brokers[1].Fenced);
        s = s.Apply(Fence(1, 1)).Apply(Register(1, 5));
        Assert.False(s.Brokers[1].Fenced);
        Assert.Equal(5, s.Brokers[1].BrokerEpoch);
        Assert.Equal(5, s.Epoch);
    }

    [Fact]
    public void Illegal_broker_transitions_are_rejected_and_change_nothing()
    {
        var s = MetadataState.Empty.Apply(Register(1, 3));
        Assert.Equal(ErrorCodes.BrokerIdNotRegistered, Assert.Throws<MetadataStateException>(() => s.Apply(Fence(9, 1))).ErrorCode);
        Assert.Equal(ErrorCodes.StaleBrokerEpoch, Assert.Throws<MetadataStateException>(() => s.Apply(Fence(1, 2))).ErrorCode);
        Assert.Equal(ErrorCodes.StaleBrokerEpoch, Assert.Throws<MetadataStateException>(() => s.Apply(Register(1, 3))).ErrorCode);
        Assert.Throws<MetadataStateException>(() => s.Apply(Fence(1, 3)).Apply(Fence(1, 3)));
        Assert.Throws<MetadataStateException>(() => s.Apply(new MetadataRecord { UnfenceBroker = new UnfenceBrokerRecord { BrokerId = 1, BrokerEpoch = 3 } }));
        Assert.Throws<MetadataStateException>(() => s.Apply(new MetadataRecord { RegisterBroker = new RegisterBrokerRecord { BrokerId = -1, GrpcEndpoint = "x", BrokerEpoch = 9 } }));
        Assert.Throws<MetadataStateException>(() => s.Apply(new MetadataRecord()));
        Assert.Equal(1, s.Epoch);
        Assert.False(s.Brokers[1].Fenced);
    }

    [Fact]
    public void Gateway_lifecycle_and_illegal_fences()
    {
        var s = MetadataState.Empty.Apply(new MetadataRecord { RegisterGateway = new RegisterGatewayRecord { NodeId = 0, KafkaHost = "127.0.0.1", KafkaPort = 9092 } });
        s = s.Apply(new MetadataRecord { FenceGateway = new FenceGatewayRecord { NodeId = 0 } });
        Assert.True(s.Gateways[0].Fenced);
        Assert.Throws<MetadataStateException>(() => s.Apply(new MetadataRecord { FenceGateway = new FenceGatewayRecord { NodeId = 0 } }));
        Assert.Throws<MetadataStateException>(() => s.Apply(new MetadataRecord { FenceGateway = new FenceGatewayRecord { NodeId = 5 } }));
        Assert.Throws<MetadataStateException>(() => s.Apply(new MetadataRecord { RegisterGateway = new RegisterGatewayRecord { NodeId = 1, KafkaHost = "h", KafkaPort = 70000 } }));
        s = s.Apply(new MetadataRecord { RegisterGateway = new RegisterGatewayRecord { NodeId = 0, KafkaHost = "127.0.0.1", KafkaPort = 9093 } });
        Assert.False(s.Gateways[0].Fenced);
        Assert.Equal(9093, s.Gateways[0].KafkaPort);
    }

    [Fact]
    public void Illegal_topic_creations_are_rejected()
    {
        var s = TwoBrokersOneTopic();
        Assert.Equal(ErrorCodes.TopicAlreadyExists, Assert.Throws<MetadataStateException>(() => s.Apply(Create("a", Guid.NewGuid(), [1]))).ErrorCode);
        Assert.Equal(ErrorCodes.TopicAlreadyExists, Assert.Throws<MetadataStateException>(() => s.Apply(Create("b", TopicA, [1]))).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidTopicException, Assert.Throws<MetadataStateException>(() => s.Apply(Create("bad name", Guid.NewGuid(), [1]))).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidReplicaAssignment, Assert.Throws<MetadataStateException>(() => s.Apply(Create("b", Guid.NewGuid(), [1, 7]))).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidReplicaAssignment, Assert.Throws<MetadataStateException>(() => s.Apply(Create("b", Guid.NewGuid(), [1, 1]))).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidReplicaAssignment, Assert.Throws<MetadataStateException>(() => s.Apply(Create("b", Guid.NewGuid(), [1, 2], [1]))).ErrorCode);
        var withConfig = Create("b", Guid.NewGuid(), [1]);
        withConfig.CreateTopic.Configs["retention.ms"] = "soon";
        Assert.Equal(ErrorCodes.InvalidConfig, Assert.Throws<MetadataStateException>(() => s.Apply(withConfig)).ErrorCode);
        var zeroId = Create("b", Guid.Empty, [1]);
        Assert.Throws<MetadataStateException>(() => s.Apply(zeroId));
        // Leader on a fenced broker.
        Assert.Throws<MetadataStateException>(() => s.Apply(Fence(1, 1)).Apply(Create("b", Guid.NewGuid(), [1])));
    }

    [Fact]
    public void Leader_changes_need_the_next_epoch_and_an_isr_member_that_is_live()
    {
        var s = TwoBrokersOneTopic();
        var moved = s.Apply(ChangeLeader(TopicA, 0, 2, 1));
        var p = moved.Topics["a"].Partitions[0];
        Assert.Equal((2, 1, 1), (p.Leader, p.LeaderEpoch, p.PartitionEpoch));
        Assert.Throws<MetadataStateException>(() => s.Apply(ChangeLeader(TopicA, 0, 2, 2)));   // skips an epoch
        Assert.Throws<MetadataStateException>(() => s.Apply(ChangeLeader(TopicA, 0, 3, 1)));   // not a replica
        Assert.Throws<MetadataStateException>(() => s.Apply(ChangeLeader(TopicA, 5, 1, 1)));   // no such partition
        Assert.Throws<MetadataStateException>(() => s.Apply(ChangeLeader(Guid.NewGuid(), 0, 1, 1)));
        Assert.Throws<MetadataStateException>(() => s.Apply(Fence(2, 2)).Apply(ChangeLeader(TopicA, 0, 2, 1))); // fenced
        var none = s.Apply(ChangeLeader(TopicA, 0, -1, 1));
        Assert.Equal(-1, none.Topics["a"].Partitions[0].Leader);
        var shrink = ChangeLeader(TopicA, 0, 2, 1);
        shrink.ChangePartitionLeader.NewIsr = new ReplicaSet { BrokerIds = { 2 } };
        Assert.Equal([2], s.Apply(shrink).Topics["a"].Partitions[0].Isr.ToArray());
        var badIsr = ChangeLeader(TopicA, 0, 1, 1);
        badIsr.ChangePartitionLeader.NewIsr = new ReplicaSet { BrokerIds = { 2 } };
        Assert.Throws<MetadataStateException>(() => s.Apply(badIsr)); // leader outside the new ISR
    }

    [Fact]
    public void Delete_topic_and_broker_configs()
    {
        var s = TwoBrokersOneTopic();
        var deleted = s.Apply(new MetadataRecord { DeleteTopic = new DeleteTopicRecord { TopicId = TopicIds.ToByteString(TopicA) } });
        Assert.Empty(deleted.Topics);
        Assert.Empty(deleted.TopicNamesById);
        Assert.Equal(ErrorCodes.UnknownTopicId, Assert.Throws<MetadataStateException>(() =>
            deleted.Apply(new MetadataRecord { DeleteTopic = new DeleteTopicRecord { TopicId = TopicIds.ToByteString(TopicA) } })).ErrorCode);
        Assert.Throws<MetadataStateException>(() => s.Apply(new MetadataRecord { DeleteTopic = new DeleteTopicRecord { TopicId = ByteString.CopyFrom(1, 2, 3) } }));

        var c = s.Apply(new MetadataRecord { SetBrokerConfig = new SetBrokerConfigRecord { Name = "num.partitions", Value = "4" } });
        Assert.Equal("4", c.BrokerConfigs["num.partitions"]);
        Assert.Equal("4", c.ToSnapshot("x", 0).BrokerConfigs["num.partitions"]);
        Assert.Equal(ErrorCodes.InvalidConfig, Assert.Throws<MetadataStateException>(() =>
            s.Apply(new MetadataRecord { SetBrokerConfig = new SetBrokerConfigRecord { Name = "num.partitions", Value = "0" } })).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidConfig, Assert.Throws<MetadataStateException>(() =>
            s.Apply(new MetadataRecord { SetBrokerConfig = new SetBrokerConfigRecord { Name = "no.such.config", Value = "1" } })).ErrorCode);
        var removed = c.Apply(new MetadataRecord { SetBrokerConfig = new SetBrokerConfigRecord { Name = "num.partitions", Remove = true } });
        Assert.False(removed.BrokerConfigs.ContainsKey("num.partitions"));
        Assert.Throws<MetadataStateException>(() => removed.Apply(new MetadataRecord { SetBrokerConfig = new SetBrokerConfigRecord { Name = "num.partitions", Remove = true } }));
    }

    [Fact]
    public void A_batch_applies_all_or_nothing()
    {
        var s = MetadataState.Empty.Apply(Register(1, 1));
        Assert.Throws<MetadataStateException>(() => s.Apply([Fence(1, 1), Fence(1, 1)]));
        Assert.False(s.Brokers[1].Fenced);
        Assert.Equal(1, s.Epoch);
    }

    private static MetadataRecord ChangeIsr(Guid id, int partition, int leaderEpoch, params int[] isr) => new()
    {
        ChangeIsr = new ChangeIsrRecord { TopicId = TopicIds.ToByteString(id), Partition = partition, LeaderEpoch = leaderEpoch, NewIsr = new ReplicaSet { BrokerIds = { isr } } },
    };

    [Fact]
    public void Isr_changes_keep_the_leader_and_its_epoch_and_bump_the_partition_epoch()
    {
        var s = MetadataState.Empty.Apply([Register(1, 1), Register(2, 2), Register(3, 3), Create("a", TopicA, [1, 2, 3])]);
        s = s.Apply(ChangeIsr(TopicA, 0, 0, 1, 3));
        var p = s.Topics["a"].Partitions[0];
        Assert.Equal((1, 0, 1, "[1,3]"), (p.Leader, p.LeaderEpoch, p.PartitionEpoch, Members(p.Isr)));
        s = s.Apply(ChangeIsr(TopicA, 0, 0, 1, 3, 2));
        Assert.Equal(2, s.Topics["a"].Partitions[0].PartitionEpoch);

        Assert.Equal(ErrorCodes.FencedLeaderEpoch, Assert.Throws<MetadataStateException>(() => s.Apply(ChangeIsr(TopicA, 0, 1, 1))).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidRequest, Assert.Throws<MetadataStateException>(() => s.Apply(ChangeIsr(TopicA, 0, 0, 2, 3))).ErrorCode); // leader left out
        Assert.Equal(ErrorCodes.InvalidRequest, Assert.Throws<MetadataStateException>(() => s.Apply(ChangeIsr(TopicA, 0, 0))).ErrorCode); // empty
        Assert.Equal(ErrorCodes.InvalidRequest, Assert.Throws<MetadataStateException>(() => s.Apply(ChangeIsr(TopicA, 0, 0, 1, 1))).ErrorCode); // twice
        Assert.Equal(ErrorCodes.InvalidRequest, Assert.Throws<MetadataStateException>(() => s.Apply(ChangeIsr(TopicA, 0, 0, 1, 4))).ErrorCode); // no replica
        Assert.Equal(ErrorCodes.InvalidRequest, Assert.Throws<MetadataStateException>(() => s.Apply(ChangeIsr(TopicA, 0, 0, 1, 3, 2))).ErrorCode); // unchanged
        Assert.Equal(ErrorCodes.UnknownTopicOrPartition, Assert.Throws<MetadataStateException>(() => s.Apply(ChangeIsr(TopicA, 1, 0, 1))).ErrorCode);
        Assert.Equal(ErrorCodes.UnknownTopicId, Assert.Throws<MetadataStateException>(() => s.Apply(ChangeIsr(Guid.NewGuid(), 0, 0, 1))).ErrorCode);

        // A fenced broker may stay (the controller removes it separately) but never join.
        s = s.Apply(ChangeIsr(TopicA, 0, 0, 1, 3));
        s = s.Apply(Fence(2, 2));
        Assert.Equal(ErrorCodes.IneligibleReplica, Assert.Throws<MetadataStateException>(() => s.Apply(ChangeIsr(TopicA, 0, 0, 1, 3, 2))).ErrorCode);
        s = s.Apply(Fence(3, 3));
        Assert.Equal([1], s.Apply(ChangeIsr(TopicA, 0, 0, 1)).Topics["a"].Partitions[0].Isr.ToArray());
    }

    [Fact]
    public void The_metadata_version_only_rises_to_a_known_level_and_survives_snapshots()
    {
        Assert.Equal(MetadataVersions.BeforeReplication, MetadataState.Empty.MetadataVersion);
        var s = MetadataState.Empty.Apply(new MetadataRecord { SetMetadataVersion = new SetMetadataVersionRecord { Level = MetadataVersions.Replication } });
        Assert.Equal(MetadataVersions.Replication, s.MetadataVersion);
        Assert.Throws<MetadataStateException>(() => s.Apply(new MetadataRecord { SetMetadataVersion = new SetMetadataVersionRecord { Level = MetadataVersions.Replication } }));
        Assert.Throws<MetadataStateException>(() => s.Apply(new MetadataRecord { SetMetadataVersion = new SetMetadataVersionRecord { Level = MetadataVersions.Latest + 1 } }));
        Assert.Equal(MetadataVersions.Replication, MetadataState.FromSnapshot(s.ToSnapshot("c", 0)).MetadataVersion);
    }

    [Fact]
    public void Create_partitions_appends_partitions_numbered_on_with_the_topics_replication_factor()
    {
        var s = TwoBrokersOneTopic();
        MetadataRecord Add(params (int Index, int[] Replicas)[] parts)
        {
            var r = new CreatePartitionsRecord { TopicId = TopicIds.ToByteString(TopicA) };
            foreach (var (index, replicas) in parts)
                r.Partitions.Add(new PartitionRecord { Partition = index, Leader = replicas[0], Replicas = { replicas }, Isr = { replicas } });
            return new MetadataRecord { CreatePartitions = r };
        }
        var grown = s.Apply(Add((2, [1, 2]), (3, [2, 1])));
        Assert.Equal([0, 1, 2, 3], grown.Topics["a"].Partitions.Select(p => p.Partition));
        Assert.Equal(ErrorCodes.InvalidReplicaAssignment, Assert.Throws<MetadataStateException>(() => s.Apply(Add((3, [1, 2])))).ErrorCode); // gap
        Assert.Equal(ErrorCodes.InvalidReplicaAssignment, Assert.Throws<MetadataStateException>(() => s.Apply(Add((2, [1])))).ErrorCode);   // rf 1, not 2
        Assert.Equal(ErrorCodes.InvalidPartitions, Assert.Throws<MetadataStateException>(() => s.Apply(Add())).ErrorCode);
    }
}
