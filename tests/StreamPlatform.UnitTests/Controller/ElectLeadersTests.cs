using StreamPlatform.Controller.Metadata;
using StreamPlatform.Protos.Grpc.Controller;
using static StreamPlatform.UnitTests.Controller.ControllerHarness;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Controller;

public class ElectLeadersTests
{
    private static ElectLeadersRequest Request(int type, string topic, params int[] partitions)
        => new() { ElectionType = type, Topics = { new ElectLeadersTopic { Name = topic, Partitions = { partitions } } } };

    private static short[] Codes(ElectLeadersResponse r) => r.Topics.SelectMany(t => t.Partitions).Select(p => (short)p.ErrorCode).ToArray();

    /// <summary>Brokers 1-3; "t" partition 0 on [1, 2, 3] and partition 1 on [2, 3, 1]; broker 1 restarted, so 2 leads partition 0.</summary>
    private static ControllerHarness MovedAwayFromOne(Action<ControllerOptions>? configure = null)
    {
        var h = new ControllerHarness(configure);
        for (var b = 1; b <= 3; b++) h.RegisterBroker(b);
        Assert.Equal(0, h.CreateAssigned("t", null, [1, 2, 3], [2, 3, 1]).ErrorCode);
        h.LetSessionsExpire(1);
        h.RegisterBroker(1);
        var p = h.Controller.State.Topics["t"].Partitions[0];
        Assert.Equal((2, "[2,3]"), (p.Leader, Members(p.Isr)));
        return h;
    }

    [Fact]
    public void Preferred_election_needs_the_preferred_replica_live_and_in_sync()
    {
        using var h = MovedAwayFromOne();
        var notInSync = h.Controller.ElectLeaders(Request(LeaderElections.Preferred, "t", 0, 1, 7));
        Assert.Equal(0, notInSync.ErrorCode);
        Assert.Equal([ErrorCodes.PreferredLeaderNotAvailable, ErrorCodes.ElectionNotNeeded, ErrorCodes.UnknownTopicOrPartition], Codes(notInSync));
        Assert.Equal(ErrorCodes.UnknownTopicOrPartition, Codes(h.Controller.ElectLeaders(Request(LeaderElections.Preferred, "missing", 0))).Single());

        // The leader saw 1 catch up and added it back to the ISR: now 1 can lead again.
        Assert.Equal(0, h.AlterIsr("t", 0, [2, 3, 1]).ErrorCode);
        var before = h.Controller.State.Topics["t"].Partitions[0];
        var elected = h.Controller.ElectLeaders(Request(LeaderElections.Preferred, "t", 0));
        Assert.Equal([ErrorCodes.None], Codes(elected));
        Assert.Equal(h.Controller.State.Epoch, elected.MetadataEpoch);
        var p = h.Controller.State.Topics["t"].Partitions[0];
        Assert.Equal((1, before.LeaderEpoch + 1, "[2,3,1]"), (p.Leader, p.LeaderEpoch, Members(p.Isr)));
        Assert.Equal([ErrorCodes.ElectionNotNeeded], Codes(h.Controller.ElectLeaders(Request(LeaderElections.Preferred, "t", 0))));
    }

    [Fact]
    public void All_partitions_lists_only_the_partitions_that_needed_an_election()
    {
        using var h = MovedAwayFromOne();
        var all = h.Controller.ElectLeaders(new ElectLeadersRequest { ElectionType = LeaderElections.Preferred, AllPartitions = true });
        var only = Assert.Single(all.Topics);
        Assert.Equal(("t", 0, ErrorCodes.PreferredLeaderNotAvailable), (only.Name, only.Partitions.Single().Partition, (short)only.Partitions.Single().ErrorCode));
        Assert.Equal(0, h.AlterIsr("t", 0, [2, 3, 1]).ErrorCode);
        Assert.Equal([ErrorCodes.None], Codes(h.Controller.ElectLeaders(new ElectLeadersRequest { ElectionType = LeaderElections.Preferred, AllPartitions = true })));
        Assert.Empty(h.Controller.ElectLeaders(new ElectLeadersRequest { ElectionType = LeaderElections.Preferred, AllPartitions = true }).Topics);
    }

