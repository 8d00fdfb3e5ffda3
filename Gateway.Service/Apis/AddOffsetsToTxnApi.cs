using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Transactions;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using TxnClient = StreamPlatform.Protos.Grpc.Transactions.TransactionCoordinatorService.TransactionCoordinatorServiceClient;

namespace StreamPlatform.Gateway.Apis;

// AddOffsetsToTxn v0-4 (Kafka 4.x: 0-4). Forwarded as it is to the transactional id's
// coordinator (TransactionCoordinatorService.AddOffsetsToTxn), which adds the group's
// __consumer_offsets partition to the transaction; the client then sends TxnOffsetCommit to the
// group coordinator. No coordinator, or unreachable: COORDINATOR_NOT_AVAILABLE (the client finds
// it again); an empty transactional id: INVALID_REQUEST. Sequential.
public sealed class AddOffsetsToTxnApi(CoordinatorRouter router) : SingleTransactionApi<AddOffsetsToTxnRequest, AddOffsetsToTxnResponse>(router)
{
    public override ApiKey Key => ApiKey.AddOffsetsToTxn;
    public override short MinVersion => 0;
    public override short MaxVersion => AddOffsetsToTxnRequest.HighestSupportedVersion;

    protected override string? KeyOf(AddOffsetsToTxnRequest request) => request.TransactionalId;

    protected override KafkaBodyCall<TxnClient> BodyCall => static (c, r, o) => c.AddOffsetsToTxnAsync(r, o);

    protected override AddOffsetsToTxnResponse ErrorResponse(AddOffsetsToTxnRequest request, short version, ErrorCode error)
        => new() { ErrorCode = (short)error };
}
