using Grpc.Core;
using StreamPlatform.Broker.Groups;
using StreamPlatform.Protos.Grpc.Groups;
using StreamPlatform.Protos.Grpc.Transactions;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Broker.Transactions;

/// <summary>
/// TransactionCoordinatorService: decodes the Kafka request body, runs it on the
/// <see cref="TransactionCoordinator"/> and encodes the Kafka response at the same version (the
/// codec of the group coordinator's service, <see cref="GroupCoordinatorGrpcService.Decode{T}"/>).
/// Writes are answered once committed to __transaction_state (the coordinator waits).
/// </summary>
public sealed class TransactionCoordinatorGrpcService(TransactionCoordinator coordinator) : TransactionCoordinatorService.TransactionCoordinatorServiceBase
{
    public override async Task<KafkaGroupResponse> InitProducerId(KafkaGroupRequest request, ServerCallContext context)
    {
        var (r, v) = GroupCoordinatorGrpcService.Decode<InitProducerIdRequest>(request);
        return GroupCoordinatorGrpcService.Encode(await coordinator.InitProducerIdAsync(r, v, context.CancellationToken).ConfigureAwait(false), v);
    }
}
