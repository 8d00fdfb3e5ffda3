using StreamPlatform.Broker.Groups;
using StreamPlatform.Protos.Groups;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Groups;

public sealed class GroupStateMachineTests : IDisposable
{
    private readonly GroupTestHarness _h = new();
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    public void Dispose() => _h.Dispose();

    [Fact]
    public void Transition_table_is_kafkas_and_illegal_transitions_throw()
    {
        var legal = new HashSet<(GroupState, GroupState)>
        {
            (GroupState.Empty, GroupState.PreparingRebalance), (GroupState.Empty, GroupState.Dead),
            (GroupState.PreparingRebalance, GroupState.CompletingRebalance), (GroupState.PreparingRebalance, GroupState.Empty), (GroupState.PreparingRebalance, GroupState.Dead),
            (GroupState.CompletingRebalance, GroupState.PreparingRebalance), (GroupState.CompletingRebalance, GroupState.Stable), (GroupState.CompletingRebalance, GroupState.Dead),
            (GroupState.Stable, GroupState.PreparingRebalance), (GroupState.Stable, GroupState.Dead),
            (GroupState.Dead, GroupState.Dead),
        };
        foreach (var from in Enum.GetValues<GroupState>())
        foreach (var to in Enum.GetValues<GroupState>())
            Assert.True(legal.Contains((from, to)) == GroupStates.IsLegal(from, to), $"{from} -> {to}");

        var group = new ClassicGroup("g", 0);
        Assert.Throws<IllegalGroupTransitionException>(() => group.TransitionTo(GroupState.Stable, 1));
        Assert.Equal(GroupState.Empty, group.State);
        group.TransitionTo(GroupState.PreparingRebalance, 1);
        group.TransitionTo(GroupState.CompletingRebalance, 2);
        group.TransitionTo(GroupState.Stable, 3);
        Assert.Throws<IllegalGroupTransitionException>(() => group.TransitionTo(GroupState.Empty, 4));
        Assert.Equal(3, group.CurrentStateTimestampMs);
    }

    [Fact]
    public void Partition_for_group_uses_java_string_hash_code_and_kafkas_abs()
    {
        Assert.Equal(99162322, OffsetsTopic.JavaStringHashCode("hello"));
        Assert.Equal(0, OffsetsTopic.JavaStringHashCode(""));
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE; Kafka's Utils.abs maps it to 0.
        Assert.Equal(int.MinValue, OffsetsTopic.JavaStringHashCode("polygenelubricants"));
        Assert.Equal(0, OffsetsTopic.PartitionFor("polygenelubricants", 50));
        Assert.Equal(99162322 % 50, OffsetsTopic.PartitionFor("hello", 50));
        // A negative hash: "my-consumer-group-with-a-long-name" wraps below zero.
        var h = OffsetsTopic.JavaStringHashCode("my-consumer-group-with-a-long-name");
        Assert.Equal(Math.Abs(h) % 50, OffsetsTopic.PartitionFor("my-consumer-group-with-a-long-name", 50));
    }

    [Fact]
    public async Task Requests_before_load_get_not_coordinator_and_bad_input_gets_kafka_errors()
    {
        var notLoaded = await _h.JoinAsync(GroupTestHarness.Join("g"));
        Assert.Equal((short)ErrorCode.NotCoordinator, notLoaded.ErrorCode);
        await _h.LoadAsync();
        Assert.Equal((short)ErrorCode.InvalidGroupId, (await _h.JoinAsync(GroupTestHarness.Join(""))).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidSessionTimeout, (await _h.JoinAsync(GroupTestHarness.Join("g", sessionMs: 10))).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidSessionTimeout, (await _h.JoinAsync(GroupTestHarness.Join("g", sessionMs: int.MaxValue))).ErrorCode);
        Assert.Equal((short)ErrorCode.UnknownMemberId, (await _h.JoinAsync(GroupTestHarness.Join("nope", memberId: "someone"))).ErrorCode);
        Assert.Equal((short)ErrorCode.UnknownMemberId, _h.Heartbeat("nope", "m", 1));
        Assert.Equal((short)ErrorCode.InvalidGroupId, GroupTestHarness.CommitError(_h.Commit("", -1, "", "t", 0, 1)));
        // An id longer than a record key can hold (int16 length) could never be stored.
        Assert.Equal((short)ErrorCode.InvalidGroupId, GroupTestHarness.CommitError(_h.Commit(new string('g', 40_000), -1, "", "t", 0, 1)));
    }

