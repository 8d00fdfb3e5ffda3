using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Groups;

/// <summary>
/// A static member (group.instance.id) whose coordinator fails over: the new coordinator loads
/// the group from __consumer_offsets and, as Kafka's (GroupMetadataManager.loadGroup re-registers
/// static members), keeps mapping the instance id to the member id the record names.
/// </summary>
public sealed class StaticMemberFailoverTests : IDisposable
{
    private readonly GroupTestHarness _h = new();
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    public void Dispose() => _h.Dispose();

    private Task<SyncGroupResponse> Sync(string memberId, int generation, string instance, params (string Member, byte[] Assignment)[] assignments)
    {
        var r = new SyncGroupRequest
        {
            GroupId = "g", MemberId = memberId, GroupInstanceId = instance, GenerationId = generation, ProtocolType = "consumer", ProtocolName = "range",
        };
        foreach (var (m, a) in assignments) r.Assignments.Add(new SyncGroupRequest.SyncGroupRequestAssignment { MemberId = m, Assignment = a });
        return _h.Coordinator.SyncGroupAsync(r, 5);
    }

    private short Commit(string memberId, int generation, string instance, long offset) => GroupTestHarness.CommitError(
        _h.Coordinator.OffsetCommit(new OffsetCommitRequest
        {
            GroupId = "g", GenerationIdOrMemberEpoch = generation, MemberId = memberId, GroupInstanceId = instance,
            Topics = [new OffsetCommitRequest.OffsetCommitRequestTopic { Name = "t", Partitions = [new OffsetCommitRequest.OffsetCommitRequestPartition { PartitionIndex = 0, CommittedOffset = offset }] }],
        }, 8));

    private async Task<(string Member, int Generation)> JoinedAndSyncedStaticMemberAsync()
    {
        await _h.LoadAsync();
        var (_, join) = await _h.JoinNewAsync("g", instance: "i-1");
        var joined = await join.WaitAsync(Wait);
        Assert.Equal(0, joined.ErrorCode);
        var synced = await Sync(joined.MemberId, joined.GenerationId, "i-1", (joined.MemberId, [7, 7])).WaitAsync(Wait);
        Assert.Equal(0, synced.ErrorCode);
        Assert.Equal("Stable", _h.StateOf("g"));
        return (joined.MemberId, joined.GenerationId);
    }

    [Fact]
    public async Task A_static_member_keeps_heartbeating_committing_and_syncing_after_the_group_is_loaded_elsewhere()
    {
        var (member, generation) = await JoinedAndSyncedStaticMemberAsync();
        Assert.Equal(0, Commit(member, generation, "i-1", 5));

        await _h.RestartAsync();

        Assert.Equal("Stable", _h.StateOf("g"));
        Assert.Equal(0, _h.Heartbeat("g", member, generation, "i-1"));
        Assert.Equal(0, Commit(member, generation, "i-1", 6));
        Assert.Equal(6, _h.Fetch("g", "t", 0));
        var sync = await Sync(member, generation, "i-1").WaitAsync(Wait);
        Assert.Equal(0, sync.ErrorCode);
        Assert.Equal(new byte[] { 7, 7 }, sync.Assignment.ToArray());
        // Another member id with the same instance id is a zombie: fenced, as on the first coordinator.
        Assert.Equal((short)ErrorCode.FencedInstanceId, _h.Heartbeat("g", "zombie", generation, "i-1"));
        Assert.Equal((short)ErrorCode.FencedInstanceId, Commit("zombie", generation, "i-1", 9));
        Assert.Equal(6, _h.Fetch("g", "t", 0));
    }

    [Fact]
    public async Task A_static_member_rejoining_with_its_member_id_after_the_load_keeps_its_assignment()
    {
        var (member, generation) = await JoinedAndSyncedStaticMemberAsync();

        await _h.RestartAsync();

        var rejoin = await _h.JoinAsync(GroupTestHarness.Join("g", member, "i-1")).WaitAsync(Wait);
        Assert.Equal(0, rejoin.ErrorCode);
        Assert.Equal(member, rejoin.MemberId);
        var sync = await Sync(member, rejoin.GenerationId, "i-1", (member, [7, 7])).WaitAsync(Wait);
        Assert.Equal(0, sync.ErrorCode);
        Assert.Equal(new byte[] { 7, 7 }, sync.Assignment.ToArray());
        Assert.Equal(0, _h.Heartbeat("g", member, rejoin.GenerationId, "i-1"));
        var zombie = await _h.JoinAsync(GroupTestHarness.Join("g", "zombie", "i-1")).WaitAsync(Wait);
        Assert.Equal((short)ErrorCode.FencedInstanceId, zombie.ErrorCode);
    }

    [Fact]
    public async Task A_static_member_replaced_before_the_failover_is_the_new_id_after_it()
    {
        var (old, generation) = await JoinedAndSyncedStaticMemberAsync();
        var replaced = await _h.JoinAsync(GroupTestHarness.Join("g", "", "i-1")).WaitAsync(Wait);
        Assert.Equal(0, replaced.ErrorCode);
        Assert.NotEqual(old, replaced.MemberId);

        await _h.RestartAsync();

        Assert.Equal(0, _h.Heartbeat("g", replaced.MemberId, replaced.GenerationId, "i-1"));
        Assert.Equal(0, Commit(replaced.MemberId, replaced.GenerationId, "i-1", 3));
        Assert.Equal((short)ErrorCode.FencedInstanceId, _h.Heartbeat("g", old, generation, "i-1"));
    }
}
