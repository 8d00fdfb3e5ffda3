using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Broker.Groups;

// JoinGroup, SyncGroup, Heartbeat, LeaveGroup: the classic protocol's membership.
public sealed partial class GroupCoordinator
{
    /// <summary>Longest group.instance.id / member id / client id accepted (bounds memory per member).</summary>
    public const int IdCharsMax = 1024;
    /// <summary>Most protocols one member may offer; most bytes of one protocol's metadata.</summary>
    public const int ProtocolsPerMemberMax = 64;
    public const int ProtocolMetadataBytesMax = 1024 * 1024;

    public Task<JoinGroupResponse> JoinGroupAsync(JoinGroupRequest request, short version, string clientId, string clientHost)
    {
        if (string.IsNullOrEmpty(request.GroupId)) return Task.FromResult(JoinError(ErrorCode.InvalidGroupId, request.MemberId));
        var shard = ShardFor(request.GroupId, out var error);
        if (shard is null) return Task.FromResult(JoinError(error, request.MemberId));
        var config = _config();
        if (request.SessionTimeoutMs < config.MinSessionTimeoutMs || request.SessionTimeoutMs > config.MaxSessionTimeoutMs)
            return Task.FromResult(JoinError(ErrorCode.InvalidSessionTimeout, request.MemberId));
        if (request.MemberId.Length > IdCharsMax || (request.GroupInstanceId?.Length ?? 0) > IdCharsMax || clientId.Length > IdCharsMax)
            return Task.FromResult(JoinError(ErrorCode.InvalidRequest, request.MemberId));
        if (string.IsNullOrEmpty(request.ProtocolType) || request.Protocols.Count == 0 || request.Protocols.Count > ProtocolsPerMemberMax
            || request.Protocols.Any(p => p.Metadata.Length > ProtocolMetadataBytesMax))
            return Task.FromResult(JoinError(ErrorCode.InconsistentGroupProtocol, request.MemberId));
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        var rebalanceTimeoutMs = version == 0 || request.RebalanceTimeoutMs <= 0 ? request.SessionTimeoutMs : request.RebalanceTimeoutMs;
        var protocols = request.Protocols.Select(p => (p.Name, p.Metadata.ToArray())).ToList();
        var tcs = new TaskCompletionSource<JoinGroupResponse>(TaskCreationOptions.RunContinuationsAsynchronously);

        lock (shard.Gate)
        {
            if (shard.Unloaded) return Task.FromResult(JoinError(ErrorCode.NotCoordinator, request.MemberId));
            var isUnknown = request.MemberId.Length == 0;
            if (!shard.Groups.TryGetValue(request.GroupId, out var group))
            {
                if (!isUnknown) return Task.FromResult(JoinError(ErrorCode.UnknownMemberId, request.MemberId));
                group = new ClassicGroup(request.GroupId, NowMs);
                shard.Groups[request.GroupId] = group;
            }
            if (group.Is(GroupState.Dead)) return Task.FromResult(JoinError(ErrorCode.CoordinatorNotAvailable, request.MemberId));
            // A consumer-protocol (KIP-848) group with members does not take classic members.
            if (group.Consumer is { Members.Count: > 0 }) return Task.FromResult(JoinError(ErrorCode.InconsistentGroupProtocol, request.MemberId));
            if (group.Consumer is not null)
            {
                // An empty consumer-protocol group becomes classic: its record goes.
                var cleared = Append(shard, ConsumerTombstones(group));
                if (cleared != ErrorCode.None) return Task.FromResult(JoinError(cleared, request.MemberId));
                group.Consumer = null;
            }
            if (!group.SupportsProtocols(request.ProtocolType, protocols.Select(p => p.Name)))
                return Task.FromResult(JoinError(ErrorCode.InconsistentGroupProtocol, request.MemberId));
            var isNewMember = isUnknown
                ? request.GroupInstanceId is null || !group.StaticMembers.ContainsKey(request.GroupInstanceId)
                : !group.HasMember(request.MemberId) && !group.PendingMembers.ContainsKey(request.MemberId);
            if (isNewMember && group.Members.Count + group.PendingMembers.Count >= config.GroupMaxSize)
                return Task.FromResult(JoinError(ErrorCode.GroupMaxSizeReached, request.MemberId));

            var member = new GroupMember
            {
                MemberId = request.MemberId,
                GroupInstanceId = request.GroupInstanceId,
                ClientId = clientId,
                ClientHost = clientHost,
                RebalanceTimeoutMs = rebalanceTimeoutMs,
                SessionTimeoutMs = request.SessionTimeoutMs,
                ProtocolType = request.ProtocolType,
                Protocols = protocols,
                JoinVersion = version,
            };
            return isUnknown
                ? JoinUnknownMember(shard, group, member, version, tcs)
                : JoinKnownMember(shard, group, member, tcs);
        }
    }

