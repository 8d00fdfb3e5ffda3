namespace StreamPlatform.Protos.Groups;

/// <summary>
/// The internal topic that holds transaction state (Kafka's __transaction_state, records
/// TransactionLogKey/TransactionLogValue), and the mapping of a transactional.id to its partition,
/// whose leader is the id's transaction coordinator. Gateways and brokers both use it, so they
/// always agree on the coordinator; the formula is Kafka's (as for groups).
/// </summary>
public static class TransactionStateTopic
{
    public const string Name = InternalTopics.TransactionState;

    /// <summary>Kafka's Utils.abs(transactionalId.hashCode()) % partitions.</summary>
    public static int PartitionFor(string transactionalId, int partitionCount) => OffsetsTopic.PartitionFor(transactionalId, partitionCount);
}
