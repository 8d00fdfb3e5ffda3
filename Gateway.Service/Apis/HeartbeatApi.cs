using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Groups;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

// Heartbeat v0-4, forwarded to the group's coordinator.
public sealed class HeartbeatApi(CoordinatorRouter router) : SingleGroupApi<HeartbeatRequest, HeartbeatResponse>(router)
{
    public override ApiKey Key => ApiKey.Heartbeat;
    public override short MinVersion => 0;
    public override short MaxVersion => HeartbeatRequest.HighestSupportedVersion;

    protected override string GroupIdOf(HeartbeatRequest request) => request.GroupId;

    protected override GroupCall Call => (c, r, o) => c.HeartbeatAsync(r, o);

    protected override HeartbeatResponse ErrorResponse(HeartbeatRequest request, short version, ErrorCode error)
        => new() { ErrorCode = (short)error };
}