    private Task<JoinGroupResponse> JoinUnknownMember(Shard shard, ClassicGroup group, GroupMember joining, short version, TaskCompletionSource<JoinGroupResponse> tcs)
    {
        if (joining.GroupInstanceId is { } instance)
        {
            joining.MemberId = ClientMemberId(instance);
            if (group.StaticMembers.TryGetValue(instance, out var oldId) && group.Members.TryGetValue(oldId, out var old))
                return ReplaceStaticMember(shard, group, old, joining, tcs);
            AddMemberAndRebalance(shard, group, joining, tcs);
            return tcs.Task;
        }
        joining.MemberId = ClientMemberId(joining.ClientId);
        if (version >= 4)
        {
            // KIP-394: hand out the id first; only a JoinGroup that carries it becomes a member,
            // so a client that never comes back costs one session timeout, not a rebalance.
            var memberId = joining.MemberId;
            var timer = CreateTimer(_time, _logger, _ =>
            {
                lock (shard.Gate)
                {
                    if (group.PendingMembers.Remove(memberId, out var t))
                    {
                        t.Dispose();
                        MaybeCompleteJoin(shard, group);
                    }
                }
            }, null, TimeSpan.FromMilliseconds(joining.SessionTimeoutMs), Timeout.InfiniteTimeSpan);
            group.PendingMembers[memberId] = timer;
            return Task.FromResult(JoinError(ErrorCode.MemberIdRequired, memberId));
        }
        AddMemberAndRebalance(shard, group, joining, tcs);
        return tcs.Task;
    }

    /// <summary>
    /// A static member restarted (same group.instance.id, no member id): the new id replaces the
    /// old one, the old instance is fenced, and a Stable group keeps its assignment without a
    /// rebalance when the member offers the same protocols.
    /// </summary>
    private Task<JoinGroupResponse> ReplaceStaticMember(Shard shard, ClassicGroup group, GroupMember old, GroupMember joining, TaskCompletionSource<JoinGroupResponse> tcs)
    {
        var oldId = old.MemberId;
        old.AwaitingJoin?.TrySetResult(JoinError(ErrorCode.FencedInstanceId, oldId));
        old.AwaitingJoin = null;
        old.AwaitingSync?.TrySetResult(new SyncGroupResponse { ErrorCode = (short)ErrorCode.FencedInstanceId });
        old.AwaitingSync = null;
        var sameProtocols = old.SameProtocols(joining.Protocols);
        group.Members.Remove(oldId);
        old.MemberId = joining.MemberId;
        old.ClientId = joining.ClientId;
        old.ClientHost = joining.ClientHost;
        old.SessionTimeoutMs = joining.SessionTimeoutMs;
        old.RebalanceTimeoutMs = joining.RebalanceTimeoutMs;
        old.JoinVersion = joining.JoinVersion;
        group.Members[old.MemberId] = old;
        group.StaticMembers[old.GroupInstanceId!] = old.MemberId;
        if (group.LeaderId == oldId) group.LeaderId = old.MemberId;
        ScheduleSession(shard, group, old);
        _logger.LogInformation("Group {Group}: static member {Instance} rejoined as {Member} (was {Old})", group.GroupId, old.GroupInstanceId, old.MemberId, oldId);

        switch (group.State)
        {
            case GroupState.Stable when sameProtocols:
                {
                    var error = PersistGroup(shard, group);
                    if (error != ErrorCode.None)
                    {
                        // Undo: the old id stays valid when the new one could not be recorded.
                        group.Members.Remove(old.MemberId);
                        if (group.LeaderId == old.MemberId) group.LeaderId = oldId;
                        old.MemberId = oldId;
                        group.Members[oldId] = old;
                        group.StaticMembers[old.GroupInstanceId!] = oldId;
                        return Task.FromResult(JoinError(error, ""));
                    }
                    var isLeader = group.LeaderId == old.MemberId;
                    // v9+: the leader learns it need not compute a new assignment (KIP-814).
                    var skip = isLeader && joining.JoinVersion >= 9;
                    return Task.FromResult(CurrentJoinResponse(group, old, includeMembers: isLeader, skipAssignment: skip));
                }
            case GroupState.PreparingRebalance:
                old.Protocols = joining.Protocols;
                old.AwaitingJoin = tcs;
                MaybeCompleteJoin(shard, group);
                return tcs.Task;
            default:
                old.Protocols = joining.Protocols;
                old.AwaitingJoin = tcs;
                PrepareRebalance(shard, group, $"static member {old.GroupInstanceId} rejoined");
                return tcs.Task;
        }
    }

