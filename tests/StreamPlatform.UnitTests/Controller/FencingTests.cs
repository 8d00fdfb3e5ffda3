using StreamPlatform.Controller.Metadata;
using StreamPlatform.Protos.Grpc.Controller;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;
using static StreamPlatform.UnitTests.Controller.ControllerHarness;

namespace StreamPlatform.UnitTests.Controller;

public class FencingTests
{
    [Fact]
    public void Broker_missing_heartbeats_is_fenced_and_its_partitions_go_leaderless_not_to_an_empty_replica()
    {
        using var h = new ControllerHarness();
        var e1 = h.RegisterBroker(1);
        h.RegisterBroker(2);
        h.RegisterBroker(3);
        Assert.Equal(0, h.CreateTopic("t", 6, 3).ErrorCode);
        var ledBy1 = h.Controller.State.Topics["t"].Partitions.Where(p => p.Leader == 1).Select(p => p.Partition).ToArray();
        Assert.Equal(2, ledBy1.Length);
        // Its followers fell behind: broker 1 shrank those ISRs to itself.
        foreach (var p in ledBy1) Assert.Equal(0, h.AlterIsr("t", p, [1]).ErrorCode);
        var before = h.Controller.State.Topics["t"].Partitions;

        h.LetSessionsExpire(1);
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
        {
            // Where 1 followed, only the ISR changes: the leader and its epoch stay.
            Assert.Equal((before[p.Partition].Leader, before[p.Partition].LeaderEpoch), (p.Leader, p.LeaderEpoch));
            Assert.Equal(before[p.Partition].PartitionEpoch + 1, p.PartitionEpoch);
            Assert.Equal(before[p.Partition].Isr.Remove(1).ToArray(), p.Isr.ToArray());
        }

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
        // It returns to no other ISR: its leaders add it once it has caught up.
        foreach (var p in back.Where(p => !ledBy1.Contains(p.Partition)))
            Assert.DoesNotContain(1, p.Isr);
        var stale = h.Controller.BrokerHeartbeat(new BrokerHeartbeatRequest { BrokerId = 1, BrokerEpoch = e1 });
        Assert.Equal(ErrorCodes.StaleBrokerEpoch, stale.ErrorCode);
        Assert.True(stale.Fenced);
    }

    [Fact]
    public void A_fenced_leader_hands_over_to_the_first_live_isr_member_in_replica_order()
    {
        using var h = new ControllerHarness();
        h.RegisterBroker(1);
        h.RegisterBroker(2);
        h.RegisterBroker(3);
        Assert.Equal(0, h.CreateAssigned("t", null, [1, 3, 2]).ErrorCode);
        var before = h.Controller.State.Topics["t"].Partitions[0];
        Assert.Equal((1, "[1,3,2]"), (before.Leader, Members(before.Isr)));

        h.LetSessionsExpire(1);
        var p = h.Controller.State.Topics["t"].Partitions[0];
        Assert.Equal((3, before.LeaderEpoch + 1, before.PartitionEpoch + 1), (p.Leader, p.LeaderEpoch, p.PartitionEpoch));
        Assert.Equal([3, 2], p.Isr.ToArray());

        // 3 goes too: 2 leads alone. Then 2: nobody is left, 2 stays as the last ISR member.
        h.LetSessionsExpire(3);
        p = h.Controller.State.Topics["t"].Partitions[0];
        Assert.Equal((2, "[2]"), (p.Leader, Members(p.Isr)));
        h.LetSessionsExpire(2);
        p = h.Controller.State.Topics["t"].Partitions[0];
        Assert.Equal((-1, "[2]"), (p.Leader, Members(p.Isr)));

        // 1 and 3 return first: they are not in sync, so the partition stays leaderless.
        h.RegisterBroker(1);
        h.RegisterBroker(3);
        Assert.Equal(-1, h.Controller.State.Topics["t"].Partitions[0].Leader);
        h.RegisterBroker(2);
        p = h.Controller.State.Topics["t"].Partitions[0];
        Assert.Equal((2, "[2]"), (p.Leader, Members(p.Isr)));
    }

