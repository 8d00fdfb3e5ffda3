using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Groups;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

// ListGroups v0-5 (states filter v4+, types filter v5+). Admin clients ask every broker they
// know and concatenate, so each gateway lists the groups of the brokers that map to it
// (GatewayMapping): over all gateways every group appears exactly once. A broker that cannot be
// reached makes the answer COORDINATOR_NOT_AVAILABLE (with the groups of the others).
public sealed class ListGroupsApi(CoordinatorRouter router) : ApiHandler<ListGroupsRequest>
{
    public override ApiKey Key => ApiKey.ListGroups;
    public override short MinVersion => 0;
    public override short MaxVersion => ListGroupsRequest.HighestSupportedVersion;

    protected override async Task<IKafkaResponse?> HandleAsync(ListGroupsRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var metadata = router.Watcher.Current;
        var gateways = GatewayMapping.Gateways(metadata, router.Options);
        var brokers = metadata.Snapshot.Brokers
            .Where(b => !b.Fenced && GatewayMapping.GatewayFor(gateways, b.BrokerId) == router.Options.NodeId)
            .ToList();
        var answers = await Task.WhenAll(brokers.Select(b => router.ForwardAsync<ListGroupsResponse>(b, (c, r, o) => c.ListGroupsAsync(r, o), request, context,
            SingleGroupApi<ListGroupsRequest, ListGroupsResponse>.PlainCallWaitMs, cancellationToken))).ConfigureAwait(false);
        var merged = new ListGroupsResponse();
        foreach (var answer in answers)
        {
            if (answer is null) { merged.ErrorCode = (short)ErrorCode.CoordinatorNotAvailable; continue; }
            if (answer.ErrorCode != 0 && merged.ErrorCode == 0) merged.ErrorCode = answer.ErrorCode;
            merged.Groups.AddRange(answer.Groups);
        }
        return merged;
    }
}
