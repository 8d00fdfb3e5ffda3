using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Groups;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

// OffsetDelete v0, forwarded to the group's coordinator.
public sealed class OffsetDeleteApi(CoordinatorRouter router) : SingleGroupApi<OffsetDeleteRequest, OffsetDeleteResponse>(router)
{
    public override ApiKey Key => ApiKey.OffsetDelete;
    public override short MinVersion => 0;
    public override short MaxVersion => OffsetDeleteRequest.HighestSupportedVersion;

    protected override string GroupIdOf(OffsetDeleteRequest request) => request.GroupId;

    protected override GroupCall Call => (c, r, o) => c.OffsetDeleteAsync(r, o);

    protected override OffsetDeleteResponse ErrorResponse(OffsetDeleteRequest request, short version, ErrorCode error)
        => new() { ErrorCode = (short)error };
}
