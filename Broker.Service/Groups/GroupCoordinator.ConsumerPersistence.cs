using Google.Protobuf;
using StreamPlatform.Protos.Grpc.Groups;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Broker.Groups;

// KIP-848 groups in __consumer_offsets: one record per member (group, member id) and one per
// group (epochs, target assignment), written when their value changes; tombstones for removed
// members. Loading restores members with their epochs and assignments, so after a restart or a
// coordinator move members carry on heartbeating without rejoining.
public sealed partial class GroupCoordinator
{
    private ErrorCode PersistConsumer(Shard shard, ClassicGroup group)
    {
        if (group.Consumer is not { } cg) return ErrorCode.None;
        var records = new List<(byte[] Key, byte[]? Value)>();
        var groupValue = GroupRecords.EncodeValue(ToValue(cg));
        var groupChanged = cg.LastWrittenValue is null || !groupValue.AsSpan().SequenceEqual(cg.LastWrittenValue);
        if (groupChanged) records.Add((GroupRecords.EncodeConsumerGroupKey(group.GroupId), groupValue));
        var memberValues = new List<(ConsumerMember Member, byte[] Value)>();
        foreach (var m in cg.Members.Values)
        {
            var value = GroupRecords.EncodeValue(ToValue(m));
            if (m.LastWrittenValue is not null && value.AsSpan().SequenceEqual(m.LastWrittenValue)) continue;
            records.Add((GroupRecords.EncodeConsumerMemberKey(group.GroupId, m.MemberId), value));
            memberValues.Add((m, value));
        }
        foreach (var removed in cg.RemovedSinceWrite) records.Add((GroupRecords.EncodeConsumerMemberKey(group.GroupId, removed), null));
        if (records.Count == 0) return ErrorCode.None;
        var error = Append(shard, records);
        if (error != ErrorCode.None)
        {
            _logger.LogWarning("Consumer group {Group}: writing its state failed with {Error}", group.GroupId, error);
            return error;
        }
        if (groupChanged) cg.LastWrittenValue = groupValue;
        foreach (var (m, value) in memberValues) m.LastWrittenValue = value;
        cg.RemovedSinceWrite.Clear();
        return ErrorCode.None;
    }

    private static ConsumerGroupValue ToValue(ConsumerGroupState cg)
    {
        var value = new ConsumerGroupValue { GroupEpoch = cg.GroupEpoch, AssignmentEpoch = cg.AssignmentEpoch, AssignorName = cg.AssignorName };
        foreach (var (memberId, target) in cg.Target.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var t = new MemberTargetValue { MemberId = memberId };
            t.Target.AddRange(ToValue(target));
            value.Targets.Add(t);
        }
        foreach (var (topic, count) in cg.SubscriptionMetadata) value.SubscriptionMetadata[topic] = count;
        return value;
    }

    private static ConsumerMemberValue ToValue(ConsumerMember m)
    {
        var value = new ConsumerMemberValue
        {
            InstanceId = m.InstanceId ?? "", HasInstanceId = m.InstanceId is not null, RackId = m.RackId ?? "", HasRackId = m.RackId is not null,
            ClientId = m.ClientId, ClientHost = m.ClientHost, RebalanceTimeoutMs = m.RebalanceTimeoutMs, ServerAssignor = m.ServerAssignor ?? "",
            MemberEpoch = m.MemberEpoch, PreviousMemberEpoch = m.PreviousMemberEpoch, State = (int)m.State,
        };
        value.SubscribedTopics.AddRange(m.SubscribedTopics);
        value.Assigned.AddRange(ToValue(m.Assigned));
        value.PendingRevocation.AddRange(ToValue(m.PendingRevocation));
        return value;
    }

    private static IEnumerable<TopicPartitionsValue> ToValue(TopicAssignment assignment)
    {
        foreach (var (topic, partitions) in assignment.OrderBy(kv => kv.Key))
        {
            var bytes = new byte[16];
            topic.TryWriteBytes(bytes, bigEndian: true, out _);
            var v = new TopicPartitionsValue { TopicId = ByteString.CopyFrom(bytes) };
            v.Partitions.AddRange(partitions);
            yield return v;
        }
    }

    private static TopicAssignment FromValue(IEnumerable<TopicPartitionsValue> values)
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

    /// <summary>Rebuilds a consumer group from its records (load); sessions restart from now.</summary>
    private void RestoreConsumer(Shard shard, ClassicGroup group, ConsumerGroupValue value, IReadOnlyDictionary<string, ConsumerMemberValue> members)
    {
        var cg = new ConsumerGroupState
        {
            GroupEpoch = value.GroupEpoch, AssignmentEpoch = value.AssignmentEpoch,
            AssignorName = ServerAssignors.Names.Contains(value.AssignorName) ? value.AssignorName : ServerAssignors.Uniform,
            Target = value.Targets.ToDictionary(t => t.MemberId, t => FromValue(t.Target), StringComparer.Ordinal),
            SubscriptionMetadata = value.SubscriptionMetadata.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
        };
        cg.LastWrittenValue = GroupRecords.EncodeValue(value);
        foreach (var (memberId, v) in members)
        {
            var m = new ConsumerMember
            {
                MemberId = memberId, InstanceId = v.HasInstanceId ? v.InstanceId : null, RackId = v.HasRackId ? v.RackId : null,
                ClientId = v.ClientId, ClientHost = v.ClientHost, RebalanceTimeoutMs = v.RebalanceTimeoutMs,
                SubscribedTopics = v.SubscribedTopics.ToList(), ServerAssignor = v.ServerAssignor.Length == 0 ? null : v.ServerAssignor,
                MemberEpoch = v.MemberEpoch, PreviousMemberEpoch = v.PreviousMemberEpoch,
                State = Enum.IsDefined((ConsumerMemberState)v.State) ? (ConsumerMemberState)v.State : ConsumerMemberState.Stable,
                Assigned = FromValue(v.Assigned), PendingRevocation = FromValue(v.PendingRevocation),
                AssignmentChanged = false,
                LastWrittenValue = GroupRecords.EncodeValue(v),
            };
            cg.Members[memberId] = m;
        }
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
