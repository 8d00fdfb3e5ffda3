using StreamPlatform.Protos.Kafka.CoordinatorRecords;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Broker.Groups;

// KIP-848 groups in __consumer_offsets, as Kafka 4.x writes them: per group its epoch (type 3),
// subscribed topics' partition counts (4) and target assignment epoch (6); per member its
// subscription (5), target assignment (7) and current assignment with epochs and reconciliation
// state (8). A write carries only the records whose value changed since the last one, and
// tombstones for the records no longer due (removed members, legacy records). Loading restores
// members with their epochs and assignments, so after a restart or a coordinator move members
// carry on heartbeating without rejoining.
public sealed partial class GroupCoordinator
{
    private ErrorCode PersistConsumer(Shard shard, ClassicGroup group)
    {
        if (group.Consumer is not { } cg) return ErrorCode.None;
        var desired = ConsumerRecords.Of(cg, name => TopicLookup(name)?.Id);
        // Tombstones first: a legacy member record's tombstone must not, on replay, undo the
        // same member's records in Kafka's format written in this batch.
        var records = cg.Written.Keys.Where(k => !desired.ContainsKey(k))
            .Select(k => (GroupRecords.EncodeConsumerKey(k.Type, group.GroupId, k.MemberId), (byte[]?)null)).ToList();
        foreach (var ((type, memberId), value) in desired)
            if (!cg.Written.TryGetValue((type, memberId), out var written) || !value.AsSpan().SequenceEqual(written))
                records.Add((GroupRecords.EncodeConsumerKey(type, group.GroupId, memberId), value));
        if (records.Count == 0) return ErrorCode.None;
        var error = Append(shard, records);
        if (error != ErrorCode.None)
        {
            _logger.LogWarning("Consumer group {Group}: writing its state failed with {Error}", group.GroupId, error);
            return error;
        }
        cg.Written = desired;
        return ErrorCode.None;
    }

    /// <summary>Tombstones for every record of a consumer group (group deleted, or turned classic).</summary>
    private static List<(byte[] Key, byte[]? Value)> ConsumerTombstones(ClassicGroup group)
        => group.Consumer is not { } cg ? []
            : cg.Written.Keys.Select(k => (GroupRecords.EncodeConsumerKey(k.Type, group.GroupId, k.MemberId), (byte[]?)null)).ToList();

    /// <summary>Rebuilds a consumer group from its records (load); sessions restart from now.</summary>
    private void RestoreConsumer(Shard shard, ClassicGroup group, GroupLogReplay.ConsumerParts parts)
    {
        var cg = new ConsumerGroupState
        {
            GroupEpoch = parts.GroupEpoch ?? 0, AssignmentEpoch = parts.TargetEpoch ?? 0,
            Target = new Dictionary<string, TopicAssignment>(parts.Targets, StringComparer.Ordinal),
            SubscriptionMetadata = parts.PartitionCounts is { } counts ? new Dictionary<string, int>(counts, StringComparer.Ordinal) : new(StringComparer.Ordinal),
            Written = parts.Written,
        };
        foreach (var (memberId, v) in parts.Members)
        {
            var current = parts.Current.GetValueOrDefault(memberId);
            var state = (ConsumerMemberState)(current?.State ?? 0);
            var m = new ConsumerMember
            {
                MemberId = memberId, InstanceId = v.InstanceId, RackId = v.RackId,
                ClientId = v.ClientId, ClientHost = v.ClientHost, RebalanceTimeoutMs = v.RebalanceTimeoutMs,
                SubscribedTopics = v.SubscribedTopicNames.ToList(), ServerAssignor = string.IsNullOrEmpty(v.ServerAssignor) ? null : v.ServerAssignor,
                MemberEpoch = current?.MemberEpoch ?? 0, PreviousMemberEpoch = current?.PreviousMemberEpoch ?? -1,
                State = Enum.IsDefined(state) ? state : ConsumerMemberState.Stable,
                Assigned = ConsumerRecords.FromCurrent(current?.AssignedPartitions ?? []),
                PendingRevocation = ConsumerRecords.FromCurrent(current?.PartitionsPendingRevocation ?? []),
                AssignmentChanged = false,
            };
            cg.Members[memberId] = m;
        }
        // Kafka keeps no assignor in its records: it is the members' choice, as when it was computed.
        // A legacy value named it.
        cg.AssignorName = parts.LegacyAssignor is { } legacy && ServerAssignors.Names.Contains(legacy) ? legacy : PreferredAssignor(cg);
        group.Consumer = cg;
        group.ProtocolType = "consumer";
        var config = _config();
        foreach (var m in cg.Members.Values)
        {
            ScheduleConsumerSession(shard, group, m, config.ConsumerSessionTimeoutMsOf(group.GroupId));
            if (m.State == ConsumerMemberState.UnrevokedPartitions) ScheduleRevocationTimeout(shard, group, m);
        }
    }
}
