using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Groups;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

// DeleteGroups v0-2: split by coordinator broker, one call per broker in parallel, merged in
// request order. Sequential, like the topic admin APIs: deletions happen in the order sent.
public sealed class DeleteGroupsApi(CoordinatorRouter router) : ApiHandler<DeleteGroupsRequest>
{
    public override ApiKey Key => ApiKey.DeleteGroups;
    public override short MinVersion => 0;
    public override short MaxVersion => DeleteGroupsRequest.HighestSupportedVersion;
    public override bool Sequential => true;

    protected override async Task<IKafkaResponse?> HandleAsync(DeleteGroupsRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var metadata = router.Watcher.Current;
        var merged = new DeleteGroupsResponse();
        var byBroker = new Dictionary<int, (BrokerInfo Broker, DeleteGroupsRequest Request, List<int> Slots)>();
        for (var i = 0; i < request.GroupsNames.Count; i++)
        {
            var groupId = request.GroupsNames[i];
            merged.Results.Add(new DeleteGroupsResponse.DeletableGroupResult { GroupId = groupId });
            var (error, broker) = string.IsNullOrEmpty(groupId) ? (ErrorCode.InvalidGroupId, null) : router.Coordinator(metadata, groupId);
            if (broker is null) { merged.Results[i].ErrorCode = (short)error; continue; }
            if (!byBroker.TryGetValue(broker.BrokerId, out var entry))
                byBroker[broker.BrokerId] = entry = (broker, new DeleteGroupsRequest(), []);
            entry.Request.GroupsNames.Add(groupId);
            entry.Slots.Add(i);
        }
        await Task.WhenAll(byBroker.Values.Select(async entry =>
        {
            var answer = await router.ForwardAsync<DeleteGroupsResponse>(entry.Broker, (c, r, o) => c.DeleteGroupsAsync(r, o), entry.Request, context,
                SingleGroupApi<DeleteGroupsRequest, DeleteGroupsResponse>.PlainCallWaitMs, cancellationToken).ConfigureAwait(false);
            for (var j = 0; j < entry.Slots.Count; j++)
            {
                if (answer is not null && j < answer.Results.Count) merged.Results[entry.Slots[j]] = answer.Results[j];
                else merged.Results[entry.Slots[j]].ErrorCode = (short)ErrorCode.CoordinatorNotAvailable;
            }
        })).ConfigureAwait(false);
        return merged;
    }
}
