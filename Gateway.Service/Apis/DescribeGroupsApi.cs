using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Groups;
using StreamPlatform.Gateway.Security;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

// DescribeGroups v0-5: split by coordinator broker, one call per broker in parallel, merged in
// request order. A group without a reachable coordinator: COORDINATOR_NOT_AVAILABLE.
// Authorized operations from IAuthorizer (GROUP operations bitfield) for each group answered
// without error when include_authorized_operations (v3+); otherwise -2147483648, as Kafka.
public sealed class DescribeGroupsApi(CoordinatorRouter router, IAuthorizer authorizer) : ApiHandler<DescribeGroupsRequest>
{
    public override ApiKey Key => ApiKey.DescribeGroups;
    public override short MinVersion => 0;
    public override short MaxVersion => DescribeGroupsRequest.HighestSupportedVersion;

    protected override async Task<IKafkaResponse?> HandleAsync(DescribeGroupsRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var metadata = router.Watcher.Current;
        var merged = new DescribeGroupsResponse();
        var byBroker = new Dictionary<int, (BrokerInfo Broker, DescribeGroupsRequest Request, List<int> Slots)>();
        for (var i = 0; i < request.Groups.Count; i++)
        {
            var groupId = request.Groups[i];
            merged.Groups.Add(new DescribeGroupsResponse.DescribedGroup { GroupId = groupId, GroupState = "Dead", ProtocolType = "", ProtocolData = "" });
            var (error, broker) = string.IsNullOrEmpty(groupId) ? (ErrorCode.InvalidGroupId, null) : router.Coordinator(metadata, groupId);
            if (broker is null) { merged.Groups[i].ErrorCode = (short)error; continue; }
            if (!byBroker.TryGetValue(broker.BrokerId, out var entry))
                byBroker[broker.BrokerId] = entry = (broker, new DescribeGroupsRequest { IncludeAuthorizedOperations = request.IncludeAuthorizedOperations }, []);
            entry.Request.Groups.Add(groupId);
            entry.Slots.Add(i);
        }
        await Task.WhenAll(byBroker.Values.Select(async entry =>
        {
            var answer = await router.ForwardAsync<DescribeGroupsResponse>(entry.Broker, (c, r, o) => c.DescribeGroupsAsync(r, o), entry.Request, context,
                SingleGroupApi<DescribeGroupsRequest, DescribeGroupsResponse>.PlainCallWaitMs, cancellationToken).ConfigureAwait(false);
            for (var j = 0; j < entry.Slots.Count; j++)
            {
                if (answer is not null && j < answer.Groups.Count) merged.Groups[entry.Slots[j]] = answer.Groups[j];
                else merged.Groups[entry.Slots[j]].ErrorCode = ErrorCodes.CoordinatorNotAvailable;
            }
        })).ConfigureAwait(false);
        var include = request.IncludeAuthorizedOperations && context.ApiVersion >= 3;
        foreach (var group in merged.Groups)
            group.AuthorizedOperations = include && group.ErrorCode == ErrorCodes.None
                ? AuthorizedOperations.Of(authorizer, context, AclResourceType.Group, group.GroupId)
                : AuthorizedOperations.NotRequested;
        return merged;
    }
}
