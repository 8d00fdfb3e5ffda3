using StreamPlatform.Protos.Grpc.Controller;
using StreamPlatform.Protos.Grpc.Metadata;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Controller.Metadata;

public sealed partial class MetadataController
{
    /// <summary>Ids per block (Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE).</summary>
    public const int ProducerIdBlockSize = 1000;

    /// <summary>
    /// Kafka's AllocateProducerIds (ProducerIdControlManager.generateNextProducerId): the broker
    /// at its registered epoch gets the next block [next, next + 1000). The ProducerIdsRecord is
    /// in the log before the answer, so a block is never given twice, across restarts too.
    /// STALE_BROKER_EPOCH for an unknown broker or another epoch (a broker that restarted gets
    /// its blocks under its new registration); UNKNOWN_SERVER_ERROR once the id space is used up.
    /// </summary>
    public AllocateProducerIdsResponse AllocateProducerIds(AllocateProducerIdsRequest request)
    {
        lock (_gate)
        {
            EnsureReady();
            if (!_state.Brokers.TryGetValue(request.BrokerId, out var broker) || broker.BrokerEpoch != request.BrokerEpoch)
                return new AllocateProducerIdsResponse
                {
                    ErrorCode = ErrorCodes.StaleBrokerEpoch,
                    ErrorMessage = $"Broker {request.BrokerId} epoch {request.BrokerEpoch} is not its registered epoch.",
                };
            var start = _state.NextProducerId;
            if (start > long.MaxValue - ProducerIdBlockSize)
                return new AllocateProducerIdsResponse { ErrorCode = ErrorCodes.UnknownServerError, ErrorMessage = "Exhausted all producer ids." };
            var stage = new MetadataStage(_state);
            try
            {
                stage.Add(new MetadataRecord
                {
                    ProducerIds = new ProducerIdsRecord { BrokerId = request.BrokerId, BrokerEpoch = request.BrokerEpoch, NextProducerId = start + ProducerIdBlockSize },
                });
                Commit(stage);
            }
            catch (MetadataStateException ex)
            {
                return new AllocateProducerIdsResponse { ErrorCode = ex.ErrorCode, ErrorMessage = ex.Message };
            }
            catch (IOException ex)
            {
                return new AllocateProducerIdsResponse { ErrorCode = ErrorCodes.KafkaStorageError, ErrorMessage = ex.Message };
            }
            _logger.LogInformation("Producer ids [{Start}, {End}) given to broker {BrokerId}", start, start + ProducerIdBlockSize, request.BrokerId);
            return new AllocateProducerIdsResponse { ProducerIdStart = start, ProducerIdLen = ProducerIdBlockSize };
        }
    }
}