    private void AddMemberAndRebalance(Shard shard, ClassicGroup group, GroupMember member, TaskCompletionSource<JoinGroupResponse> tcs)
    {
        group.Members[member.MemberId] = member;
        if (member.GroupInstanceId is { } instance) group.StaticMembers[instance] = member.MemberId;
        group.LeaderId ??= member.MemberId;
        if (string.IsNullOrEmpty(group.ProtocolType)) group.ProtocolType = member.ProtocolType;
        member.AwaitingJoin = tcs;
        if (group.InInitialDelay) group.NewMemberJoinedDuringDelay = true;
        ScheduleSession(shard, group, member);
        if (group.State is GroupState.Stable or GroupState.CompletingRebalance or GroupState.Empty)
            PrepareRebalance(shard, group, $"member {member.MemberId} joined");
        else
            MaybeCompleteJoin(shard, group);
    }

    private Task<JoinGroupResponse> JoinKnownMember(Shard shard, ClassicGroup group, GroupMember joining, TaskCompletionSource<JoinGroupResponse> tcs)
    {
        var memberId = joining.MemberId;
        if (group.PendingMembers.Remove(memberId, out var pendingTimer))
        {
            pendingTimer.Dispose();
            AddMemberAndRebalance(shard, group, joining, tcs);
            return tcs.Task;
        }
        if (joining.GroupInstanceId is { } instance && group.StaticMembers.TryGetValue(instance, out var registered) && registered != memberId)
            return Task.FromResult(JoinError(ErrorCode.FencedInstanceId, memberId));
        if (!group.Members.TryGetValue(memberId, out var member))
            return Task.FromResult(JoinError(ErrorCode.UnknownMemberId, memberId));
        if (member.GroupInstanceId != joining.GroupInstanceId)
            return Task.FromResult(JoinError(ErrorCode.FencedInstanceId, memberId));

        var sameProtocols = member.SameProtocols(joining.Protocols);
        void Update()
        {
            member.Protocols = joining.Protocols;
            member.ClientId = joining.ClientId;
            member.ClientHost = joining.ClientHost;
            member.SessionTimeoutMs = joining.SessionTimeoutMs;
            member.RebalanceTimeoutMs = joining.RebalanceTimeoutMs;
            member.JoinVersion = joining.JoinVersion;
            // A JoinGroup sent again while the first still waits (client retry): the older one is answered as superseded.
            member.AwaitingJoin?.TrySetResult(JoinError(ErrorCode.RebalanceInProgress, memberId));
            member.AwaitingJoin = tcs;
        }
        switch (group.State)
        {
            case GroupState.PreparingRebalance:
                Update();
                ScheduleSession(shard, group, member);
                MaybeCompleteJoin(shard, group);
                return tcs.Task;
            case GroupState.CompletingRebalance:
                if (sameProtocols)
                {
                    // The member missed our answer (e.g. its connection dropped): repeat it.
                    ScheduleSession(shard, group, member);
                    return Task.FromResult(CurrentJoinResponse(group, member, includeMembers: memberId == group.LeaderId));
                }
                Update();
                PrepareRebalance(shard, group, $"member {memberId} changed its protocols");
                return tcs.Task;
            case GroupState.Stable:
                if (memberId == group.LeaderId || !sameProtocols)
                {
                    // The leader rejoining means it wants a new assignment (e.g. its subscription's
                    // topics gained partitions): Kafka rebalances.
                    Update();
                    PrepareRebalance(shard, group, $"member {memberId} rejoined");
                    return tcs.Task;
                }
                ScheduleSession(shard, group, member);
                return Task.FromResult(CurrentJoinResponse(group, member, includeMembers: false));
            default:
                return Task.FromResult(JoinError(ErrorCode.UnknownMemberId, memberId));
        }
    }

