using Microsoft.Extensions.Logging;
using StreamPlatform.Broker.Replication;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.Protos.Records;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Transactions;

/// <summary>
/// The partition-leader side of WriteTxnMarkers (API 27; Kafka's handleWriteTxnMarkersRequest):
/// for every marker and partition, one control batch (producer id and epoch of the marker,
/// transactional + control attributes, one COMMIT/ABORT record carrying the coordinator epoch)
/// appended as leader with acks=-1 and <see cref="AppendOrigin.TransactionMarker"/>, all
/// partitions at once; each partition is answered once its marker is committed, or with its
/// error: UNKNOWN_TOPIC_OR_PARTITION / NOT_LEADER_OR_FOLLOWER (not led here),
/// INVALID_PRODUCER_EPOCH (the marker's epoch is below the producer's),
/// TRANSACTION_COORDINATOR_FENCED (an older coordinator epoch than the last marker's),
/// NOT_ENOUGH_REPLICAS(_AFTER_APPEND), REQUEST_TIMED_OUT (not committed within
/// <see cref="CommitTimeoutMs"/>). After a committed marker every registered
/// <see cref="ITransactionMarkerObserver"/> is told (an observer's failure answers that
/// partition UNKNOWN_SERVER_ERROR, as Kafka does when the group coordinator fails).
/// </summary>
public sealed class TransactionMarkerWriter(ReplicaManager replicas, TimeProvider time, IEnumerable<ITransactionMarkerObserver> observers, ILogger<TransactionMarkerWriter> logger)
{
    /// <summary>Kafka's request.timeout.ms default, which its marker appends wait with.</summary>
    public const int CommitTimeoutMs = 30000;
    private readonly ITransactionMarkerObserver[] _observers = [.. observers];

    public async Task<WriteTxnMarkersResponse> WriteAsync(WriteTxnMarkersRequest request, CancellationToken cancellationToken)
    {
        var response = new WriteTxnMarkersResponse();
        var writes = new List<Task>();
        foreach (var marker in request.Markers)
        {
            var markerResult = new WriteTxnMarkersResponse.WritableTxnMarkerResult { ProducerId = marker.ProducerId };
            response.Markers.Add(markerResult);
            foreach (var topic in marker.Topics)
            {
                var topicResult = new WriteTxnMarkersResponse.WritableTxnMarkerTopicResult { Name = topic.Name };
                markerResult.Topics.Add(topicResult);
                foreach (var index in topic.PartitionIndexes)
                {
                    var partitionResult = new WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult { PartitionIndex = index };
                    topicResult.Partitions.Add(partitionResult);
                    writes.Add(WriteOneAsync(marker, new TopicPartition(topic.Name, index), partitionResult, cancellationToken));
                }
            }
        }
        await Task.WhenAll(writes).ConfigureAwait(false);
        return response;
    }

    private async Task WriteOneAsync(WriteTxnMarkersRequest.WritableTxnMarker marker, TopicPartition tp,
        WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult result, CancellationToken cancellationToken)
    {
        byte[] batch;
        using (var builder = new RecordBatchBuilder { ProducerId = marker.ProducerId, ProducerEpoch = marker.ProducerEpoch, IsTransactional = true, IsControl = true })
        {
            builder.AppendControl(time.GetUtcNow().ToUnixTimeMilliseconds(), marker.TransactionResult ? ControlRecordType.Commit : ControlRecordType.Abort, marker.CoordinatorEpoch);
            batch = builder.ToArray();
        }
        var (append, error) = await replicas.AppendRecordsAsync(tp, batch, requiredAcks: -1, CommitTimeoutMs, cancellationToken, AppendOrigin.TransactionMarker).ConfigureAwait(false);
        if (error != ErrorCodes.None)
        {
            if (append.ErrorMessage is { } why && error is ErrorCodes.InvalidProducerEpoch or ErrorCodes.TransactionCoordinatorFenced)
                logger.LogInformation("Marker for producer {ProducerId} on {Partition} refused: {Reason}", marker.ProducerId, tp, why);
            result.ErrorCode = error;
            return;
        }
        foreach (var observer in _observers)
        {
            try
            {
                observer.OnTransactionCompleted(tp, marker.ProducerId, marker.TransactionResult, append.FirstOffset);
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "A transaction-marker observer failed for producer {ProducerId} on {Partition}", marker.ProducerId, tp);
                error = ErrorCodes.UnknownServerError;
            }
        }
        result.ErrorCode = error;
    }
}
