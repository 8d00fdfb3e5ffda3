using StreamPlatform.Controller.Metadata;
using StreamPlatform.Protos.Grpc.Controller;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Controller;

public class FencingTests
{
    [Fact]
    public void Broker_missing_heartbeats_is_fenced_and_its_partitions_go_leaderless_not_to_an_empty_replica()
    {
        using var h = new ControllerHarness();
        var e1 = h.RegisterBroker(1);
        var e2 = h.RegisterBroker(2);
        var e3 = h.RegisterBroker(3);
        Assert.Equal(0, h.CreateTopic("t", 6, 3).ErrorCode);
        var before = h.Controller.State.Topics["t"].Partitions;
        var ledBy1 = before.Where(p => p.Leader == 1).Select(p => p.Partition).ToArray();
        Assert.Equal(2, ledBy1.Length);

        // 2 and 3 keep heartbeating; 1 goes silent.
        for (var i = 0; i < 13; i++)
        {
            h.Time.Advance(TimeSpan.FromMilliseconds(500));
            h.Heartbeat(2, e2);
            h.Heartbeat(3, e3);
            h.Controller.ExpireSessions();
        }
        Assert.True(h.Controller.State.Brokers[1].Fenced);
        Assert.False(h.Controller.State.Brokers[2].Fenced);
        var after = h.Controller.State.Topics["t"].Partitions;
        foreach (var p in ledBy1)
        {
            // 2 and 3 are live replicas but hold none of the records: no unclean election.
            Assert.Equal(-1, after[p].Leader);
            Assert.Equal(before[p].LeaderEpoch + 1, after[p].LeaderEpoch);
            // The last ISR member stays in the ISR while fenced (Kafka KRaft), so it can lead again.
            Assert.Equal([1], after[p].Isr.ToArray());
        }
        foreach (var p in after.Where(p => !ledBy1.Contains(p.Partition)))
            Assert.Equal(before[p.Partition].LeaderEpoch, p.LeaderEpoch);

        // The fenced broker's heartbeat says so; it must register again.
        var hb = h.Controller.BrokerHeartbeat(new BrokerHeartbeatRequest { BrokerId = 1, BrokerEpoch = e1 });
        Assert.True(hb.Fenced);
        var e1b = h.RegisterBroker(1);
        Assert.True(e1b > e1);
        Assert.False(h.Controller.State.Brokers[1].Fenced);
        var back = h.Controller.State.Topics["t"].Partitions;
        foreach (var p in ledBy1)
        {
            Assert.Equal((1, before[p].LeaderEpoch + 2), (back[p].Leader, back[p].LeaderEpoch));
            Assert.Equal([1], back[p].Isr.ToArray());
        }
        var stale = h.Controller.BrokerHeartbeat(new BrokerHeartbeatRequest { BrokerId = 1, BrokerEpoch = e1 });
        Assert.Equal(ErrorCodes.StaleBrokerEpoch, stale.ErrorCode);
        Assert.True(stale.Fenced);
    }

    [Fact]
    public void A_replica_outside_the_isr_never_takes_over_even_when_it_registers_again()
    {
        using var h = new ControllerHarness();
        h.RegisterBroker(1);
        h.RegisterBroker(2);
        Assert.Equal(0, h.CreateTopic("t", 2, 2).ErrorCode);
        var p0 = h.Controller.State.Topics["t"].Partitions[0];
        var leader = p0.Leader;
        var follower = p0.Replicas.Single(b => b != leader);
        // The leader dies; the follower keeps heartbeating and even re-registers (a restart).
        for (var i = 0; i < 13; i++)
        {
            h.Time.Advance(TimeSpan.FromMilliseconds(500));
            h.Heartbeat(follower, h.Controller.State.Brokers[follower].BrokerEpoch);
            h.Controller.ExpireSessions();
        }
        h.RegisterBroker(follower);
        Assert.Equal(-1, h.Controller.State.Topics["t"].Partitions[0].Leader);
        h.RegisterBroker(leader);
        Assert.Equal(leader, h.Controller.State.Topics["t"].Partitions[0].Leader);
    }

    [Fact]
    public void Session_timeout_is_exact_and_heartbeats_extend_it()
    {
        using var h = new ControllerHarness(o => o.BrokerSessionTimeoutMs = 6000);
        var e = h.RegisterBroker(1);
        h.Time.Advance(TimeSpan.FromMilliseconds(5999));
        h.Controller.ExpireSessions();
        Assert.False(h.Controller.State.Brokers[1].Fenced);
        h.Heartbeat(1, e);
        h.Time.Advance(TimeSpan.FromMilliseconds(5999));
        h.Controller.ExpireSessions();
        Assert.False(h.Controller.State.Brokers[1].Fenced);
        h.Time.Advance(TimeSpan.FromMilliseconds(1));
        h.Controller.ExpireSessions();
        Assert.True(h.Controller.State.Brokers[1].Fenced);
    }

    [Fact]
    public void Partitions_without_a_live_replica_go_leaderless_and_return_when_the_broker_registers_again()
    {
        using var h = new ControllerHarness();
        h.RegisterBroker(1);
        Assert.Equal(0, h.CreateTopic("solo", 2, 1).ErrorCode);
        h.Time.Advance(TimeSpan.FromMilliseconds(6000));
        h.Controller.ExpireSessions();
        Assert.All(h.Controller.State.Topics["solo"].Partitions, p => Assert.Equal((-1, 1), (p.Leader, p.LeaderEpoch)));

        h.RegisterBroker(1);
        Assert.All(h.Controller.State.Topics["solo"].Partitions, p => Assert.Equal((1, 2), (p.Leader, p.LeaderEpoch)));
    }