    public Task<SyncGroupResponse> SyncGroupAsync(SyncGroupRequest request, short version)
    {
        static Task<SyncGroupResponse> Error(ErrorCode e) => Task.FromResult(new SyncGroupResponse { ErrorCode = (short)e });
        if (string.IsNullOrEmpty(request.GroupId)) return Error(ErrorCode.InvalidGroupId);
        var shard = ShardFor(request.GroupId, out var error);
        if (shard is null) return Error(error);
        lock (shard.Gate)
        {
            if (shard.Unloaded) return Error(ErrorCode.NotCoordinator);
            if (!shard.Groups.TryGetValue(request.GroupId, out var group)) return Error(ErrorCode.UnknownMemberId);
            if (group.Is(GroupState.Dead)) return Error(ErrorCode.CoordinatorNotAvailable);
            var check = ValidateMember(group, request.MemberId, request.GroupInstanceId);
            if (check != ErrorCode.None) return Error(check);
            if (request.GenerationId != group.GenerationId) return Error(ErrorCode.IllegalGeneration);
            if ((request.ProtocolType is { } pt && pt != group.ProtocolType) || (request.ProtocolName is { } pn && pn != group.ProtocolName))
                return Error(ErrorCode.InconsistentGroupProtocol);
            var member = group.Members[request.MemberId];
            switch (group.State)
            {
                case GroupState.Empty:
                    return Error(ErrorCode.UnknownMemberId);
                case GroupState.PreparingRebalance:
                    return Error(ErrorCode.RebalanceInProgress);
                case GroupState.Stable:
                    ScheduleSession(shard, group, member);
                    return Task.FromResult(SyncResponse(group, member));
                case GroupState.CompletingRebalance:
                    {
                        var tcs = new TaskCompletionSource<SyncGroupResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
                        member.AwaitingSync?.TrySetResult(new SyncGroupResponse { ErrorCode = (short)ErrorCode.RebalanceInProgress });
                        member.AwaitingSync = tcs;
                        ScheduleSession(shard, group, member);
                        if (request.MemberId == group.LeaderId) CompleteSync(shard, group, request);
                        return tcs.Task;
                    }
                default:
                    return Error(ErrorCode.CoordinatorNotAvailable);
            }
        }
    }