    [Fact]
    public void Unclean_election_only_for_leaderless_partitions_and_only_with_a_live_replica()
    {
        using var h = new ControllerHarness();
        for (var b = 1; b <= 2; b++) h.RegisterBroker(b);
        Assert.Equal(0, h.CreateAssigned("t", null, [1, 2], [2, 1]).ErrorCode);
        Assert.Equal(0, h.AlterIsr("t", 0, [1]).ErrorCode);
        Assert.Equal([ErrorCodes.ElectionNotNeeded], Codes(h.Controller.ElectLeaders(Request(LeaderElections.Unclean, "t", 0))));
        h.LetSessionsExpire(1);
        Assert.Equal(-1, h.Controller.State.Topics["t"].Partitions[0].Leader);
        h.LetSessionsExpire(2);
        h.RegisterBroker(2);
        // Partition 0: 2 is live but out of sync: the operator accepts the loss. Partition 1: 2 leads again already.
        var answer = h.Controller.ElectLeaders(Request(LeaderElections.Unclean, "t", 0, 1));
        Assert.Equal([ErrorCodes.None, ErrorCodes.ElectionNotNeeded], Codes(answer));
        var p = h.Controller.State.Topics["t"].Partitions[0];
        Assert.Equal((2, "[2]"), (p.Leader, Members(p.Isr)));

        h.LetSessionsExpire(2);
        Assert.Equal([ErrorCodes.EligibleLeadersNotAvailable], Codes(h.Controller.ElectLeaders(Request(LeaderElections.Unclean, "t", 0))));
        Assert.Equal(ErrorCodes.InvalidRequest, h.Controller.ElectLeaders(new ElectLeadersRequest { ElectionType = 2, AllPartitions = true }).ErrorCode);
    }

    [Fact]
    public void Automatic_balancing_moves_leadership_back_once_per_interval_when_above_the_imbalance_threshold()
    {
        using var h = MovedAwayFromOne(o => o.BrokerConfigs["leader.imbalance.check.interval.seconds"] = "30");
        Assert.Equal(0, h.AlterIsr("t", 0, [2, 3, 1]).ErrorCode);
        // Broker 1 is the preferred replica of one partition and leads none of them: 100 % > 10 %.
        // The check runs once the interval has passed since the start, not before.
        Assert.Equal(0, h.Controller.BalanceLeadersIfDue());
        h.Time.Advance(TimeSpan.FromSeconds(30));
        foreach (var b in h.Controller.State.Brokers.Values) h.Heartbeat(b.BrokerId, b.BrokerEpoch);
        Assert.Equal(1, h.Controller.BalanceLeadersIfDue());
        Assert.Equal(1, h.Controller.State.Topics["t"].Partitions[0].Leader);
        Assert.Equal(0, h.Controller.BalanceLeadersIfDue());
    }

    [Fact]
    public void Balancing_leaves_imbalance_at_or_below_the_percentage_and_can_be_disabled()
    {
        // Broker 1 prefers 10 partitions; one led elsewhere is exactly 10 %: not above the threshold.
        using var h = new ControllerHarness(o => o.BrokerConfigs["leader.imbalance.check.interval.seconds"] = "1");
        for (var b = 1; b <= 2; b++) h.RegisterBroker(b);
        Assert.Equal(0, h.CreateAssigned("t", null, Enumerable.Range(0, 10).Select(_ => new[] { 1, 2 }).ToArray()).ErrorCode);
        MoveToTwo(h, 0);
        Assert.Equal(2, h.Controller.State.Topics["t"].Partitions[0].Leader);
        h.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(0, h.Controller.BalanceLeadersIfDue());
        MoveToTwo(h, 1);
        Assert.Equal(2, h.Controller.State.Topics["t"].Partitions.Count(p => p.Leader == 2));
        h.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(2, h.Controller.BalanceLeadersIfDue());
        Assert.All(h.Controller.State.Topics["t"].Partitions, p => Assert.Equal(1, p.Leader));

        using var off = new ControllerHarness(o =>
        {
            o.BrokerConfigs["leader.imbalance.check.interval.seconds"] = "1";
            o.BrokerConfigs["auto.leader.rebalance.enable"] = "false";
        });
        for (var b = 1; b <= 2; b++) off.RegisterBroker(b);
        Assert.Equal(0, off.CreateAssigned("t", null, [1, 2]).ErrorCode);
        MoveToTwo(off, 0);
        off.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(0, off.Controller.BalanceLeadersIfDue());
        Assert.Equal(2, off.Controller.State.Topics["t"].Partitions[0].Leader);
    }

    /// <summary>
    /// Moves the leadership of one partition of "t" from broker 1 to broker 2 the way it happens in
    /// a cluster: broker 1 shuts down (only that partition has 2 in its ISR, so only it moves; the
    /// others wait for 1), registers again, and the leaders add their followers back.
    /// </summary>
    private static void MoveToTwo(ControllerHarness h, int partition)
    {
        foreach (var p in h.Controller.State.Topics["t"].Partitions.Where(p => p.Leader == 1))
            Assert.Equal(0, h.AlterIsr("t", p.Partition, p.Partition == partition ? [1, 2] : [1]).ErrorCode);
        var shutdown = h.Controller.BrokerHeartbeat(new BrokerHeartbeatRequest { BrokerId = 1, BrokerEpoch = h.Controller.State.Brokers[1].BrokerEpoch, WantShutdown = true });
        Assert.True(shutdown.ShouldShutDown);
        h.RegisterBroker(1);
        foreach (var p in h.Controller.State.Topics["t"].Partitions)
            Assert.Equal(0, h.AlterIsr("t", p.Partition, p.Leader == 1 ? [1, 2] : [2, 1]).ErrorCode);
    }
}
