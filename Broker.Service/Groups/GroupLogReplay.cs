using StreamPlatform.Protos.Kafka.CoordinatorRecords;
using Legacy = StreamPlatform.Protos.Grpc.Groups;

namespace StreamPlatform.Broker.Groups;

/// <summary>
/// What the records of one __consumer_offsets partition say, replayed in log order (a later
/// record for a key replaces an earlier one, a tombstone removes it). Legacy records (the
/// project's protobuf values) land in the same shape as Kafka's, so a group restores the same
/// whichever format wrote it.
/// </summary>
public sealed class GroupLogReplay
{
    /// <summary>A KIP-848 group's records.</summary>
    public sealed class ConsumerParts
    {
        public int? GroupEpoch { get; set; }
        public int? TargetEpoch { get; set; }
        public Dictionary<string, int>? PartitionCounts { get; set; }
        /// <summary>Only legacy values stored the assignor; Kafka derives it from the members.</summary>
        public string? LegacyAssignor { get; set; }
        public Dictionary<string, ConsumerGroupMemberMetadataValue> Members { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, TopicAssignment> Targets { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, ConsumerGroupCurrentMemberAssignmentValue> Current { get; } = new(StringComparer.Ordinal);
        /// <summary>Every live record of the group in the log, by (type, member id): the next write skips unchanged ones and tombstones the rest.</summary>
        public Dictionary<(short Type, string MemberId), byte[]> Written { get; } = [];
    }

    public Dictionary<string, Dictionary<(string Topic, int Partition), CommittedOffset>> Offsets { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, GroupMetadataValue> Classic { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, ConsumerParts> Consumer { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Transactional offset commits whose producer's marker has not been read (yet): at the end
    /// of the load, the transactions still open.
    /// </summary>
    public PendingTransactionalOffsets Pending { get; } = new();

    /// <summary>Applies one record of a plain (non-transactional) batch at an unknown offset.</summary>
    public void Apply(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value) => Apply(new LoadedRecord(-1, -1, key, value));

    /// <summary>
    /// Applies one record; records this version cannot read are skipped. An offset commit of a
    /// transactional batch is held pending for its producer until the marker (Kafka's replay);
    /// a tombstone removes the committed offset and every pending one of the key.
    /// </summary>
    public void Apply(LoadedRecord record)
    {
        var (recordOffset, producerId, key, value) = record;
        switch (GroupRecords.Decode(key, value))
        {
            case GroupRecords.OffsetCommit r:
                if (!Offsets.TryGetValue(r.Group, out var byPartition)) Offsets[r.Group] = byPartition = [];
                if (r.Value is { } offset)
                {
                    offset = offset with { RecordOffset = recordOffset };
                    if (producerId >= 0) Pending.Add(producerId, r.Group, r.Topic, r.Partition, offset);
                    else byPartition[(r.Topic, r.Partition)] = offset;
                }
                else
                {
                    byPartition.Remove((r.Topic, r.Partition));
                    Pending.Remove(r.Group, r.Topic, r.Partition);
                }
                break;
            case GroupRecords.ClassicGroupMetadata r:
                if (r.Value is { } classic) Classic[r.Group] = classic;
                else Classic.Remove(r.Group);
                break;
            case GroupRecords.ConsumerGroupEpoch r:
                {
                    var parts = PartsOf(r.Group);
                    Track(parts, GroupRecords.ConsumerGroupMetadataType, "", value);
                    parts.GroupEpoch = r.Epoch;
                    parts.LegacyAssignor = null;
                    if (r.Epoch is null) ClearGroupLevel(parts);
                    break;
                }
            case GroupRecords.ConsumerPartitionMetadata r:
                {
                    var parts = PartsOf(r.Group);
                    Track(parts, GroupRecords.ConsumerGroupPartitionMetadataType, "", value);
                    parts.PartitionCounts = r.Counts;
                    break;
                }
            case GroupRecords.ConsumerTargetEpoch r:
                {
                    var parts = PartsOf(r.Group);
                    Track(parts, GroupRecords.ConsumerGroupTargetAssignmentMetadataType, "", value);
                    parts.TargetEpoch = r.Epoch;
                    break;
                }
            case GroupRecords.ConsumerMemberMetadata r:
                {
                    var parts = PartsOf(r.Group);
                    Track(parts, GroupRecords.ConsumerGroupMemberMetadataType, r.MemberId, value);
                    if (r.Value is { } member) parts.Members[r.MemberId] = member;
                    else parts.Members.Remove(r.MemberId);
                    break;
                }
            case GroupRecords.ConsumerTargetMember r:
                {
                    var parts = PartsOf(r.Group);
                    Track(parts, GroupRecords.ConsumerGroupTargetAssignmentMemberType, r.MemberId, value);
                    if (r.Value is { } target) parts.Targets[r.MemberId] = target;
                    else parts.Targets.Remove(r.MemberId);
                    break;
                }
            case GroupRecords.ConsumerCurrentAssignment r:
                {
                    var parts = PartsOf(r.Group);
                    Track(parts, GroupRecords.ConsumerGroupCurrentMemberAssignmentType, r.MemberId, value);
                    if (r.Value is { } current) parts.Current[r.MemberId] = current;
                    else parts.Current.Remove(r.MemberId);
                    break;
                }
            case GroupRecords.LegacyConsumerGroup r:
                {
                    var parts = PartsOf(r.Group);
                    Track(parts, GroupRecords.ConsumerGroupMetadataType, "", value);
                    ApplyLegacy(parts, r.Value!);
                    break;
                }
            case GroupRecords.LegacyConsumerMember r:
                {
                    var parts = PartsOf(r.Group);
                    Track(parts, GroupRecords.LegacyConsumerMemberType, r.MemberId, value);
                    if (r.Value is { } legacy)
                    {
                        parts.Members[r.MemberId] = MemberMetadataFromLegacy(legacy);
                        parts.Current[r.MemberId] = CurrentFromLegacy(legacy);
                    }
                    else
                    {
                        parts.Members.Remove(r.MemberId);
                        parts.Current.Remove(r.MemberId);
                    }
                    break;
                }
        }
    }

    /// <summary>
    /// A COMMIT or ABORT marker of the producer: its pending offsets written before it become the
    /// groups' committed offsets (unless a later plain commit is already there) or are dropped.
    /// </summary>
    public void ApplyMarker(long producerId, bool committed, long markerOffset)
    {
        foreach (var (groupId, tp, offset) in Pending.Complete(producerId, markerOffset))
        {
            if (!committed) continue;
            if (!Offsets.TryGetValue(groupId, out var byPartition)) Offsets[groupId] = byPartition = [];
            PendingTransactionalOffsets.Materialize(byPartition, tp, offset);
        }
    }

    private ConsumerParts PartsOf(string group)
    {
        if (!Consumer.TryGetValue(group, out var parts)) Consumer[group] = parts = new ConsumerParts();
        return parts;
    }

    private static void Track(ConsumerParts parts, short type, string memberId, ReadOnlyMemory<byte>? value)
    {
        if (value is { } v) parts.Written[(type, memberId)] = v.ToArray();
        else parts.Written.Remove((type, memberId));
    }

    /// <summary>The group's record is gone (group deleted or turned classic): so is its group-level state.</summary>
    private static void ClearGroupLevel(ConsumerParts parts)
    {
        parts.TargetEpoch = null;
        parts.PartitionCounts = null;
        parts.Targets.Clear();
    }

    private static void ApplyLegacy(ConsumerParts parts, Legacy.ConsumerGroupValue v)
    {
        parts.GroupEpoch = v.GroupEpoch;
        parts.TargetEpoch = v.AssignmentEpoch;
        parts.LegacyAssignor = v.AssignorName;
        parts.PartitionCounts = v.SubscriptionMetadata.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        // The legacy group value held every member's target: it replaces them all.
        parts.Targets.Clear();
        foreach (var t in v.Targets) parts.Targets[t.MemberId] = FromLegacy(t.Target);
    }

    private static ConsumerGroupMemberMetadataValue MemberMetadataFromLegacy(Legacy.ConsumerMemberValue v)
    {
        var value = new ConsumerGroupMemberMetadataValue
        {
            InstanceId = v.HasInstanceId ? v.InstanceId : null, RackId = v.HasRackId ? v.RackId : null,
            ClientId = v.ClientId, ClientHost = v.ClientHost, SubscribedTopicRegex = null,
            RebalanceTimeoutMs = v.RebalanceTimeoutMs, ServerAssignor = v.ServerAssignor.Length == 0 ? null : v.ServerAssignor,
        };
        value.SubscribedTopicNames.AddRange(v.SubscribedTopics);
        return value;
    }

    private static ConsumerGroupCurrentMemberAssignmentValue CurrentFromLegacy(Legacy.ConsumerMemberValue v)
    {
        var value = new ConsumerGroupCurrentMemberAssignmentValue
        {
            MemberEpoch = v.MemberEpoch, PreviousMemberEpoch = v.PreviousMemberEpoch, State = (sbyte)v.State,
        };
        value.AssignedPartitions.AddRange(ConsumerRecords.ToCurrent(FromLegacy(v.Assigned)));
        value.PartitionsPendingRevocation.AddRange(ConsumerRecords.ToCurrent(FromLegacy(v.PendingRevocation)));
        return value;
    }

    private static TopicAssignment FromLegacy(IEnumerable<Legacy.TopicPartitionsValue> values)
    {
        var result = new TopicAssignment();
        foreach (var v in values)
        {
            if (v.TopicId.Length != 16) continue; // unreadable entry: dropped, the member reconciles it away
            var topic = new Guid(v.TopicId.Span, bigEndian: true);
            foreach (var p in v.Partitions) result.Add(topic, p);
        }
        return result;
    }
}
