using StreamPlatform.Protos.Grpc.Controller;
using static StreamPlatform.UnitTests.Controller.ControllerHarness;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Controller;

public class ReassignmentTests
{
    /// <summary>Brokers 1-4; "t" partition 0 on [1, 2, 3] led by 1, ISR [1, 2, 3].</summary>
    private static ControllerHarness Cluster()
    {
        var h = new ControllerHarness();
        for (var b = 1; b <= 4; b++) h.RegisterBroker(b);
        Assert.Equal(0, h.CreateAssigned("t", null, [1, 2, 3]).ErrorCode);
        return h;
    }

    private static short Reassign(ControllerHarness h, int partition, int[]? target, string topic = "t")
    {
        var item = new ReassignPartition { Partition = partition };
        if (target is not null) item.Replicas = new ReplicaList { BrokerIds = { target } };
        var response = h.Controller.AlterPartitionReassignments(new AlterReassignmentsRequest { Topics = { new ReassignTopic { Name = topic, Partitions = { item } } } });
        return (short)response.Topics.Single().Partitions.Single().ErrorCode;
    }

    private static string Describe(ControllerHarness h, int partition = 0)
    {
        var p = h.Controller.State.Topics["t"].Partitions[partition];
        return $"leader {p.Leader} replicas {Members(p.Replicas)} isr {Members(p.Isr)} adding {Members(p.Adding)} removing {Members(p.Removing)}";
    }

    [Fact]
    public void Added_replicas_join_the_isr_then_the_old_ones_leave_and_leadership_moves_off_a_leaving_leader()
    {
        using var h = Cluster();
        Assert.Equal(ErrorCodes.None, Reassign(h, 0, [4, 2, 3]));
        Assert.Equal("leader 1 replicas [4,2,3,1] isr [1,2,3] adding [4] removing [1]", Describe(h));
        var listed = h.Controller.ListPartitionReassignments(new ListReassignmentsRequest { AllPartitions = true }).Reassignments.Single();
        Assert.Equal(("t", 0, "[4,2,3,1]", "[4]", "[1]"), (listed.Topic, listed.Partition, Members(listed.Replicas), Members(listed.AddingReplicas), Members(listed.RemovingReplicas)));
        Assert.Equal("[4,2,3,1]", Members(h.Controller.GetMetadata().Topics.Single().Partitions[0].Replicas));
        Assert.Equal("[4]", Members(h.Controller.GetMetadata().Topics.Single().Partitions[0].AddingReplicas));

        // The leader sees 4 caught up and adds it: the reassignment completes in the same entry.
        var epochBefore = h.Controller.State.Topics["t"].Partitions[0].LeaderEpoch;
        var answer = h.AlterIsr("t", 0, [1, 2, 3, 4]);
        Assert.Equal(0, answer.ErrorCode);
        // 1 leaves, so the first in-sync target replica (4) leads; the answer says so.
        Assert.Equal("leader 4 replicas [4,2,3] isr [2,3,4] adding [] removing []", Describe(h));
        Assert.Equal((4, epochBefore + 1), (answer.LeaderId, answer.LeaderEpoch));
        Assert.Empty(h.Controller.ListPartitionReassignments(new ListReassignmentsRequest { AllPartitions = true }).Reassignments);
        h.Restart();
        Assert.Equal("leader 4 replicas [4,2,3] isr [2,3,4] adding [] removing []", Describe(h));
    }

    [Fact]
    public void Removing_replicas_only_completes_at_once_with_a_leader_epoch_bump()
    {
        using var h = Cluster();
        var before = h.Controller.State.Topics["t"].Partitions[0];
        Assert.Equal(ErrorCodes.None, Reassign(h, 0, [1, 2]));
        Assert.Equal("leader 1 replicas [1,2] isr [1,2] adding [] removing []", Describe(h));
        Assert.Equal(before.LeaderEpoch + 1, h.Controller.State.Topics["t"].Partitions[0].LeaderEpoch);
    }

    [Fact]
    public void A_cancel_restores_the_original_replicas_and_drops_the_added_ones_from_the_isr()
    {
        using var h = Cluster();
        Assert.Equal(ErrorCodes.NoReassignmentInProgress, Reassign(h, 0, null));
        Assert.Equal(ErrorCodes.None, Reassign(h, 0, [4, 2, 3, 1]));
        Assert.Equal("leader 1 replicas [4,2,3,1] isr [1,2,3] adding [4] removing []", Describe(h));
        Assert.Equal(ErrorCodes.None, Reassign(h, 0, null));
        // As Kafka's revert: the current replica order without the added replicas.
        Assert.Equal("leader 1 replicas [2,3,1] isr [1,2,3] adding [] removing []", Describe(h));

        // A new target replaces the one in progress, computed from the original replicas; going
        // back to exactly the original replicas is a cancel.
        Assert.Equal(ErrorCodes.None, Reassign(h, 0, [1, 2, 4]));
        Assert.Equal("leader 1 replicas [1,2,4,3] isr [1,2,3] adding [4] removing [3]", Describe(h));
        Assert.Equal(ErrorCodes.None, Reassign(h, 0, [2, 3, 1]));
        Assert.Equal("leader 1 replicas [2,3,1] isr [1,2,3] adding [] removing []", Describe(h));
    }

    [Fact]
    public void Invalid_targets_and_unknown_partitions()
    {
        using var h = Cluster();
        var epoch = h.Controller.State.Epoch;
        Assert.Equal(ErrorCodes.UnknownTopicOrPartition, Reassign(h, 0, [1], topic: "missing"));
        Assert.Equal(ErrorCodes.UnknownTopicOrPartition, Reassign(h, 5, [1]));
        Assert.Equal(ErrorCodes.InvalidReplicaAssignment, Reassign(h, 0, []));
        Assert.Equal(ErrorCodes.InvalidReplicaAssignment, Reassign(h, 0, [1, 1]));
        Assert.Equal(ErrorCodes.InvalidReplicaAssignment, Reassign(h, 0, [1, 9]));
        Assert.Equal(epoch, h.Controller.State.Epoch);
        // Listing unknown names is not an error: they are left out.
        Assert.Empty(h.Controller.ListPartitionReassignments(new ListReassignmentsRequest { Topics = { new ReassignmentQuery { Name = "missing", Partitions = { 0 } } } }).Reassignments);
    }

    [Fact]
    public void A_fenced_target_replica_keeps_the_reassignment_pending_until_it_returns_and_catches_up()
    {
        using var h = Cluster();
        Assert.Equal(ErrorCodes.None, Reassign(h, 0, [1, 2, 4]));
        h.LetSessionsExpire(4);
        Assert.Equal(ErrorCodes.IneligibleReplica, h.AlterIsr("t", 0, [1, 2, 3, 4]).ErrorCode);
        Assert.Equal("leader 1 replicas [1,2,4,3] isr [1,2,3] adding [4] removing [3]", Describe(h));
        Assert.Single(h.Controller.ListPartitionReassignments(new ListReassignmentsRequest { Topics = { new ReassignmentQuery { Name = "t", Partitions = { 0, 0 } } } }).Reassignments);
        h.RegisterBroker(4);
        Assert.Equal(0, h.AlterIsr("t", 0, [1, 2, 3, 4]).ErrorCode);
        Assert.Equal("leader 1 replicas [1,2,4] isr [1,2,4] adding [] removing []", Describe(h));
    }
}
