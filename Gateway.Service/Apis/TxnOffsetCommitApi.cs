using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Groups;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

// TxnOffsetCommit v0-4 (Kafka 4.x: 0-5; v5, transaction version 2's implicit AddOffsetsToTxn, is
// not in our definitions). Sent to the GROUP's coordinator (GroupCoordinatorService.TxnOffsetCommit),
// not the transaction coordinator: the offsets wait there, pending, until the transaction's
// marker reaches the group's __consumer_offsets partition. No coordinator, or unreachable:
// COORDINATOR_NOT_AVAILABLE on every partition (the client finds the group coordinator again);
// an empty group id: INVALID_GROUP_ID. Sequential, like OffsetCommit.
public sealed class TxnOffsetCommitApi(CoordinatorRouter router) : SingleGroupApi<TxnOffsetCommitRequest, TxnOffsetCommitResponse>(router)
{
    public override ApiKey Key => ApiKey.TxnOffsetCommit;
    public override short MinVersion => 0;
    public override short MaxVersion => TxnOffsetCommitRequest.HighestSupportedVersion;
    public override bool Sequential => true;

    protected override string GroupIdOf(TxnOffsetCommitRequest request) => request.GroupId;

    protected override GroupCall Call => static (c, r, o) => c.TxnOffsetCommitAsync(r, o);

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
