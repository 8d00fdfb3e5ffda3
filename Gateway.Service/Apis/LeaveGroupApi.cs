using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Groups;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

// LeaveGroup v0-5 (batched members from v3), forwarded to the group's coordinator.
public sealed class LeaveGroupApi(CoordinatorRouter router) : SingleGroupApi<LeaveGroupRequest, LeaveGroupResponse>(router)
{
    public override ApiKey Key => ApiKey.LeaveGroup;
    public override short MinVersion => 0;
    public override short MaxVersion => LeaveGroupRequest.HighestSupportedVersion;

    protected override string GroupIdOf(LeaveGroupRequest request) => request.GroupId;

    protected override GroupCall Call => (c, r, o) => c.LeaveGroupAsync(r, o);

    protected override LeaveGroupResponse ErrorResponse(LeaveGroupRequest request, short version, ErrorCode error)
        => new() { ErrorCode = (short)error };
}