    [Fact]
    public async Task Requests_while_the_partition_loads_get_coordinator_load_in_progress()
    {
        Action? load = null;
        using var coordinator = new GroupCoordinator(_h.Time, () => _h.Config, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance)
        {
            LoadRunner = action => { load = action; return Task.CompletedTask; },
        };
        await coordinator.LoadAsync(0, 0, new OffsetsPartitionStore(_h.OpenLog()));
        Assert.False(coordinator.IsLoaded(0));
        var join = await coordinator.JoinGroupAsync(GroupTestHarness.Join("g"), 9, "c", "h");
        Assert.Equal((short)ErrorCode.CoordinatorLoadInProgress, join.ErrorCode);
        var fetch = coordinator.OffsetFetch(new OffsetFetchRequest { GroupId = "g", Topics = null }, 7);
        Assert.Equal((short)ErrorCode.CoordinatorLoadInProgress, fetch.ErrorCode);
        Assert.Equal((short)ErrorCode.CoordinatorLoadInProgress, coordinator.ListGroups(new ListGroupsRequest(), 4).ErrorCode);
        load!();
        Assert.True(coordinator.IsLoaded(0));
        Assert.Equal((short)ErrorCode.MemberIdRequired, (await coordinator.JoinGroupAsync(GroupTestHarness.Join("g"), 9, "c", "h")).ErrorCode);
    }

    [Fact]
    public async Task Single_member_joins_with_member_id_required_then_syncs_to_stable()
    {
        await _h.LoadAsync();
        var (memberId, join) = await _h.JoinNewAsync("g");
        var joined = await join.WaitAsync(Wait);
        Assert.Equal(0, joined.ErrorCode);
        Assert.Equal(1, joined.GenerationId);
        Assert.Equal(memberId, joined.Leader);
        Assert.Equal("range", joined.ProtocolName);
        Assert.Single(joined.Members);
        Assert.Equal("CompletingRebalance", _h.StateOf("g"));
        Assert.Equal(0, _h.Heartbeat("g", memberId, 1)); // heartbeats are fine while syncing

        var sync = await _h.SyncAsync("g", memberId, 1, (memberId, [1, 2, 3])).WaitAsync(Wait);
        Assert.Equal(0, sync.ErrorCode);
        Assert.Equal(new byte[] { 1, 2, 3 }, sync.Assignment.ToArray());
        Assert.Equal("Stable", _h.StateOf("g"));
        Assert.Equal((short)ErrorCode.IllegalGeneration, _h.Heartbeat("g", memberId, 7));
        Assert.Equal((short)ErrorCode.UnknownMemberId, _h.Heartbeat("g", "stranger", 1));
    }

    [Fact]
    public async Task Join_v3_without_member_id_joins_at_once()
    {
        await _h.LoadAsync();
        var joined = await _h.JoinAsync(GroupTestHarness.Join("g"), version: 3).WaitAsync(Wait);
        Assert.Equal(0, joined.ErrorCode);
        Assert.Equal(joined.MemberId, joined.Leader);
    }

