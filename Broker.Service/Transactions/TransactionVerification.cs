using StreamPlatform.Broker.Replication;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Records;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Transactions;

/// <summary>
/// KIP-890 part 1 in the produce path (Kafka's ReplicaManager.handleProduceAppend): a
/// transactional batch whose producer has no transaction open on the partition is only
/// appended after its transaction coordinator confirmed (or, Produce v12+, added) the
/// partition. The leader records a <see cref="TransactionVerificationGuard"/> first, so an
/// ABORT marker written while the coordinator answers invalidates the answer. Retriable
/// coordinator errors are answered NOT_ENOUGH_REPLICAS, as Kafka does (older clients retry it
/// without a metadata refresh); INVALID_TXN_STATE and fencing errors pass through.
/// </summary>
internal static class TransactionVerification
{
    /// <summary>Produce v12+: transaction version 2 clients let the leader add the partition.</summary>
    public const int AddPartitionApiVersion = 12;

    /// <summary>
    /// (0, guard to append with) or (error, null). No verification needed: (0, null) for
    /// requests without a transactional batch, (0, sentinel) when a transaction is open here.
    /// </summary>
    public static ValueTask<(short Error, TransactionVerificationGuard? Guard)> VerifyAsync(ITransactionVerifier verifier, Protos.Grpc.Broker.ProduceRequest request,
        Partition partition, ReadOnlySpan<byte> records, CancellationToken cancellationToken)
    {
        if (!TryFindTransactionalBatch(records, out var producerId, out var epoch)) return new((ErrorCodes.None, null));
        var guard = partition.Log.StartTransactionVerification(producerId, epoch);
        if (ReferenceEquals(guard, TransactionVerificationGuard.Sentinel)) return new((ErrorCodes.None, guard));
        return AskAsync(verifier, request.TransactionalId, producerId, epoch, partition.TopicPartition, request.ApiVersion >= AddPartitionApiVersion, guard, cancellationToken);
    }

    private static async ValueTask<(short Error, TransactionVerificationGuard? Guard)> AskAsync(ITransactionVerifier verifier, string transactionalId,
        long producerId, short epoch, TopicPartition tp, bool addPartition, TransactionVerificationGuard guard, CancellationToken cancellationToken)
    {
        short code;
        try
        {
            code = await verifier.VerifyAsync(transactionalId, producerId, epoch, tp, addPartition, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            code = ErrorCodes.RequestTimedOut;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // The coordinator could not be asked: retriable for the producer.
            code = ErrorCodes.CoordinatorNotAvailable;
        }
        code = code switch
        {
            ErrorCodes.ConcurrentTransactions or ErrorCodes.NetworkException or ErrorCodes.CoordinatorLoadInProgress
                or ErrorCodes.CoordinatorNotAvailable or ErrorCodes.NotCoordinator => ErrorCodes.NotEnoughReplicas,
            _ => code,
        };
        return (code, code == ErrorCodes.None ? guard : null);
    }

    /// <summary>The producer of the first transactional data batch (Produce v3+ has one batch per partition).</summary>
    public static bool TryFindTransactionalBatch(ReadOnlySpan<byte> records, out long producerId, out short epoch)
    {
        var batches = new RecordBatchEnumerator(records, verifyCrc: false);
        while (batches.MoveNext())
        {
            var h = new RecordBatchHeader(batches.Current);
            if (h.ProducerId < 0 || !h.IsTransactional || h.IsControl) continue;
            producerId = h.ProducerId;
            epoch = h.ProducerEpoch;
            return true;
        }
        producerId = -1;
        epoch = -1;
        return false;
    }

    public static string Describe(short error) => error switch
    {
        ErrorCodes.InvalidTxnState => "Partition was not added to the transaction",
        ErrorCodes.NotEnoughReplicas => "Unable to verify the partition has been added to the transaction: its coordinator is not available; retry.",
        _ => $"Transaction verification failed with error {error}.",
    };
}
