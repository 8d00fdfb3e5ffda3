using StreamPlatform.Protos.Kafka.CoordinatorRecords;

namespace StreamPlatform.Broker.Groups;

/// <summary>
/// The records that describe a KIP-848 group in Kafka's format (GroupCoordinatorRecordHelpers'
/// newConsumerGroup*Record): values by (record type, member id; "" for group-level records).
/// </summary>
public static class ConsumerRecords
{
    /// <param name="topicId">A subscribed topic's id (Guid.Empty when the topic is gone: the record still names it).</param>
    public static Dictionary<(short Type, string MemberId), byte[]> Of(ConsumerGroupState cg, Func<string, Guid?> topicId)
    {
        var records = new Dictionary<(short Type, string MemberId), byte[]>
        {
            [(GroupRecords.ConsumerGroupMetadataType, "")] = GroupRecords.EncodeConsumerValue(new ConsumerGroupMetadataValue { Epoch = cg.GroupEpoch }),
            [(GroupRecords.ConsumerGroupTargetAssignmentMetadataType, "")] =
                GroupRecords.EncodeConsumerValue(new ConsumerGroupTargetAssignmentMetadataValue { AssignmentEpoch = cg.AssignmentEpoch }),
        };
        var partitionMetadata = new ConsumerGroupPartitionMetadataValue();
        foreach (var (topic, count) in cg.SubscriptionMetadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            partitionMetadata.Topics.Add(new ConsumerGroupPartitionMetadataValue.TopicMetadata { TopicId = topicId(topic) ?? Guid.Empty, TopicName = topic, NumPartitions = count });
        records[(GroupRecords.ConsumerGroupPartitionMetadataType, "")] = GroupRecords.EncodeConsumerValue(partitionMetadata);
        foreach (var m in cg.Members.Values)
        {
            var subscription = new ConsumerGroupMemberMetadataValue
            {
                InstanceId = m.InstanceId, RackId = m.RackId, ClientId = m.ClientId, ClientHost = m.ClientHost,
                SubscribedTopicNames = m.SubscribedTopics.Order(StringComparer.Ordinal).ToList(), SubscribedTopicRegex = null,
                RebalanceTimeoutMs = m.RebalanceTimeoutMs, ServerAssignor = m.ServerAssignor,
            };
            records[(GroupRecords.ConsumerGroupMemberMetadataType, m.MemberId)] = GroupRecords.EncodeConsumerValue(subscription);
            var current = new ConsumerGroupCurrentMemberAssignmentValue
            {
                MemberEpoch = m.MemberEpoch, PreviousMemberEpoch = m.PreviousMemberEpoch, State = (sbyte)m.State,
                AssignedPartitions = ToCurrent(m.Assigned), PartitionsPendingRevocation = ToCurrent(m.PendingRevocation),
            };
            records[(GroupRecords.ConsumerGroupCurrentMemberAssignmentType, m.MemberId)] = GroupRecords.EncodeConsumerValue(current);
        }
        foreach (var (memberId, target) in cg.Target)
        {
            var value = new ConsumerGroupTargetAssignmentMemberValue();
            foreach (var (topic, partitions) in target.OrderBy(kv => kv.Key))
                value.TopicPartitions.Add(new ConsumerGroupTargetAssignmentMemberValue.TopicPartition { TopicId = topic, Partitions = partitions.ToList() });
            records[(GroupRecords.ConsumerGroupTargetAssignmentMemberType, memberId)] = GroupRecords.EncodeConsumerValue(value);
        }
        return records;
    }

    public static List<ConsumerGroupCurrentMemberAssignmentValue.TopicPartitions> ToCurrent(TopicAssignment assignment)
        => assignment.OrderBy(kv => kv.Key)
            .Select(kv => new ConsumerGroupCurrentMemberAssignmentValue.TopicPartitions { TopicId = kv.Key, Partitions = kv.Value.ToList() })
            .ToList();

    public static TopicAssignment FromCurrent(IEnumerable<ConsumerGroupCurrentMemberAssignmentValue.TopicPartitions> values)
        => TopicAssignment.Of(values.SelectMany(t => t.Partitions.Select(p => (t.TopicId, p))));
}