    [Fact]
    public async Task Initial_rebalance_delay_collects_members_and_leader_assigns_for_all()
    {
        _h.Config = _h.Config with { InitialRebalanceDelayMs = 3000 };
        await _h.LoadAsync();
        var (a, joinA) = await _h.JoinNewAsync("g");
        _h.Advance(1000);
        Assert.False(joinA.IsCompleted);
        var (b, joinB) = await _h.JoinNewAsync("g");
        _h.Advance(2500); // first delay ends; B arrived during it, so one more delay follows
        Assert.False(joinA.IsCompleted);
        _h.Advance(3000);
        var ra = await joinA.WaitAsync(Wait);
        var rb = await joinB.WaitAsync(Wait);
        Assert.Equal(1, ra.GenerationId);
        Assert.Equal(a, ra.Leader);
        Assert.Equal(2, ra.Members.Count);
        Assert.Empty(rb.Members);

        var followerSync = _h.SyncAsync("g", b, 1);
        Assert.False(followerSync.IsCompleted); // waits for the leader's assignment
        var leaderSync = await _h.SyncAsync("g", a, 1, (a, [0xA]), (b, [0xB])).WaitAsync(Wait);
        Assert.Equal(new byte[] { 0xA }, leaderSync.Assignment.ToArray());
        Assert.Equal(new byte[] { 0xB }, (await followerSync.WaitAsync(Wait)).Assignment.ToArray());
        Assert.Equal("Stable", _h.StateOf("g"));
    }

    private async Task<(string A, string B)> StableGroupOfTwoAsync(string group = "g", int sessionMs = 10_000, int rebalanceMs = 30_000)
    {
        var (a, joinA) = await _h.JoinNewAsync(group, sessionMs: sessionMs, rebalanceMs: rebalanceMs);
        var ra = await joinA.WaitAsync(Wait);
        Assert.Equal(0, (await _h.SyncAsync(group, a, ra.GenerationId, (a, [1])).WaitAsync(Wait)).ErrorCode);
        var (b, joinB) = await _h.JoinNewAsync(group, sessionMs: sessionMs, rebalanceMs: rebalanceMs);
        // A learns of the rebalance from its heartbeat and rejoins.
        Assert.Equal((short)ErrorCode.RebalanceInProgress, _h.Heartbeat(group, a, ra.GenerationId));
        var ra2 = await _h.JoinAsync(GroupTestHarness.Join(group, a, sessionMs: sessionMs, rebalanceMs: rebalanceMs)).WaitAsync(Wait);
        var rb = await joinB.WaitAsync(Wait);
        Assert.Equal(ra2.GenerationId, rb.GenerationId);
        var syncB = _h.SyncAsync(group, b, rb.GenerationId);
        await _h.SyncAsync(group, a, ra2.GenerationId, (a, [1]), (b, [2])).WaitAsync(Wait);
        Assert.Equal(new byte[] { 2 }, (await syncB.WaitAsync(Wait)).Assignment.ToArray());
        return (a, b);
    }

    [Fact]
    public async Task Session_timeout_removes_a_silent_member_and_the_group_rebalances()
    {
        await _h.LoadAsync();
        var (a, b) = await StableGroupOfTwoAsync(sessionMs: 6000);
        // A keeps heartbeating; B goes silent.
        for (var i = 0; i < 2; i++)
        {
            _h.Advance(2000);
            Assert.Equal(0, _h.Heartbeat("g", a, 2));
        }
        _h.Advance(2500); // B's 6 s session (from its SyncGroup at 0) ends at 6000; A's runs to 10000
        Assert.Equal((short)ErrorCode.RebalanceInProgress, _h.Heartbeat("g", a, 2));
        var rejoin = await _h.JoinAsync(GroupTestHarness.Join("g", a, sessionMs: 6000)).WaitAsync(Wait);
        Assert.Equal(3, rejoin.GenerationId);
        Assert.Single(rejoin.Members);
        Assert.Equal((short)ErrorCode.UnknownMemberId, _h.Heartbeat("g", b, 2));
    }

