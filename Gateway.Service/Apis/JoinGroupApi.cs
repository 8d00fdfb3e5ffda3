using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Groups;
using StreamPlatform.Protos.Configs;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

// JoinGroup v0-9, forwarded to the group's coordinator. The call waits for the rebalance: its
// deadline is the member's rebalance timeout plus group.initial.rebalance.delay.ms plus a margin.
public sealed class JoinGroupApi(CoordinatorRouter router) : SingleGroupApi<JoinGroupRequest, JoinGroupResponse>(router)
{
    public override ApiKey Key => ApiKey.JoinGroup;
    public override short MinVersion => 0;
    public override short MaxVersion => JoinGroupRequest.HighestSupportedVersion;

    protected override string GroupIdOf(JoinGroupRequest request) => request.GroupId;

    protected override GroupCall Call => (c, r, o) => c.JoinGroupAsync(r, o);

    protected override int WaitMs(JoinGroupRequest request)
    {
        var configs = Router.Watcher.Current.Snapshot.BrokerConfigs;
        var delay = int.TryParse(configs.TryGetValue("group.initial.rebalance.delay.ms", out var v) ? v : ConfigCatalog.Broker["group.initial.rebalance.delay.ms"].DefaultValue, out var d) ? d : 3000;
        var rebalance = Math.Max(request.RebalanceTimeoutMs, request.SessionTimeoutMs);
        return (int)Math.Min(int.MaxValue, (long)rebalance + Math.Max(delay, 0));
    }

    protected override JoinGroupResponse ErrorResponse(JoinGroupRequest request, short version, ErrorCode error)
        => new() { ErrorCode = (short)error, GenerationId = -1, MemberId = request.MemberId, Leader = "", ProtocolName = null };
}
