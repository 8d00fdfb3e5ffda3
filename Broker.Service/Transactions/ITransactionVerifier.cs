using StreamPlatform.Broker.Storage;

namespace StreamPlatform.Broker.Transactions;

/// <summary>
/// Asks a transactional id's coordinator, from a partition leader's produce path, whether a
/// transaction may write to a partition before its first transactional batch there is appended.
/// KIP-890 part 1 (transaction version 1 clients, Produce v3-11): verify only, a partition the
/// client did not add answers INVALID_TXN_STATE and nothing is appended, so a late or
/// duplicated batch can never start a hanging transaction. Transaction version 2 (Produce v12+
/// with the transaction.version feature at 2): the leader adds the partition to the transaction
/// itself (<paramref name="addPartition"/> true). Implemented by the transaction coordinator
/// (local when this broker is the coordinator, else over TransactionCoordinatorService).
/// </summary>
public interface ITransactionVerifier
{
    /// <returns>0 when the batch may be appended, else the Kafka error code the producer gets
    /// (INVALID_TXN_STATE, INVALID_PRODUCER_EPOCH, PRODUCER_FENCED, COORDINATOR_NOT_AVAILABLE,
    /// NOT_COORDINATOR, CONCURRENT_TRANSACTIONS...).</returns>
    ValueTask<short> VerifyAsync(string transactionalId, long producerId, short producerEpoch, TopicPartition partition, bool addPartition, CancellationToken cancellationToken);
}