    [Fact]
    public void Heartbeat_from_unknown_broker_and_controlled_shutdown()
    {
        using var h = new ControllerHarness();
        var unknown = h.Controller.BrokerHeartbeat(new BrokerHeartbeatRequest { BrokerId = 9, BrokerEpoch = 1 });
        Assert.Equal(ErrorCodes.BrokerIdNotRegistered, unknown.ErrorCode);
        Assert.True(unknown.Fenced);

        var e1 = h.RegisterBroker(1);
        h.RegisterBroker(2);
        Assert.Equal(0, h.CreateTopic("t", 2, 2).ErrorCode);
        var shutdown = h.Controller.BrokerHeartbeat(new BrokerHeartbeatRequest { BrokerId = 1, BrokerEpoch = e1, WantShutdown = true });
        Assert.True(shutdown.ShouldShutDown);
        Assert.True(h.Controller.State.Brokers[1].Fenced);
        // Controlled shutdown of the only ISR member: leaderless until it returns (no replication yet).
        Assert.All(h.Controller.State.Topics["t"].Partitions.Where(p => p.Replicas[0] == 1), p => Assert.Equal(-1, p.Leader));
        Assert.All(h.Controller.State.Topics["t"].Partitions.Where(p => p.Replicas[0] == 2), p => Assert.Equal(2, p.Leader));
    }

    [Fact]
    public void Registration_retry_with_the_same_incarnation_keeps_the_epoch_and_a_new_incarnation_gets_a_new_one()
    {
        using var h = new ControllerHarness();
        var e = h.RegisterBroker(1, "inc-a");
        Assert.Equal(e, h.RegisterBroker(1, "inc-a"));
        var epochBefore = h.Controller.State.Epoch;
        var e2 = h.RegisterBroker(1, "inc-b");
        Assert.True(e2 > e);
        Assert.True(h.Controller.State.Epoch > epochBefore);
        var bad = h.Controller.RegisterBroker(new RegisterBrokerRequest { BrokerId = 2, GrpcEndpoint = "" });
        Assert.Equal(ErrorCodes.InvalidRequest, bad.ErrorCode);
    }

    [Fact]
    public void Gateways_register_heartbeat_and_are_fenced_after_the_session_timeout()
    {
        using var h = new ControllerHarness(o => o.GatewaySessionTimeoutMs = 3000);
        Assert.Equal(0, h.Controller.RegisterGateway(new RegisterGatewayRequest { NodeId = 0, KafkaHost = "127.0.0.1", KafkaPort = 9092 }).ErrorCode);
        Assert.Equal(0, h.Controller.RegisterGateway(new RegisterGatewayRequest { NodeId = 1, KafkaHost = "127.0.0.1", KafkaPort = 9093 }).ErrorCode);
        var epoch = h.Controller.State.Epoch;
        // Re-registering unchanged writes nothing.
        h.Controller.RegisterGateway(new RegisterGatewayRequest { NodeId = 0, KafkaHost = "127.0.0.1", KafkaPort = 9092 });
        Assert.Equal(epoch, h.Controller.State.Epoch);
        h.Time.Advance(TimeSpan.FromMilliseconds(2000));
        Assert.False(h.Controller.GatewayHeartbeat(new GatewayHeartbeatRequest { NodeId = 0 }).Fenced);
        h.Time.Advance(TimeSpan.FromMilliseconds(1000));
        h.Controller.ExpireSessions();
        Assert.False(h.Controller.State.Gateways[0].Fenced);
        Assert.True(h.Controller.State.Gateways[1].Fenced);
        Assert.True(h.Controller.GatewayHeartbeat(new GatewayHeartbeatRequest { NodeId = 1 }).Fenced);
        Assert.Equal(ErrorCodes.BrokerIdNotRegistered, h.Controller.GatewayHeartbeat(new GatewayHeartbeatRequest { NodeId = 7 }).ErrorCode);
        Assert.Equal(0, h.Controller.RegisterGateway(new RegisterGatewayRequest { NodeId = 1, KafkaHost = "127.0.0.1", KafkaPort = 9093 }).ErrorCode);
        Assert.False(h.Controller.State.Gateways[1].Fenced);
        Assert.Equal(ErrorCodes.InvalidRequest, h.Controller.RegisterGateway(new RegisterGatewayRequest { NodeId = 2, KafkaHost = "", KafkaPort = 9 }).ErrorCode);
    }

    [Fact]
    public void After_restart_registered_brokers_get_one_session_timeout_of_grace()
    {
        using var h = new ControllerHarness();
        var e1 = h.RegisterBroker(1);
        h.RegisterBroker(2);
        h.Time.Advance(TimeSpan.FromMilliseconds(5000));
        h.Restart();
        Assert.False(h.Controller.State.Brokers[1].Fenced);
        h.Time.Advance(TimeSpan.FromMilliseconds(5000));
        h.Controller.ExpireSessions();
        Assert.False(h.Controller.State.Brokers[1].Fenced);
        h.Heartbeat(1, e1); // the old broker epoch survives the restart
        h.Time.Advance(TimeSpan.FromMilliseconds(1000));
        h.Controller.ExpireSessions();
        Assert.False(h.Controller.State.Brokers[1].Fenced);
        Assert.True(h.Controller.State.Brokers[2].Fenced);
    }
}
