using StreamPlatform.Protos.Kafka.Messages;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Transactions;

/// <summary>
/// The transaction coordinator of one broker (Kafka's TransactionCoordinator). InitProducerId
/// with a null transactional id (idempotent producers) is answered by any broker: a new
/// producer id from this broker's block, epoch 0.
/// </summary>
public sealed class TransactionCoordinator(ProducerIdManager producerIds, ILogger<TransactionCoordinator> logger)
{
    /// <summary>
    /// Kafka's KafkaApis.handleInitProducerId + TransactionCoordinator.handleInitProducerId. A
    /// producer id given without its epoch (or the reverse) is INVALID_REQUEST. A null
    /// transactional id always gets a new producer id with epoch 0, whatever producer id and
    /// epoch the request carries (Kafka does the same: an idempotent producer bumps its epoch
    /// itself, KIP-360, and asks for a new id only when it must); transaction_timeout_ms is not
    /// read for it.
    /// </summary>
    public async Task<InitProducerIdResponse> InitProducerIdAsync(InitProducerIdRequest request, short version, CancellationToken cancellationToken)
    {
        if ((request.ProducerId == -1) != (request.ProducerEpoch == -1)) return InitError(ErrorCodes.InvalidRequest);
        if (request.TransactionalId is null)
        {
            var (error, producerId) = await producerIds.NextAsync(cancellationToken).ConfigureAwait(false);
            if (error != ErrorCodes.None) return InitError(error);
            logger.LogDebug("Producer id {ProducerId} given to an idempotent producer", producerId);
            return new InitProducerIdResponse { ProducerId = producerId, ProducerEpoch = 0 };
        }
        return InitError(ErrorCodes.NotCoordinator);
    }

    private static InitProducerIdResponse InitError(short error) => new() { ErrorCode = error, ProducerId = -1, ProducerEpoch = -1 };
}
