using StreamPlatform.Controller.Metadata;
using StreamPlatform.Protos.Grpc.Controller;
using StreamPlatform.Protos.Grpc.Metadata;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Controller;

/// <summary>AllocateProducerIds: blocks of 1000, recorded before the answer, never given twice.</summary>
public class ProducerIdsTests
{
    private static AllocateProducerIdsResponse Allocate(ControllerHarness h, int brokerId, long epoch)
        => h.Controller.AllocateProducerIds(new AllocateProducerIdsRequest { BrokerId = brokerId, BrokerEpoch = epoch });

    [Fact]
    public void Blocks_are_consecutive_and_disjoint_across_brokers()
    {
        using var h = new ControllerHarness();
        var e1 = h.RegisterBroker(1);
        var e2 = h.RegisterBroker(2);
        var a = Allocate(h, 1, e1);
        var b = Allocate(h, 2, e2);
        var c = Allocate(h, 1, e1);
        Assert.Equal((0, 0L, 1000), (a.ErrorCode, a.ProducerIdStart, a.ProducerIdLen));
        Assert.Equal((0, 1000L, 1000), (b.ErrorCode, b.ProducerIdStart, b.ProducerIdLen));
        Assert.Equal((0, 2000L, 1000), (c.ErrorCode, c.ProducerIdStart, c.ProducerIdLen));
        Assert.Equal(3000, h.Controller.State.NextProducerId);
    }

    [Fact]
    public void A_stale_or_unknown_broker_epoch_gets_STALE_BROKER_EPOCH_and_nothing_is_recorded()
    {
        using var h = new ControllerHarness();
        var e1 = h.RegisterBroker(1);
        var epochBefore = h.Controller.State.Epoch;
        Assert.Equal(ErrorCodes.StaleBrokerEpoch, Allocate(h, 1, e1 - 1).ErrorCode);
        Assert.Equal(ErrorCodes.StaleBrokerEpoch, Allocate(h, 9, e1).ErrorCode);
        Assert.Equal(epochBefore, h.Controller.State.Epoch);
        Assert.Equal(0, h.Controller.State.NextProducerId);
        // A restarted broker (new epoch) is refused with its old epoch.
        var e1b = h.RestartBroker(1);
        Assert.Equal(ErrorCodes.StaleBrokerEpoch, Allocate(h, 1, e1).ErrorCode);
        Assert.Equal(0, Allocate(h, 1, e1b).ErrorCode);
    }

    [Fact]
    public void The_next_block_survives_a_restart_through_the_log()
    {
        using var h = new ControllerHarness();
        var e1 = h.RegisterBroker(1);
        Allocate(h, 1, e1);
        Allocate(h, 1, e1);
        h.Restart();
        Assert.Equal(2000, h.Controller.State.NextProducerId);
        var after = Allocate(h, 1, e1);
        Assert.Equal(2000, after.ProducerIdStart);
    }

    [Fact]
    public void The_next_block_survives_a_restart_through_a_snapshot()
    {
        using var h = new ControllerHarness(o => o.SnapshotLogBytes = 1); // snapshot after every commit
        var e1 = h.RegisterBroker(1);
        Allocate(h, 1, e1);
        Assert.True(File.Exists(Path.Combine(h.DataDir, "metadata.snapshot")));
        h.Restart();
        Assert.Equal(1000, h.Controller.State.NextProducerId);
        Assert.Equal(1000, Allocate(h, 1, e1).ProducerIdStart);
    }

    [Fact]
    public void Replay_rejects_a_record_that_does_not_move_the_next_id_forward()
    {
        using var h = new ControllerHarness();
        var e1 = h.RegisterBroker(1);
        Allocate(h, 1, e1);
        var state = h.Controller.State;
        var backwards = new MetadataRecord { ProducerIds = new ProducerIdsRecord { BrokerId = 1, BrokerEpoch = e1, NextProducerId = 1000 } };
        Assert.Throws<MetadataStateException>(() => state.Apply(backwards));
        var staleEpoch = new MetadataRecord { ProducerIds = new ProducerIdsRecord { BrokerId = 1, BrokerEpoch = e1 + 5, NextProducerId = 2000 } };
        Assert.Equal(ErrorCodes.StaleBrokerEpoch, Assert.Throws<MetadataStateException>(() => state.Apply(staleEpoch)).ErrorCode);
        var forward = new MetadataRecord { ProducerIds = new ProducerIdsRecord { BrokerId = 1, BrokerEpoch = e1, NextProducerId = 2000 } };
        Assert.Equal(2000, state.Apply(forward).NextProducerId);
    }
}
