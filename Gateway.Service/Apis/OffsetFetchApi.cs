using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Groups;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

// OffsetFetch v0-9. v0-7 name one group: forwarded to its coordinator. v8+ name several: split
// by coordinator broker, one call per broker in parallel, answers merged in request order; a
// group without a reachable coordinator gets COORDINATOR_NOT_AVAILABLE.
public sealed class OffsetFetchApi(CoordinatorRouter router) : ApiHandler<OffsetFetchRequest>
{
    public override ApiKey Key => ApiKey.OffsetFetch;
    public override short MinVersion => 0;
    public override short MaxVersion => OffsetFetchRequest.HighestSupportedVersion;

    protected override async Task<IKafkaResponse?> HandleAsync(OffsetFetchRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var version = context.ApiVersion;
        var metadata = router.Watcher.Current;
        if (version < 8)
        {
            var (error, broker) = string.IsNullOrEmpty(request.GroupId) ? (ErrorCode.InvalidGroupId, null) : router.Coordinator(metadata, request.GroupId);
            var response = broker is null ? null
                : await router.ForwardAsync<OffsetFetchResponse>(broker, (c, r, o) => c.OffsetFetchAsync(r, o), request, context, SingleGroupApi<OffsetFetchRequest, OffsetFetchResponse>.PlainCallWaitMs, cancellationToken).ConfigureAwait(false);
            return response ?? SingleError(request, version, broker is null ? error : ErrorCode.CoordinatorNotAvailable);
        }
        var merged = new OffsetFetchResponse();
        var byBroker = new Dictionary<int, (BrokerInfo Broker, OffsetFetchRequest Request, List<int> Slots)>();
        for (var i = 0; i < request.Groups.Count; i++)
        {
            var g = request.Groups[i];
            merged.Groups.Add(new OffsetFetchResponse.OffsetFetchResponseGroup { GroupId = g.GroupId });
            var (error, broker) = string.IsNullOrEmpty(g.GroupId) ? (ErrorCode.InvalidGroupId, null) : router.Coordinator(metadata, g.GroupId);
            if (broker is null) { merged.Groups[i].ErrorCode = (short)error; continue; }
            if (!byBroker.TryGetValue(broker.BrokerId, out var entry))
                byBroker[broker.BrokerId] = entry = (broker, new OffsetFetchRequest { RequireStable = request.RequireStable }, []);
            entry.Request.Groups.Add(g);
            entry.Slots.Add(i);
        }
        await Task.WhenAll(byBroker.Values.Select(async entry =>
        {
            var answer = await router.ForwardAsync<OffsetFetchResponse>(entry.Broker, (c, r, o) => c.OffsetFetchAsync(r, o), entry.Request, context,
                SingleGroupApi<OffsetFetchRequest, OffsetFetchResponse>.PlainCallWaitMs, cancellationToken).ConfigureAwait(false);
            for (var j = 0; j < entry.Slots.Count; j++)
            {
                if (answer is not null && j < answer.Groups.Count) merged.Groups[entry.Slots[j]] = answer.Groups[j];
                else merged.Groups[entry.Slots[j]].ErrorCode = (short)ErrorCode.CoordinatorNotAvailable;
            }
        })).ConfigureAwait(false);
        return merged;
    }

    private static OffsetFetchResponse SingleError(OffsetFetchRequest request, short version, ErrorCode error)
    {
        var response = new OffsetFetchResponse();
        if (version >= 2)
        {
            response.ErrorCode = (short)error;
            return response;
        }
        foreach (var t in request.Topics ?? [])
        {
            var rt = new OffsetFetchResponse.OffsetFetchResponseTopic { Name = t.Name };
            foreach (var p in t.PartitionIndexes)
                rt.Partitions.Add(new OffsetFetchResponse.OffsetFetchResponsePartition { PartitionIndex = p, CommittedOffset = -1, Metadata = "", ErrorCode = (short)error });
            response.Topics.Add(rt);
        }
        return response;
    }
}
