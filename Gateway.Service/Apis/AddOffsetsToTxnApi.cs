using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Security;
using StreamPlatform.Gateway.Transactions;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using TxnClient = StreamPlatform.Protos.Grpc.Transactions.TransactionCoordinatorService.TransactionCoordinatorServiceClient;

namespace StreamPlatform.Gateway.Apis;

// AddOffsetsToTxn v0-4 (Kafka 4.x: 0-4). Forwarded as it is to the transactional id's
// coordinator (TransactionCoordinatorService.AddOffsetsToTxn), which adds the group's
// __consumer_offsets partition to the transaction; the client then sends TxnOffsetCommit to the
// group coordinator. No coordinator, or unreachable: COORDINATOR_NOT_AVAILABLE (the client finds
// it again); an empty transactional id: INVALID_REQUEST. Authorization as Kafka's: WRITE on the
// transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), READ on the group
// (GROUP_AUTHORIZATION_FAILED). Sequential.
public sealed class AddOffsetsToTxnApi(CoordinatorRouter router, IAuthorizer authorizer) : SingleTransactionApi<AddOffsetsToTxnRequest, AddOffsetsToTxnResponse>(router, authorizer)
{
    public override ApiKey Key => ApiKey.AddOffsetsToTxn;
    public override short MinVersion => 0;
    public override short MaxVersion => AddOffsetsToTxnRequest.HighestSupportedVersion;

    protected override string? KeyOf(AddOffsetsToTxnRequest request) => request.TransactionalId;

    protected override KafkaBodyCall<TxnClient> BodyCall => static (c, r, o) => c.AddOffsetsToTxnAsync(r, o);

    /// <summary>Kafka's order: WRITE on the transactional id, then READ on the group (GROUP_AUTHORIZATION_FAILED).</summary>
    protected override ErrorCode Authorize(AddOffsetsToTxnRequest request, RequestContext context)
    {
        var denied = base.Authorize(request, context);
        if (denied != ErrorCode.None) return denied;
        return Authorizer.Authorize(context, AclOperation.Read, AclResourceType.Group, request.GroupId) ? ErrorCode.None : ErrorCode.GroupAuthorizationFailed;
    }

    protected override AddOffsetsToTxnResponse ErrorResponse(AddOffsetsToTxnRequest request, short version, ErrorCode error)
        => new() { ErrorCode = (short)error };
}
