using StreamPlatform.Broker.Storage;

namespace StreamPlatform.Broker.Transactions;

/// <summary>
/// Told when a COMMIT or ABORT marker was written to a partition this broker leads and is
/// committed (high watermark past it), as Kafka's ReplicaManager tells the group coordinator
/// (onTransactionCompleted) for __consumer_offsets partitions: the group coordinator turns a
/// producer's pending transactional offset commits into committed offsets, or drops them.
/// Every registered observer is called for every marker; it ignores partitions not its own.
/// Must not block: called on the write path.
/// </summary>
public interface ITransactionMarkerObserver
{
    void OnTransactionCompleted(TopicPartition partition, long producerId, bool committed, long markerOffset);
}