    [Fact]
    public void Unclean_leader_election_lets_a_live_out_of_sync_replica_lead_alone()
    {
        using var h = new ControllerHarness();
        h.RegisterBroker(1);
        h.RegisterBroker(2);
        h.RegisterBroker(3);
        Assert.Equal(0, h.CreateAssigned("clean", null, [1, 2, 3]).ErrorCode);
        Assert.Equal(0, h.CreateAssigned("unclean", new Dictionary<string, string> { [PartitionElections.UncleanConfig] = "true" }, [1, 2, 3]).ErrorCode);
        Assert.Equal(0, h.AlterIsr("clean", 0, [1]).ErrorCode);
        Assert.Equal(0, h.AlterIsr("unclean", 0, [1]).ErrorCode);

        h.LetSessionsExpire(1);
        var clean = h.Controller.State.Topics["clean"].Partitions[0];
        Assert.Equal((-1, "[1]"), (clean.Leader, Members(clean.Isr)));
        // The documented loss: 2 lacks what only 1 held, and it leads anyway.
        var unclean = h.Controller.State.Topics["unclean"].Partitions[0];
        Assert.Equal((2, "[2]"), (unclean.Leader, Members(unclean.Isr)));
    }

    [Fact]
    public void Unclean_election_from_the_broker_config_and_on_registration_of_a_replica()
    {
        using var h = new ControllerHarness(o => o.BrokerConfigs[PartitionElections.UncleanConfig] = "true");
        h.RegisterBroker(1);
        Assert.Equal(0, h.CreateAssigned("t", null, [1]).ErrorCode);
        h.RegisterBroker(2);
        Assert.Equal(0, h.CreateTopic("two", 1, 2).ErrorCode);
        var p = h.Controller.State.Topics["two"].Partitions[0];
        Assert.Equal(0, h.AlterIsr("two", 0, [p.Leader]).ErrorCode);
        var follower = p.Replicas.Single(b => b != p.Leader);
        // Both die: leaderless, ISR = {old leader}.
        h.LetSessionsExpire(1, 2);
        Assert.Equal(-1, h.Controller.State.Topics["two"].Partitions[0].Leader);
        // The out-of-sync follower returns first: with unclean election it leads alone.
        h.RegisterBroker(follower);
        p = h.Controller.State.Topics["two"].Partitions[0];
        Assert.Equal((follower, $"[{follower}]"), (p.Leader, Members(p.Isr)));
        // The topic config overrides the broker value.
        Assert.Equal(0, h.Controller.AlterConfigs(new AlterConfigsRequest
        {
            Resources = { new AlterConfigsResource { ResourceType = 2, ResourceName = "t", Configs = { new AlterableConfig { Name = PartitionElections.UncleanConfig, Value = "false" } } } },
        }).Results.Single().ErrorCode);
        Assert.False(PartitionElections.UncleanEnabled(h.Controller.State, h.Controller.State.Topics["t"]));
        Assert.True(PartitionElections.UncleanEnabled(h.Controller.State, h.Controller.State.Topics["two"]));
    }

    [Fact]
    public void Enabling_unclean_election_on_a_topic_elects_its_leaderless_partitions_at_once()
    {
        using var h = new ControllerHarness();
        h.RegisterBroker(1);
        h.RegisterBroker(2);
        Assert.Equal(0, h.CreateAssigned("t", null, [1, 2]).ErrorCode);
        Assert.Equal(0, h.CreateAssigned("other", null, [1, 2]).ErrorCode);
        Assert.Equal(0, h.AlterIsr("t", 0, [1]).ErrorCode);
        Assert.Equal(0, h.AlterIsr("other", 0, [1]).ErrorCode);
        h.LetSessionsExpire(1);
        Assert.Equal(-1, h.Controller.State.Topics["t"].Partitions[0].Leader);

        var set = new AlterableConfig { Name = PartitionElections.UncleanConfig, Value = "true" };
        Assert.Equal(0, h.Controller.AlterConfigs(new AlterConfigsRequest
        {
            Resources = { new AlterConfigsResource { ResourceType = 2, ResourceName = "t", Configs = { set } } },
        }).Results.Single().ErrorCode);
        var p = h.Controller.State.Topics["t"].Partitions[0];
        Assert.Equal((2, "[2]"), (p.Leader, Members(p.Isr)));
        // Only that topic: the other keeps waiting for its in-sync replica.
        Assert.Equal(-1, h.Controller.State.Topics["other"].Partitions[0].Leader);
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
        Assert.Equal(0, h.AlterIsr("t", 0, [leader]).ErrorCode);
        // The leader dies; the follower keeps heartbeating and even restarts.
        h.LetSessionsExpire(leader);
        h.RestartBroker(follower);
        Assert.Equal(-1, h.Controller.State.Topics["t"].Partitions[0].Leader);
        h.RegisterBroker(leader);
        Assert.Equal(leader, h.Controller.State.Topics["t"].Partitions[0].Leader);
    }