    [Fact]
    public async Task Rebalance_timeout_removes_members_that_do_not_rejoin()
    {
        await _h.LoadAsync();
        var (a, b) = await StableGroupOfTwoAsync(sessionMs: 20_000, rebalanceMs: 5000);
        // A new member triggers a rebalance; A rejoins, B never does (but its session is still alive).
        var (c, joinC) = await _h.JoinNewAsync("g", sessionMs: 20_000, rebalanceMs: 5000);
        var joinA = _h.JoinAsync(GroupTestHarness.Join("g", a, sessionMs: 20_000, rebalanceMs: 5000));
        _h.Advance(4000);
        Assert.False(joinA.IsCompleted);
        _h.Advance(1500);
        var ra = await joinA.WaitAsync(Wait);
        Assert.Equal(0, ra.ErrorCode);
        Assert.Equal(2, ra.Members.Count);
        Assert.DoesNotContain(ra.Members, m => m.MemberId == b);
        Assert.Equal(0, (await joinC.WaitAsync(Wait)).ErrorCode);
    }

    [Fact]
    public async Task Leader_that_never_syncs_is_removed_after_the_rebalance_timeout()
    {
        await _h.LoadAsync();
        var (a, joinA) = await _h.JoinNewAsync("g", rebalanceMs: 5000);
        var ra = await joinA.WaitAsync(Wait);
        Assert.Equal("CompletingRebalance", _h.StateOf("g"));
        _h.Advance(5001);
        // The leader was the only member: the group ends Empty with a new generation.
        Assert.Equal("Empty", _h.StateOf("g"));
        Assert.Equal((short)ErrorCode.UnknownMemberId, _h.Heartbeat("g", a, ra.GenerationId));
    }

    [Fact]
    public async Task Leave_group_batched_by_instance_and_member_id_with_per_member_errors()
    {
        await _h.LoadAsync();
        var (_, joinS) = await _h.JoinNewAsync("g", instance: "static-1");
        var rs = await joinS.WaitAsync(Wait);
        await _h.SyncAsync("g", rs.MemberId, rs.GenerationId, (rs.MemberId, [9])).WaitAsync(Wait);

        var request = new LeaveGroupRequest { GroupId = "g" };
        request.Members.Add(new LeaveGroupRequest.MemberIdentity { MemberId = "wrong-id", GroupInstanceId = "static-1" });
        request.Members.Add(new LeaveGroupRequest.MemberIdentity { MemberId = "ghost" });
        var fenced = _h.Coordinator.LeaveGroup(request, 5);
        Assert.Equal(0, fenced.ErrorCode);
        Assert.Equal((short)ErrorCode.FencedInstanceId, fenced.Members[0].ErrorCode);
        Assert.Equal((short)ErrorCode.UnknownMemberId, fenced.Members[1].ErrorCode);
        Assert.Equal("Stable", _h.StateOf("g"));

        var leave = new LeaveGroupRequest { GroupId = "g" };
        leave.Members.Add(new LeaveGroupRequest.MemberIdentity { MemberId = "", GroupInstanceId = "static-1" });
        var left = _h.Coordinator.LeaveGroup(leave, 5);
        Assert.Equal(0, left.Members[0].ErrorCode);
        Assert.Equal("Empty", _h.StateOf("g"));

        var v0 = _h.Coordinator.LeaveGroup(new LeaveGroupRequest { GroupId = "g", MemberId = "ghost" }, 0);
        Assert.Equal((short)ErrorCode.UnknownMemberId, v0.ErrorCode);
    }

