using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Broker.Groups;

// KIP-848 (group.protocol=consumer): ConsumerGroupHeartbeat and ConsumerGroupDescribe with
// server-side assignors. State is written to __consumer_offsets (GroupCoordinator.ConsumerPersistence.cs).
public sealed partial class GroupCoordinator
{
    /// <summary>Most topics one member may subscribe to (bounds the assignor's work per heartbeat).</summary>
    public const int SubscribedTopicsMax = 10_000;

    /// <summary>Topic name → id and partition count; null when the topic does not exist.</summary>
    public Func<string, ServerAssignors.TopicMeta?> TopicLookup { get; init; } = _ => null;

    /// <summary>Topic id → name (ConsumerGroupDescribe shows both).</summary>
    public Func<Guid, string?> TopicNameById { get; init; } = _ => null;

    public ConsumerGroupHeartbeatResponse ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest request, short version, string clientId, string clientHost)
    {
        static ConsumerGroupHeartbeatResponse Error(ErrorCode e, string? message = null) => new() { ErrorCode = (short)e, ErrorMessage = message };
        if (string.IsNullOrEmpty(request.GroupId)) return Error(ErrorCode.InvalidGroupId);
        var epoch = request.MemberEpoch;
        if (epoch < -2) return Error(ErrorCode.InvalidRequest, "MemberEpoch must be -2, -1, 0 or a member epoch.");
        if (version >= 1 && string.IsNullOrEmpty(request.MemberId)) return Error(ErrorCode.InvalidRequest, "MemberId can't be empty.");
        if (epoch != 0 && string.IsNullOrEmpty(request.MemberId)) return Error(ErrorCode.InvalidRequest, "MemberId can't be empty.");
        if (request.MemberId.Length > IdCharsMax || (request.InstanceId?.Length ?? 0) > IdCharsMax || (request.RackId?.Length ?? 0) > IdCharsMax)
            return Error(ErrorCode.InvalidRequest, "An id is too long.");
        // Clients without a regex may send an empty string for it (librdkafka does): same as none.
        if (request.SubscribedTopicRegex is { Length: 0 }) request.SubscribedTopicRegex = null;
        if (epoch == 0)
        {
            if (request.RebalanceTimeoutMs < 0) return Error(ErrorCode.InvalidRequest, "RebalanceTimeoutMs must be provided when joining.");
            if (request.SubscribedTopicNames is null && request.SubscribedTopicRegex is null) return Error(ErrorCode.InvalidRequest, "SubscribedTopicNames must be set when joining.");
            if (request.TopicPartitions is { Count: > 0 }) return Error(ErrorCode.InvalidRequest, "TopicPartitions must be empty when joining.");
        }
        if (epoch == -2 && request.InstanceId is null) return Error(ErrorCode.InvalidRequest, "InstanceId can't be null with MemberEpoch -2.");
        if (request.SubscribedTopicRegex is not null) return Error(ErrorCode.InvalidRequest, "SubscribedTopicRegex is not supported; subscribe by topic names.");
        if (request.SubscribedTopicNames is { Count: > SubscribedTopicsMax }) return Error(ErrorCode.InvalidRequest, $"Over {SubscribedTopicsMax} subscribed topics.");
        if (request.ServerAssignor is { } assignor && !ServerAssignors.Names.Contains(assignor))
            return Error(ErrorCode.UnsupportedAssignor, $"Assignor {assignor} is not supported; use {string.Join(" or ", ServerAssignors.Names)}.");
        var shard = ShardFor(request.GroupId, out var error);
        if (shard is null) return Error(error);
        var config = _config();
        lock (shard.Gate)
        {
            if (shard.Unloaded) return Error(ErrorCode.NotCoordinator);
            shard.Groups.TryGetValue(request.GroupId, out var group);
            if (group is not null && (group.Members.Count > 0 || !group.Is(GroupState.Empty)))
                return Error(ErrorCode.GroupIdNotFound, $"Group {request.GroupId} is a classic group with members, not a consumer group.");
            if (group?.Consumer is null && epoch != 0)
                return epoch < 0 ? Error(ErrorCode.UnknownMemberId) : Error(ErrorCode.UnknownMemberId, "Unknown member: rejoin with epoch 0.");
            if (group is null)
            {
                group = new ClassicGroup(request.GroupId, NowMs);
                shard.Groups[request.GroupId] = group;
            }
            group.Consumer ??= new ConsumerGroupState();
            group.ProtocolType = "consumer";
            var cg = group.Consumer;

            // Leaving (-1), or a static member leaving for a restart (-2): it keeps its partitions
            // (nobody else gets them) until its session ends or its successor takes them over.
            if (epoch < 0)
            {
                if (!cg.Members.TryGetValue(request.MemberId, out var leaving)) return Error(ErrorCode.UnknownMemberId);
                if (epoch == -2 && leaving.InstanceId is not null)
                {
                    if (leaving.MemberEpoch >= 0) leaving.PreviousMemberEpoch = leaving.MemberEpoch;
                    leaving.MemberEpoch = -2;
                    var parkError = PersistConsumer(shard, group);
                    if (parkError != ErrorCode.None) return Error(parkError);
                    return new ConsumerGroupHeartbeatResponse { MemberId = request.MemberId, MemberEpoch = -2, HeartbeatIntervalMs = config.ConsumerHeartbeatIntervalMsOf(request.GroupId) };
                }
                RemoveConsumerMember(group, cg, leaving, "left");
                var leaveError = PersistConsumer(shard, group);
                if (leaveError != ErrorCode.None) return Error(leaveError);
                return new ConsumerGroupHeartbeatResponse { MemberId = request.MemberId, MemberEpoch = epoch, HeartbeatIntervalMs = config.ConsumerHeartbeatIntervalMsOf(request.GroupId) };
            }

            var memberId = request.MemberId.Length > 0 ? request.MemberId : Guid.NewGuid().ToString("N");
            var changed = false;
            if (!cg.Members.TryGetValue(memberId, out var member))
            {
                if (epoch != 0) return Error(ErrorCode.UnknownMemberId);
                if (cg.Members.Count >= config.ConsumerGroupMaxSize) return Error(ErrorCode.GroupMaxSizeReached);
                if (request.InstanceId is { } instance && cg.Members.Values.FirstOrDefault(m => m.InstanceId == instance) is { } holder)
                {
                    // Static membership: only a predecessor that left with epoch -2 can be replaced.
                    if (holder.MemberEpoch != -2) return Error(ErrorCode.UnreleasedInstanceId, $"Instance id {instance} is used by another member.");
                    member = new ConsumerMember
                    {
                        MemberId = memberId, InstanceId = instance, RackId = holder.RackId, RebalanceTimeoutMs = holder.RebalanceTimeoutMs,
                        SubscribedTopics = holder.SubscribedTopics, ServerAssignor = holder.ServerAssignor,
                        MemberEpoch = holder.PreviousMemberEpoch, PreviousMemberEpoch = holder.PreviousMemberEpoch,
                        Assigned = holder.Assigned, PendingRevocation = holder.PendingRevocation, State = holder.State,
                    };
                    holder.SessionTimer?.Dispose();
                    holder.RevocationTimer?.Dispose();
                    holder.TimerEpoch++;
                    cg.Members.Remove(holder.MemberId);
                    if (cg.Target.Remove(holder.MemberId, out var target)) cg.Target[memberId] = target;
                    cg.Members[memberId] = member;
                    if (member.State == ConsumerMemberState.UnrevokedPartitions) ScheduleRevocationTimeout(shard, group, member);
                    _logger.LogInformation("Consumer group {Group}: static member {Instance} is back as {Member} (was {Old})", group.GroupId, instance, memberId, holder.MemberId);
                }
                else
                {
                    member = new ConsumerMember { MemberId = memberId, InstanceId = request.InstanceId };
                    cg.Members[memberId] = member;
                    changed = true;
                }
            }
            else if (epoch == 0)
            {
                // A known member joining again (it was fenced, or restarted with its id): it owns nothing now.
                member.Assigned = [];
                member.PendingRevocation = [];
                member.MemberEpoch = 0;
                member.State = ConsumerMemberState.Stable;
                member.AssignmentChanged = true;
                changed = true;
            }
            else if (epoch != member.MemberEpoch)
            {
                // A member that missed our last answer may still use its previous epoch, as long
                // as it owns nothing it should not (Kafka's rule).
                var owned = Owned(request);
                var allowed = epoch == member.PreviousMemberEpoch && owned is not null && owned.All.All(tp => member.Assigned.Contains(tp.Topic, tp.Partition));
                if (!allowed) return Error(ErrorCode.FencedMemberEpoch, $"Member epoch {epoch} is not the current {member.MemberEpoch}.");
            }

            member.ClientId = clientId;
            member.ClientHost = clientHost;
            if (request.RackId is not null) member.RackId = request.RackId;
            if (request.RebalanceTimeoutMs >= 0) member.RebalanceTimeoutMs = request.RebalanceTimeoutMs;
            if (request.SubscribedTopicNames is { } topics)
            {
                var sorted = topics.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
                if (!sorted.SequenceEqual(member.SubscribedTopics)) { member.SubscribedTopics = sorted; changed = true; }
            }
            if (request.ServerAssignor is { } a && a != member.ServerAssignor) { member.ServerAssignor = a; changed = true; }

            var metadata = SubscriptionMetadata(cg);
            if (changed || !SameCounts(metadata, cg.SubscriptionMetadata))
            {
                cg.GroupEpoch++;
                ComputeTargetAssignment(cg, metadata);
                _logger.LogInformation("Consumer group {Group}: epoch {Epoch}, {Members} members, assignor {Assignor}", group.GroupId, cg.GroupEpoch, cg.Members.Count, cg.AssignorName);
            }
            ScheduleConsumerSession(shard, group, member, config.ConsumerSessionTimeoutMsOf(group.GroupId));
            Reconcile(shard, group, cg, member, Owned(request));
            // Written after the change is computed; a failed write is reported and the whole
            // state is written again on the next change (values are compared, not flagged).
            var writeError = PersistConsumer(shard, group);
            if (writeError != ErrorCode.None) return Error(writeError);

            var response = new ConsumerGroupHeartbeatResponse
            {
                MemberId = memberId, MemberEpoch = member.MemberEpoch, HeartbeatIntervalMs = config.ConsumerHeartbeatIntervalMsOf(request.GroupId),
            };
            var ownedNow = Owned(request);
            if (member.AssignmentChanged || epoch == 0 || (ownedNow is not null && !ownedNow.SameAs(member.Assigned)))
            {
                response.Assignment = new ConsumerGroupHeartbeatResponse.AssignmentData();
                foreach (var (topic, partitions) in member.Assigned.OrderBy(kv => kv.Key))
                    response.Assignment.TopicPartitions.Add(new ConsumerGroupHeartbeatResponse.TopicPartitions { TopicId = topic, Partitions = partitions.ToList() });
                member.AssignmentChanged = false;
            }
            return response;
        }
    }

    private static TopicAssignment? Owned(ConsumerGroupHeartbeatRequest request)
        => request.TopicPartitions is null ? null : TopicAssignment.Of(request.TopicPartitions.SelectMany(t => t.Partitions.Select(p => (t.TopicId, p))));

    private Dictionary<string, int> SubscriptionMetadata(ConsumerGroupState cg)
    {
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var topic in cg.Members.Values.SelectMany(m => m.SubscribedTopics).Distinct(StringComparer.Ordinal))
            if (TopicLookup(topic) is { } meta) result[topic] = meta.Partitions;
        return result;
    }

    private static bool SameCounts(Dictionary<string, int> a, Dictionary<string, int> b)
        => a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && v == kv.Value);

    /// <summary>The group's assignor: the one most members ask for, else uniform (Kafka's default).</summary>
    private static string PreferredAssignor(ConsumerGroupState cg)
        => cg.Members.Values.Where(m => m.ServerAssignor is not null).GroupBy(m => m.ServerAssignor!)
            .OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).Select(g => g.Key).FirstOrDefault() ?? ServerAssignors.Uniform;

    private void ComputeTargetAssignment(ConsumerGroupState cg, Dictionary<string, int> metadata)
    {
        cg.AssignorName = PreferredAssignor(cg);
        var topics = new Dictionary<string, ServerAssignors.TopicMeta>(StringComparer.Ordinal);
        foreach (var name in metadata.Keys)
            if (TopicLookup(name) is { } meta) topics[name] = meta;
        var subscriptions = cg.Members.ToDictionary(kv => kv.Key, kv => kv.Value.SubscribedTopics, StringComparer.Ordinal);
        cg.Target = ServerAssignors.Assign(cg.AssignorName, subscriptions, topics, cg.Target);
        cg.SubscriptionMetadata = metadata;
        cg.AssignmentEpoch = cg.GroupEpoch;
    }

    /// <summary>
    /// Moves a member towards its target (Kafka's current-assignment builder): partitions it must
    /// give up are revoked first, at its current epoch; once it reports them gone it moves to the
    /// assignment epoch and receives the target's partitions that no other member still holds.
    /// </summary>
    private void Reconcile(Shard shard, ClassicGroup group, ConsumerGroupState cg, ConsumerMember member, TopicAssignment? owned)
    {
        if (member.State == ConsumerMemberState.UnrevokedPartitions)
        {
            if (owned is null || owned.All.Any(tp => member.PendingRevocation.Contains(tp.Topic, tp.Partition))) return;
            member.PendingRevocation = [];
            member.RevocationTimer?.Dispose();
            member.RevocationTimer = null;
            member.State = ConsumerMemberState.Stable;
        }
        if (member.MemberEpoch == cg.AssignmentEpoch && member.State == ConsumerMemberState.Stable) return;
        var target = cg.Target.GetValueOrDefault(member.MemberId) ?? [];
        var keep = TopicAssignment.Of(member.Assigned.All.Where(tp => target.Contains(tp.Topic, tp.Partition)));
        var revoke = TopicAssignment.Of(member.Assigned.All.Where(tp => !target.Contains(tp.Topic, tp.Partition)));
        if (revoke.PartitionCount > 0)
        {
            member.Assigned = keep;
            member.PendingRevocation = revoke;
            member.State = ConsumerMemberState.UnrevokedPartitions;
            member.AssignmentChanged = true;
            ScheduleRevocationTimeout(shard, group, member);
            return;
        }
        var assigned = TopicAssignment.Of(keep.All.Concat(target.All.Where(tp => !keep.Contains(tp.Topic, tp.Partition) && !cg.OwnedByOther(member.MemberId, tp.Topic, tp.Partition))));
        if (!assigned.SameAs(member.Assigned)) member.AssignmentChanged = true;
        member.Assigned = assigned;
        if (member.MemberEpoch != cg.AssignmentEpoch)
        {
            member.PreviousMemberEpoch = member.MemberEpoch;
            member.MemberEpoch = cg.AssignmentEpoch;
        }
        member.State = assigned.PartitionCount < target.PartitionCount ? ConsumerMemberState.UnreleasedPartitions : ConsumerMemberState.Stable;
    }

    private void RemoveConsumerMember(ClassicGroup group, ConsumerGroupState cg, ConsumerMember member, string reason)
    {
        member.SessionTimer?.Dispose();
        member.RevocationTimer?.Dispose();
        member.TimerEpoch++;
        cg.Members.Remove(member.MemberId);
        _logger.LogInformation("Consumer group {Group}: member {Member} {Reason}", group.GroupId, member.MemberId, reason);
        cg.GroupEpoch++;
        ComputeTargetAssignment(cg, SubscriptionMetadata(cg));
        if (cg.Members.Count == 0) group.RestoreState(GroupState.Empty, NowMs); // offsets expire from now
    }

    private void ScheduleConsumerSession(Shard shard, ClassicGroup group, ConsumerMember member, int sessionTimeoutMs)
    {
        member.SessionTimer?.Dispose();
        var epoch = ++member.TimerEpoch;
        member.SessionTimer = CreateTimer(_time, _logger, _ =>
        {
            lock (shard.Gate)
            {
                if (shard.Unloaded || member.TimerEpoch != epoch || group.Consumer is not { } cg || !cg.Members.ContainsKey(member.MemberId)) return;
                RemoveConsumerMember(group, cg, member, "session expired");
                PersistConsumer(shard, group);
            }
        }, null, TimeSpan.FromMilliseconds(sessionTimeoutMs), Timeout.InfiniteTimeSpan);
    }

    /// <summary>A member that does not give up partitions within its rebalance timeout is fenced (removed).</summary>
    private void ScheduleRevocationTimeout(Shard shard, ClassicGroup group, ConsumerMember member)
    {
        member.RevocationTimer?.Dispose();
        var epoch = member.TimerEpoch;
        member.RevocationTimer = CreateTimer(_time, _logger, _ =>
        {
            lock (shard.Gate)
            {
                if (shard.Unloaded || member.TimerEpoch != epoch || member.State != ConsumerMemberState.UnrevokedPartitions
                    || group.Consumer is not { } cg || !cg.Members.ContainsKey(member.MemberId)) return;
                RemoveConsumerMember(group, cg, member, "did not revoke partitions within its rebalance timeout");
                PersistConsumer(shard, group);
            }
        }, null, TimeSpan.FromMilliseconds(Math.Max(member.RebalanceTimeoutMs, 1)), Timeout.InfiniteTimeSpan);
    }

    public ConsumerGroupDescribeResponse ConsumerGroupDescribe(ConsumerGroupDescribeRequest request, short version)
    {
        var response = new ConsumerGroupDescribeResponse();
        foreach (var groupId in request.GroupIds.Take(GroupsPerRequestMax))
        {
            var described = new ConsumerGroupDescribeResponse.DescribedGroup
            {
                GroupId = groupId, GroupState = "Dead",
                AuthorizedOperations = request.IncludeAuthorizedOperations ? (1 << 3) | (1 << 6) | (1 << 8) : int.MinValue,
            };
            response.Groups.Add(described);
            if (string.IsNullOrEmpty(groupId)) { described.ErrorCode = (short)ErrorCode.InvalidGroupId; continue; }
            var shard = ShardFor(groupId, out var error);
            if (shard is null) { described.ErrorCode = (short)error; continue; }
            lock (shard.Gate)
            {
                if (shard.Unloaded) { described.ErrorCode = (short)ErrorCode.NotCoordinator; continue; }
                if (!shard.Groups.TryGetValue(groupId, out var group) || group.Consumer is not { } cg)
                {
                    described.ErrorCode = (short)ErrorCode.GroupIdNotFound;
                    described.ErrorMessage = $"Group {groupId} is not a consumer group.";
                    continue;
                }
                described.GroupState = cg.StateName;
                described.GroupEpoch = cg.GroupEpoch;
                described.AssignmentEpoch = cg.AssignmentEpoch;
                described.AssignorName = cg.AssignorName;
                foreach (var m in cg.Members.Values)
                    described.Members.Add(new ConsumerGroupDescribeResponse.Member
                    {
                        MemberId = m.MemberId, InstanceId = m.InstanceId, RackId = m.RackId, MemberEpoch = m.MemberEpoch,
                        ClientId = m.ClientId, ClientHost = m.ClientHost, SubscribedTopicNames = m.SubscribedTopics.ToList(),
                        Assignment = DescribeAssignment(m.Assigned), TargetAssignment = DescribeAssignment(cg.Target.GetValueOrDefault(m.MemberId) ?? []),
                    });
            }
        }
        return response;
    }

    private ConsumerGroupDescribeResponse.Assignment DescribeAssignment(TopicAssignment assignment)
    {
        var result = new ConsumerGroupDescribeResponse.Assignment();
        foreach (var (topic, partitions) in assignment.OrderBy(kv => kv.Key))
            result.TopicPartitions.Add(new ConsumerGroupDescribeResponse.TopicPartitions { TopicId = topic, TopicName = TopicNameById(topic) ?? "", Partitions = partitions.ToList() });
        return result;
    }

    /// <summary>OffsetCommit/OffsetFetch by a member of a consumer group: its epoch must be current (None when it is).</summary>
    private static ErrorCode ValidateConsumerMemberEpoch(ConsumerGroupState cg, string memberId, int epoch, short version)
    {
        if (!cg.Members.TryGetValue(memberId, out var member)) return ErrorCode.UnknownMemberId;
        if (epoch > member.MemberEpoch) return ErrorCode.FencedMemberEpoch;
        // Before v9 the field is a classic generation: Kafka answers ILLEGAL_GENERATION then.
        if (epoch < member.MemberEpoch) return version >= 9 ? ErrorCode.StaleMemberEpoch : ErrorCode.IllegalGeneration;
        return ErrorCode.None;
    }
}