    [Fact]
    public void A_second_process_claiming_a_live_broker_id_is_refused_until_the_old_session_expires()
    {
        using var h = new ControllerHarness(o => o.BrokerSessionTimeoutMs = 6000);
        var e1 = h.RegisterBroker(1, "inc-a");
        h.RegisterBroker(2);
        Assert.Equal(0, h.CreateTopic("t", 2, 2).ErrorCode);
        var epoch = h.Controller.State.Epoch;
        var before = h.Controller.State.Topics["t"].Partitions;

        // Kafka's DUPLICATE_BROKER_REGISTRATION: nothing recorded, the live broker keeps its epoch and partitions.
        var claim = new RegisterBrokerRequest { BrokerId = 1, GrpcEndpoint = "http://127.0.0.1:17999", IncarnationId = "inc-b" };
        var refused = h.Controller.RegisterBroker(claim);
        Assert.Equal(ErrorCodes.DuplicateBrokerRegistration, refused.ErrorCode);
        Assert.Contains("BrokerSessionTimeoutMs", refused.ErrorMessage);
        Assert.Equal(epoch, h.Controller.State.Epoch);
        Assert.Equal((e1, "inc-a", false), (h.Controller.State.Brokers[1].BrokerEpoch, h.Controller.State.Brokers[1].IncarnationId, h.Controller.State.Brokers[1].Fenced));
        Assert.Equal(before, h.Controller.State.Topics["t"].Partitions);
        Assert.False(h.Controller.BrokerHeartbeat(new BrokerHeartbeatRequest { BrokerId = 1, BrokerEpoch = e1 }).Fenced);

        // Still refused one millisecond before the session (renewed by that heartbeat) runs out.
        h.Time.Advance(TimeSpan.FromMilliseconds(5999));
        Assert.Equal(ErrorCodes.DuplicateBrokerRegistration, h.Controller.RegisterBroker(claim).ErrorCode);

        // The first process went silent (kill -9): once its session expired, the new one gets in.
        h.LetSessionsExpire(1);
        var accepted = h.Controller.RegisterBroker(claim);
        Assert.Equal(0, accepted.ErrorCode);
        Assert.True(accepted.BrokerEpoch > e1);
        Assert.Equal(("inc-b", false), (h.Controller.State.Brokers[1].IncarnationId, h.Controller.State.Brokers[1].Fenced));
        var stale = h.Controller.BrokerHeartbeat(new BrokerHeartbeatRequest { BrokerId = 1, BrokerEpoch = e1 });
        Assert.Equal(ErrorCodes.StaleBrokerEpoch, stale.ErrorCode);
    }

    [Fact]
    public void A_cleanly_stopped_broker_is_replaced_at_once_by_a_new_process_that_rejoins_the_isrs_once_caught_up()
    {
        using var h = new ControllerHarness();
        h.RegisterBroker(1, "inc-a");
        h.RegisterBroker(2);
        Assert.Equal(0, h.CreateTopic("t", 2, 2).ErrorCode);
        var before = h.Controller.State.Topics["t"].Partitions;
        var e1b = h.RestartBroker(1, "inc-b");
        Assert.Equal(("inc-b", e1b, false), (h.Controller.State.Brokers[1].IncarnationId, h.Controller.State.Brokers[1].BrokerEpoch, h.Controller.State.Brokers[1].Fenced));
        foreach (var p in h.Controller.State.Topics["t"].Partitions)
        {
            var b = before[p.Partition];
            // Broker 2 leads everything: what 1 led moved to 2 at the controlled shutdown (epoch + 1),
            // and the new process does not take leaderships back by registering.
            Assert.Equal((2, b.Leader == 1 ? b.LeaderEpoch + 1 : b.LeaderEpoch), (p.Leader, p.LeaderEpoch));
            // Its log restarted: the leader re-adds it once it has caught up.
            Assert.Equal([2], p.Isr.ToArray());
            Assert.Equal(0, h.AlterIsr("t", p.Partition, [2, 1]).ErrorCode);
            Assert.Equal([2, 1], h.Controller.State.Topics["t"].Partitions[p.Partition].Isr.ToArray());
        }
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
        // Controlled shutdown moves every leadership of 1 to the other ISR member and leaves 1 out of every ISR.
        Assert.All(h.Controller.State.Topics["t"].Partitions, p => Assert.Equal((2, "[2]"), (p.Leader, Members(p.Isr))));
    }

    [Fact]
    public void Registration_retry_with_the_same_incarnation_keeps_the_epoch_and_a_new_incarnation_gets_a_new_one()
    {
        using var h = new ControllerHarness();
        var e = h.RegisterBroker(1, "inc-a");
        Assert.Equal(e, h.RegisterBroker(1, "inc-a"));
        var epochBefore = h.Controller.State.Epoch;
        var e2 = h.RestartBroker(1, "inc-b");
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
