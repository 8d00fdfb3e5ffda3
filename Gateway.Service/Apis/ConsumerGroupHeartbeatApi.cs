using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Groups;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

// ConsumerGroupHeartbeat v0-1 (KIP-848, group.protocol=consumer), forwarded to the group's
// coordinator, which assigns partitions itself (uniform or range).
public sealed class ConsumerGroupHeartbeatApi(CoordinatorRouter router) : SingleGroupApi<ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse>(router)
{
    public override ApiKey Key => ApiKey.ConsumerGroupHeartbeat;
    public override short MinVersion => 0;
    public override short MaxVersion => ConsumerGroupHeartbeatRequest.HighestSupportedVersion;

    protected override string GroupIdOf(ConsumerGroupHeartbeatRequest request) => request.GroupId;

    protected override GroupCall Call => (c, r, o) => c.ConsumerGroupHeartbeatAsync(r, o);

    protected override ConsumerGroupHeartbeatResponse ErrorResponse(ConsumerGroupHeartbeatRequest request, short version, ErrorCode error)
        => new() { ErrorCode = (short)error };
}