    private void CompleteSync(Shard shard, ClassicGroup group, SyncGroupRequest leaderRequest)
    {
        var assignments = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var a in leaderRequest.Assignments) assignments[a.MemberId] = a.Assignment.ToArray();
        var previous = group.Members.Values.ToDictionary(m => m.MemberId, m => m.Assignment, StringComparer.Ordinal);
        // Members the leader left out get an empty assignment, as in Kafka.
        foreach (var m in group.Members.Values) m.Assignment = assignments.GetValueOrDefault(m.MemberId) ?? [];
        var error = PersistGroup(shard, group);
        if (error != ErrorCode.None)
        {
            foreach (var m in group.Members.Values)
            {
                m.Assignment = previous[m.MemberId];
                m.AwaitingSync?.TrySetResult(new SyncGroupResponse { ErrorCode = (short)error });
                m.AwaitingSync = null;
            }
            PrepareRebalance(shard, group, $"writing the assignment failed with {error}");
            return;
        }
        CancelPhaseTimer(group);
        group.TransitionTo(GroupState.Stable, NowMs);
        foreach (var m in group.Members.Values)
        {
            m.AwaitingSync?.TrySetResult(SyncResponse(group, m));
            m.AwaitingSync = null;
        }
    }

    private static SyncGroupResponse SyncResponse(ClassicGroup group, GroupMember member) => new()
    {
        ProtocolType = group.ProtocolType, ProtocolName = group.ProtocolName, Assignment = member.Assignment,
    };

    /// <summary>Member id known, and a given group.instance.id still maps to it (else FENCED_INSTANCE_ID).</summary>
    private static ErrorCode ValidateMember(ClassicGroup group, string memberId, string? groupInstanceId)
    {
        if (groupInstanceId is not null && group.StaticMembers.TryGetValue(groupInstanceId, out var current) && current != memberId)
            return ErrorCode.FencedInstanceId;
        if (!group.Members.TryGetValue(memberId, out var member)) return ErrorCode.UnknownMemberId;
        if (groupInstanceId is not null && member.GroupInstanceId != groupInstanceId) return ErrorCode.FencedInstanceId;
        return ErrorCode.None;
    }

    public HeartbeatResponse Heartbeat(HeartbeatRequest request, short version)
    {
        static HeartbeatResponse Error(ErrorCode e) => new() { ErrorCode = (short)e };
        if (string.IsNullOrEmpty(request.GroupId)) return Error(ErrorCode.InvalidGroupId);
        var shard = ShardFor(request.GroupId, out var error);
        if (shard is null) return Error(error);
        lock (shard.Gate)
        {
            if (shard.Unloaded) return Error(ErrorCode.NotCoordinator);
            if (!shard.Groups.TryGetValue(request.GroupId, out var group)) return Error(ErrorCode.UnknownMemberId);
            if (group.Is(GroupState.Dead)) return Error(ErrorCode.CoordinatorNotAvailable);
            if (group.Is(GroupState.Empty)) return Error(ErrorCode.UnknownMemberId);
            var check = ValidateMember(group, request.MemberId, request.GroupInstanceId);
            if (check != ErrorCode.None) return Error(check);
            if (request.GenerationId != group.GenerationId) return Error(ErrorCode.IllegalGeneration);
            ScheduleSession(shard, group, group.Members[request.MemberId]);
            // During the join phase the member must rejoin; in CompletingRebalance it is waiting
            // for (or about to send) SyncGroup, which is fine.
            return group.Is(GroupState.PreparingRebalance) ? Error(ErrorCode.RebalanceInProgress) : Error(ErrorCode.None);
        }
    }

    public LeaveGroupResponse LeaveGroup(LeaveGroupRequest request, short version)
    {
        var response = new LeaveGroupResponse();
        // v0-2 name one member; v3+ a batch, each with an optional group.instance.id.
        var leaving = version >= 3
            ? request.Members.Select(m => (m.MemberId, m.GroupInstanceId)).ToList()
            : [(request.MemberId, (string?)null)];
        if (string.IsNullOrEmpty(request.GroupId)) return LeaveError(response, ErrorCode.InvalidGroupId);
        var shard = ShardFor(request.GroupId, out var error);
        if (shard is null) return LeaveError(response, error);
        lock (shard.Gate)
        {
            if (shard.Unloaded) return LeaveError(response, ErrorCode.NotCoordinator);
            if (!shard.Groups.TryGetValue(request.GroupId, out var group)) return LeaveError(response, ErrorCode.UnknownMemberId);
            if (group.Is(GroupState.Dead)) return LeaveError(response, ErrorCode.CoordinatorNotAvailable);
            var removedAny = false;
            foreach (var (memberId, instanceId) in leaving)
            {
                var result = new LeaveGroupResponse.MemberResponse { MemberId = memberId, GroupInstanceId = instanceId };
                response.Members.Add(result);
                GroupMember? member = null;
                if (instanceId is not null)
                {
                    if (!group.StaticMembers.TryGetValue(instanceId, out var current)) result.ErrorCode = (short)ErrorCode.UnknownMemberId;
                    else if (memberId.Length > 0 && memberId != current) result.ErrorCode = (short)ErrorCode.FencedInstanceId;
                    else member = group.Members[current];
                }
                else if (group.PendingMembers.Remove(memberId, out var pending))
                {
                    pending.Dispose();
                    MaybeCompleteJoin(shard, group);
                    continue;
                }
                else if (!group.Members.TryGetValue(memberId, out member)) result.ErrorCode = (short)ErrorCode.UnknownMemberId;
                if (member is null) continue;
                _logger.LogInformation("Group {Group}: member {Member} left", group.GroupId, member.MemberId);
                RemoveMember(group, member);
                removedAny = true;
            }
            if (removedAny)
            {
                if (group.State is GroupState.Stable or GroupState.CompletingRebalance) PrepareRebalance(shard, group, "members left");
                else MaybeCompleteJoin(shard, group);
            }
        }
        if (version < 3) response.ErrorCode = response.Members[0].ErrorCode;
        return response;
    }

    private static LeaveGroupResponse LeaveError(LeaveGroupResponse response, ErrorCode error)
    {
        response.ErrorCode = (short)error;
        response.Members.Clear();
        return response;
    }
}