    [Fact]
    public async Task Static_member_restart_keeps_its_assignment_without_rebalance_and_fences_the_old_instance()
    {
        await _h.LoadAsync();
        var (_, join1) = await _h.JoinNewAsync("g", instance: "i-1");
        var r1 = await join1.WaitAsync(Wait);
        var (b, joinB) = (r1.MemberId, (Task<JoinGroupResponse>?)null);
        Assert.Null(joinB);
        await _h.SyncAsync("g", b, r1.GenerationId, (b, [7, 7])).WaitAsync(Wait);
        Assert.Equal("Stable", _h.StateOf("g"));

        // Restart: same instance id, no member id.
        var r2 = await _h.JoinAsync(GroupTestHarness.Join("g", "", "i-1")).WaitAsync(Wait);
        Assert.Equal(0, r2.ErrorCode);
        Assert.NotEqual(r1.MemberId, r2.MemberId);
        Assert.Equal(r1.GenerationId, r2.GenerationId); // no rebalance
        Assert.True(r2.SkipAssignment); // it is the leader; v9 tells it to keep the assignment
        Assert.Equal("Stable", _h.StateOf("g"));
        var sync = await _h.SyncAsync("g", r2.MemberId, r2.GenerationId).WaitAsync(Wait);
        Assert.Equal(new byte[] { 7, 7 }, sync.Assignment.ToArray());

        Assert.Equal((short)ErrorCode.FencedInstanceId, _h.Heartbeat("g", r1.MemberId, r1.GenerationId, "i-1"));
        Assert.Equal(0, _h.Heartbeat("g", r2.MemberId, r2.GenerationId, "i-1"));
        Assert.Equal((short)ErrorCode.FencedInstanceId, GroupTestHarness.CommitError(
            _h.Coordinator.OffsetCommit(new OffsetCommitRequest
            {
                GroupId = "g", GenerationIdOrMemberEpoch = r1.GenerationId, MemberId = r1.MemberId, GroupInstanceId = "i-1",
                Topics = [new OffsetCommitRequest.OffsetCommitRequestTopic { Name = "t", Partitions = [new OffsetCommitRequest.OffsetCommitRequestPartition { PartitionIndex = 0, CommittedOffset = 1 }] }],
            }, 8)));
    }

