using Grpc.Core;
using StreamPlatform.Broker.Groups;
using StreamPlatform.Protos.Grpc.Groups;
using StreamPlatform.Protos.Grpc.Transactions;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Broker.Transactions;

/// <summary>
/// TransactionCoordinatorService: decodes the Kafka request body, runs it on the
/// <see cref="TransactionCoordinator"/> and encodes the Kafka response at the same version (the
/// codec of the group coordinator's service, <see cref="GroupCoordinatorGrpcService.Decode{T}"/>:
/// a body that does not decode is INVALID_ARGUMENT). Writes are answered once committed to
/// __transaction_state: the coordinator waits for that before it answers.
/// </summary>
public sealed class TransactionCoordinatorGrpcService(TransactionCoordinator coordinator) : TransactionCoordinatorService.TransactionCoordinatorServiceBase
{
    public override async Task<KafkaGroupResponse> InitProducerId(KafkaGroupRequest request, ServerCallContext context)
    {
        var (r, v) = GroupCoordinatorGrpcService.Decode<InitProducerIdRequest>(request);
        return GroupCoordinatorGrpcService.Encode(await coordinator.InitProducerIdAsync(r, v, context.CancellationToken).ConfigureAwait(false), v);
    }

    public override async Task<KafkaGroupResponse> AddPartitionsToTxn(KafkaGroupRequest request, ServerCallContext context)
    {
        var (r, v) = GroupCoordinatorGrpcService.Decode<AddPartitionsToTxnRequest>(request);
        return GroupCoordinatorGrpcService.Encode(await coordinator.AddPartitionsToTxnAsync(r, v, context.CancellationToken).ConfigureAwait(false), v);
    }

    public override async Task<KafkaGroupResponse> AddOffsetsToTxn(KafkaGroupRequest request, ServerCallContext context)
    {
        var (r, v) = GroupCoordinatorGrpcService.Decode<AddOffsetsToTxnRequest>(request);
        return GroupCoordinatorGrpcService.Encode(await coordinator.AddOffsetsToTxnAsync(r, v).ConfigureAwait(false), v);
    }

    public override async Task<KafkaGroupResponse> EndTxn(KafkaGroupRequest request, ServerCallContext context)
    {
        var (r, v) = GroupCoordinatorGrpcService.Decode<EndTxnRequest>(request);
        return GroupCoordinatorGrpcService.Encode(await coordinator.EndTxnAsync(r, v, context.CancellationToken).ConfigureAwait(false), v);
    }

    public override Task<KafkaGroupResponse> DescribeTransactions(KafkaGroupRequest request, ServerCallContext context)
    {
        var (r, v) = GroupCoordinatorGrpcService.Decode<DescribeTransactionsRequest>(request);
        return Task.FromResult(GroupCoordinatorGrpcService.Encode(coordinator.DescribeTransactions(r), v));
    }

    public override Task<KafkaGroupResponse> ListTransactions(KafkaGroupRequest request, ServerCallContext context)
    {
        var (r, v) = GroupCoordinatorGrpcService.Decode<ListTransactionsRequest>(request);
        return Task.FromResult(GroupCoordinatorGrpcService.Encode(coordinator.ListTransactions(r), v));
    }
}
