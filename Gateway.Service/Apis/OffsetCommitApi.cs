using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Groups;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

// OffsetCommit v0-9, forwarded to the group's coordinator. Sequential: commits from one
// connection must land in the order sent, or an older offset could overwrite a newer one.
public sealed class OffsetCommitApi(CoordinatorRouter router) : SingleGroupApi<OffsetCommitRequest, OffsetCommitResponse>(router)
{
    public override ApiKey Key => ApiKey.OffsetCommit;
    public override short MinVersion => 0;
    public override short MaxVersion => OffsetCommitRequest.HighestSupportedVersion;
    public override bool Sequential => true;

    protected override string GroupIdOf(OffsetCommitRequest request) => request.GroupId;

    protected override GroupCall Call => (c, r, o) => c.OffsetCommitAsync(r, o);

    protected override OffsetCommitResponse ErrorResponse(OffsetCommitRequest request, short version, ErrorCode error)
    {
        var response = new OffsetCommitResponse();
        foreach (var t in request.Topics)
        {
            var rt = new OffsetCommitResponse.OffsetCommitResponseTopic { Name = t.Name };
            foreach (var p in t.Partitions) rt.Partitions.Add(new OffsetCommitResponse.OffsetCommitResponsePartition { PartitionIndex = p.PartitionIndex, ErrorCode = (short)error });
            response.Topics.Add(rt);
        }
        return response;
    }
}
