using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Groups;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

// SyncGroup v0-5, forwarded to the group's coordinator. A follower waits until the leader's
// assignment arrives (at most the rebalance timeout, which SyncGroup does not carry): the
// deadline is the consumers' default max.poll.interval.ms, and the call ends early if the
// client disconnects.
public sealed class SyncGroupApi(CoordinatorRouter router) : SingleGroupApi<SyncGroupRequest, SyncGroupResponse>(router)
{
    /// <summary>Longest a SyncGroup is held: Kafka consumers' default rebalance timeout (max.poll.interval.ms).</summary>
    public const int SyncWaitMsMax = 300_000;

    public override ApiKey Key => ApiKey.SyncGroup;
    public override short MinVersion => 0;
    public override short MaxVersion => SyncGroupRequest.HighestSupportedVersion;

    protected override string GroupIdOf(SyncGroupRequest request) => request.GroupId;

    protected override GroupCall Call => (c, r, o) => c.SyncGroupAsync(r, o);

    protected override int WaitMs(SyncGroupRequest request) => SyncWaitMsMax;

    protected override SyncGroupResponse ErrorResponse(SyncGroupRequest request, short version, ErrorCode error)
        => new() { ErrorCode = (short)error };
}
