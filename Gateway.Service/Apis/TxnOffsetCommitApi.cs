using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Groups;
using StreamPlatform.Gateway.Security;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

// TxnOffsetCommit v0-4, the range of our protocol definitions (Kafka 4.x adds v5 for transaction
// version 2, whose coordinator adds the group's offsets partition to the transaction implicitly;
// the group coordinator already does that for a v5 body). Sent to the GROUP's coordinator (GroupCoordinatorService.TxnOffsetCommit),
// not the transaction coordinator: the offsets wait there, pending, until the transaction's
// marker reaches the group's __consumer_offsets partition. No coordinator, or unreachable:
// COORDINATOR_NOT_AVAILABLE on every partition (the client finds the group coordinator again);
// an empty group id: INVALID_GROUP_ID. Authorization as Kafka's: WRITE on the transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), READ on the group (GROUP_AUTHORIZATION_FAILED), on every
// partition (per-topic READ: not yet). Sequential, like OffsetCommit.
public sealed class TxnOffsetCommitApi(CoordinatorRouter router, IAuthorizer authorizer) : SingleGroupApi<TxnOffsetCommitRequest, TxnOffsetCommitResponse>(router)
{
    public override ApiKey Key => ApiKey.TxnOffsetCommit;
    public override short MinVersion => 0;
    public override short MaxVersion => TxnOffsetCommitRequest.HighestSupportedVersion;
    public override bool Sequential => true;

    protected override string GroupIdOf(TxnOffsetCommitRequest request) => request.GroupId;

    protected override GroupCall Call => static (c, r, o) => c.TxnOffsetCommitAsync(r, o);

    /// <summary>Kafka's order: WRITE on the transactional id, then READ on the group; either refused answers every partition.</summary>
    protected override ErrorCode Authorize(TxnOffsetCommitRequest request, RequestContext context)
    {
        if (!authorizer.Authorize(context, AclOperation.Write, AclResourceType.TransactionalId, request.TransactionalId)) return ErrorCode.TransactionalIdAuthorizationFailed;
        return authorizer.Authorize(context, AclOperation.Read, AclResourceType.Group, request.GroupId) ? ErrorCode.None : ErrorCode.GroupAuthorizationFailed;
    }

    protected override TxnOffsetCommitResponse ErrorResponse(TxnOffsetCommitRequest request, short version, ErrorCode error)
    {
        var response = new TxnOffsetCommitResponse();
        foreach (var t in request.Topics)
        {
            var rt = new TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic { Name = t.Name };
            foreach (var p in t.Partitions) rt.Partitions.Add(new TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition { PartitionIndex = p.PartitionIndex, ErrorCode = (short)error });
            response.Topics.Add(rt);
        }
        return response;
    }
}