    [Fact]
    public async Task Offset_commit_checks_generation_and_member_and_allows_simple_commits()
    {
        await _h.LoadAsync();
        Assert.Equal((short)ErrorCode.IllegalGeneration, GroupTestHarness.CommitError(_h.Commit("nogroup", 5, "m", "t", 0, 10)));
        Assert.Equal(0, GroupTestHarness.CommitError(_h.Commit("simple", -1, "", "t", 0, 10)));
        Assert.Equal(10, _h.Fetch("simple", "t", 0));
        Assert.Equal("Empty", _h.StateOf("simple"));

        var (a, join) = await _h.JoinNewAsync("g");
        var r = await join.WaitAsync(Wait);
        // CompletingRebalance: commits wait for the assignment.
        Assert.Equal((short)ErrorCode.RebalanceInProgress, GroupTestHarness.CommitError(_h.Commit("g", r.GenerationId, a, "t", 0, 5)));
        await _h.SyncAsync("g", a, r.GenerationId, (a, [1])).WaitAsync(Wait);
        Assert.Equal(0, GroupTestHarness.CommitError(_h.Commit("g", r.GenerationId, a, "t", 0, 5)));
        Assert.Equal((short)ErrorCode.IllegalGeneration, GroupTestHarness.CommitError(_h.Commit("g", r.GenerationId + 1, a, "t", 0, 6)));
        Assert.Equal((short)ErrorCode.UnknownMemberId, GroupTestHarness.CommitError(_h.Commit("g", r.GenerationId, "other", "t", 0, 6)));
        Assert.Equal((short)ErrorCode.UnknownMemberId, GroupTestHarness.CommitError(_h.Commit("g", -1, "", "t", 0, 6)));
        Assert.Equal((short)ErrorCode.OffsetMetadataTooLarge, GroupTestHarness.CommitError(_h.Commit("g", r.GenerationId, a, "t", 0, 6, new string('x', 5000))));
        _h.UnknownPartitions.Add(("gone", 0));
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, GroupTestHarness.CommitError(_h.Commit("g", r.GenerationId, a, "gone", 0, 6)));
        Assert.Equal(5, _h.Fetch("g", "t", 0));
        Assert.Equal(-1, _h.Fetch("g", "t", 1));
    }

    [Fact]
    public async Task Offset_fetch_all_versions_and_multi_group()
    {
        await _h.LoadAsync();
        _h.Commit("a", -1, "", "t", 0, 11, "meta");
        _h.Commit("b", -1, "", "t", 1, 22);
        var v1 = _h.Coordinator.OffsetFetch(new OffsetFetchRequest { GroupId = "a", Topics = [new() { Name = "t", PartitionIndexes = [0, 1] }] }, 1);
        Assert.Equal([11L, -1L], v1.Topics[0].Partitions.Select(p => p.CommittedOffset));
        Assert.Equal("meta", v1.Topics[0].Partitions[0].Metadata);
        var all = _h.Coordinator.OffsetFetch(new OffsetFetchRequest { GroupId = "a", Topics = null }, 7);
        Assert.Equal(11, Assert.Single(Assert.Single(all.Topics).Partitions).CommittedOffset);
        Assert.Equal(3, Assert.Single(Assert.Single(all.Topics).Partitions).CommittedLeaderEpoch);
        var multi = _h.Coordinator.OffsetFetch(new OffsetFetchRequest
        {
            Groups =
            [
                new() { GroupId = "a", Topics = null },
                new() { GroupId = "b", Topics = [new() { Name = "t", PartitionIndexes = [1] }] },
                new() { GroupId = "", Topics = null },
            ],
            RequireStable = true,
        }, 8);
        Assert.Equal(11, multi.Groups[0].Topics[0].Partitions[0].CommittedOffset);
        Assert.Equal(22, multi.Groups[1].Topics[0].Partitions[0].CommittedOffset);
        Assert.Equal((short)ErrorCode.InvalidGroupId, multi.Groups[2].ErrorCode);
    }

    [Fact]
    public async Task Group_and_offsets_survive_a_restart_and_are_rebuilt_from_the_log()
    {
        await _h.LoadAsync();
        var (a, join) = await _h.JoinNewAsync("g");
        var r = await join.WaitAsync(Wait);
        await _h.SyncAsync("g", a, r.GenerationId, (a, [4, 2])).WaitAsync(Wait);
        _h.Commit("g", r.GenerationId, a, "t", 0, 100);
        _h.Commit("g", r.GenerationId, a, "t", 0, 120);
        _h.Commit("simple", -1, "", "u", 3, 7);
        Assert.Equal(0, _h.Coordinator.DeleteGroups(new DeleteGroupsRequest { GroupsNames = ["simple"] }, 2).Results[0].ErrorCode);

        await _h.RestartAsync();
        Assert.Equal(120, _h.Fetch("g", "t", 0));
        Assert.Equal(-1, _h.Fetch("simple", "u", 3));
        Assert.Equal("Stable", _h.StateOf("g"));
        // The member resumes heartbeating in the same generation and keeps its assignment.
        Assert.Equal(0, _h.Heartbeat("g", a, r.GenerationId));
        var sync = await _h.SyncAsync("g", a, r.GenerationId).WaitAsync(Wait);
        Assert.Equal(new byte[] { 4, 2 }, sync.Assignment.ToArray());
    }

    [Fact]
    public async Task Unload_answers_waiting_joins_with_not_coordinator()
    {
        await _h.LoadAsync();
        _h.Config = _h.Config with { InitialRebalanceDelayMs = 3000 };
        var (_, join) = await _h.JoinNewAsync("g");
        Assert.False(join.IsCompleted);
        _h.Coordinator.Unload(0);
        Assert.Equal((short)ErrorCode.NotCoordinator, (await join.WaitAsync(Wait)).ErrorCode);
        Assert.Equal((short)ErrorCode.NotCoordinator, _h.Heartbeat("g", "x", 1));
    }

    [Fact]
    public async Task Delete_groups_list_and_describe()
    {
        await _h.LoadAsync();
        var (a, join) = await _h.JoinNewAsync("busy");
        var r = await join.WaitAsync(Wait);
        await _h.SyncAsync("busy", a, r.GenerationId, (a, [1])).WaitAsync(Wait);
        _h.Commit("idle", -1, "", "t", 0, 1);

        var listed = _h.Coordinator.ListGroups(new ListGroupsRequest(), 5);
        Assert.Equal(["busy", "idle"], listed.Groups.Select(g => g.GroupId).Order());
        var stable = _h.Coordinator.ListGroups(new ListGroupsRequest { StatesFilter = ["stable"] }, 4);
        Assert.Equal("busy", Assert.Single(stable.Groups).GroupId);
        Assert.Empty(_h.Coordinator.ListGroups(new ListGroupsRequest { TypesFilter = ["consumer"] }, 5).Groups);

        var described = _h.Coordinator.DescribeGroups(new DescribeGroupsRequest { Groups = ["busy", "unknown"] }, 5);
        Assert.Equal("Stable", described.Groups[0].GroupState);
        Assert.Equal("range", described.Groups[0].ProtocolData);
        Assert.Equal(a, Assert.Single(described.Groups[0].Members).MemberId);
        Assert.Equal(new byte[] { 1 }, described.Groups[0].Members[0].MemberAssignment.ToArray());
        Assert.Equal("Dead", described.Groups[1].GroupState);

        var deleted = _h.Coordinator.DeleteGroups(new DeleteGroupsRequest { GroupsNames = ["busy", "idle", "unknown", ""] }, 2);
        Assert.Equal([(short)ErrorCode.NonEmptyGroup, (short)0, (short)ErrorCode.GroupIdNotFound, (short)ErrorCode.InvalidGroupId],
            deleted.Results.Select(x => x.ErrorCode));
        Assert.Equal(-1, _h.Fetch("idle", "t", 0));
    }

    [Fact]
    public async Task Offset_delete_refuses_subscribed_topics_of_an_active_consumer_group()
    {
        await _h.LoadAsync();
        var (a, join) = await _h.JoinNewAsync("g", metadata: GroupTestHarness.Subscription("subscribed"));
        var r = await join.WaitAsync(Wait);
        await _h.SyncAsync("g", a, r.GenerationId, (a, [])).WaitAsync(Wait);
        _h.Commit("g", r.GenerationId, a, "subscribed", 0, 5);
        _h.Commit("g", r.GenerationId, a, "old", 0, 6);
        var response = _h.Coordinator.OffsetDelete(new OffsetDeleteRequest
        {
            GroupId = "g",
            Topics =
            [
                new() { Name = "subscribed", Partitions = [new() { PartitionIndex = 0 }] },
                new() { Name = "old", Partitions = [new() { PartitionIndex = 0 }] },
            ],
        }, 0);
        Assert.Equal(0, response.ErrorCode);
        Assert.Equal((short)ErrorCode.GroupSubscribedToTopic, response.Topics[0].Partitions[0].ErrorCode);
        Assert.Equal(0, response.Topics[1].Partitions[0].ErrorCode);
        Assert.Equal(5, _h.Fetch("g", "subscribed", 0));
        Assert.Equal(-1, _h.Fetch("g", "old", 0));
        Assert.Equal((short)ErrorCode.GroupIdNotFound, _h.Coordinator.OffsetDelete(new OffsetDeleteRequest { GroupId = "none" }, 0).ErrorCode);
    }

    [Fact]
    public async Task Offsets_of_an_empty_group_expire_after_the_retention()
    {
        _h.Config = _h.Config with { OffsetsRetentionMs = 60_000 };
        await _h.LoadAsync();
        _h.Commit("simple", -1, "", "t", 0, 1);
        _h.Advance(30_000);
        _h.Commit("simple", -1, "", "t", 1, 2);
        _h.Advance(30_001);
        Assert.Equal(1, _h.Coordinator.ExpireOffsets());
        Assert.Equal(-1, _h.Fetch("simple", "t", 0));
        Assert.Equal(2, _h.Fetch("simple", "t", 1));
        _h.Advance(30_000);
        Assert.Equal(1, _h.Coordinator.ExpireOffsets());
        Assert.Equal("Dead", _h.StateOf("simple")); // deleted with its last offset

        await _h.RestartAsync();
        Assert.Equal(-1, _h.Fetch("simple", "t", 1));
    }
}
