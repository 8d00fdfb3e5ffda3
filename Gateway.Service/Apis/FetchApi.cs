using Grpc.Core;
using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using Brk = StreamPlatform.Protos.Grpc.Broker;

namespace StreamPlatform.Gateway.Apis;

// Fetch v4-v17 (up to the codec's highest): v4 is the first with isolation level and the
// last-stable-offset/aborted-transactions fields. Topics by name up to v12, by id from v13 (an
// unknown id: UNKNOWN_TOPIC_ID 100; an unknown name: UNKNOWN_TOPIC_OR_PARTITION 3). Fetch
// sessions are not supported: the response always has session_id 0, i.e. a full response, which
// every client accepts (they then send full requests). Partitions are grouped by leading broker
// and fetched in parallel with the client's max_wait_ms/min_bytes; as soon as one broker returns
// data, the brokers still long-polling get an immediate fetch (max_wait 0) and their long polls
// are cancelled, then everything is merged. Every requested partition appears in the response
// (no leader or broker unreachable: NOT_LEADER_OR_FOLLOWER 6), and max_bytes is respected
// overall (the first non-empty partition is always included, like Kafka, so progress is made).
public sealed class FetchApi(
    TopicAdmin admin,
    BrokerClientPool brokers,
    IOptions<GatewayOptions> options,
    TimeProvider time,
    ILogger<FetchApi> logger) : ApiHandler<FetchRequest>
{
    /// <summary>Upper bound on a client's max_wait_ms, so a long poll cannot hold resources for hours.</summary>
    public const int MaxWaitMsLimit = 60_000;

    public override ApiKey Key => ApiKey.Fetch;
    public override short MinVersion => 4;
    public override short MaxVersion => Math.Min((short)17, FetchResponse.HighestSupportedVersion);

    private sealed class Target(FetchResponse.PartitionData data, string topic, int partitionMaxBytes)
    {
        public FetchResponse.PartitionData Data { get; } = data;
        public string Topic { get; } = topic;
        public int PartitionMaxBytes { get; } = partitionMaxBytes;
    }

    private sealed class BrokerFetch(BrokerInfo broker, Brk.FetchRequest request, List<Target> targets)
    {
        public BrokerInfo Broker { get; } = broker;
        public Brk.FetchRequest Request { get; } = request;
        public List<Target> Targets { get; } = targets;
    }

    protected override async Task<IKafkaResponse?> HandleAsync(FetchRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var version = context.ApiVersion;
        var metadata = admin.Watcher.Current;
        var response = new FetchResponse { SessionId = 0 };
        var maxWaitMs = Math.Clamp(request.MaxWaitMs, 0, MaxWaitMsLimit);
        var groups = new Dictionary<int, BrokerFetch>();

        foreach (var topic in request.Topics)
        {
            var topicResponse = new FetchResponse.FetchableTopicResponse { Topic = topic.Topic, TopicId = topic.TopicId };
            response.Responses.Add(topicResponse);
            TopicInfo? info;
            ErrorCode topicError;
            if (version >= 13)
            {
                topicError = metadata.TopicsById.TryGetValue(topic.TopicId, out info) ? ErrorCode.None : ErrorCode.UnknownTopicId;
            }
            else
            {
                topicError = metadata.TopicsByName.TryGetValue(topic.Topic, out info) ? ErrorCode.None : ErrorCode.UnknownTopicOrPartition;
            }
            foreach (var p in topic.Partitions)
            {
                var data = ErrorResponses.FetchError(p.Partition, (short)topicError);
                topicResponse.Partitions.Add(data);
                if (info is null) continue;
                if ((uint)p.Partition >= (uint)info.Partitions.Count)
                {
                    data.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    continue;
                }
                var leader = metadata.LeaderOf(info.Partitions[p.Partition]);
                if (leader is null)
                {
                    data.ErrorCode = (short)ErrorCode.NotLeaderOrFollower;
                    continue;
                }
                if (!groups.TryGetValue(leader.BrokerId, out var group))
                {
                    group = new BrokerFetch(leader, new Brk.FetchRequest
                    {
                        MaxWaitMs = maxWaitMs,
                        MinBytes = request.MinBytes,
                        MaxBytes = request.MaxBytes,
                        IsolationLevel = request.IsolationLevel,
                        ReplicaId = -1,
                    }, []);
                    groups[leader.BrokerId] = group;
                }
                group.Request.Partitions.Add(new Brk.PartitionFetch
                {
                    Topic = info.Name,
                    Partition = p.Partition,
                    FetchOffset = p.FetchOffset,
                    PartitionMaxBytes = p.PartitionMaxBytes,
                    CurrentLeaderEpoch = p.CurrentLeaderEpoch,
                });
                group.Targets.Add(new Target(data, info.Name, p.PartitionMaxBytes));
            }
        }

        if (groups.Count > 0)
            await FetchAllAsync(groups.Values.ToList(), maxWaitMs, cancellationToken).ConfigureAwait(false);

        EnforceMaxBytes(response, request.MaxBytes);
        return response;
    }

    private async Task FetchAllAsync(List<BrokerFetch> groups, int maxWaitMs, CancellationToken cancellationToken)
    {
        var pending = new Dictionary<Task<Brk.FetchResponse?>, (BrokerFetch Group, CancellationTokenSource Cts)>();
        try
        {
            foreach (var g in groups)
            {
                var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                pending[CallAsync(g, g.Request, maxWaitMs, cts.Token)] = (g, cts);
            }
            var shortCircuited = false;
            while (pending.Count > 0)
            {
                var done = await Task.WhenAny(pending.Keys).ConfigureAwait(false);
                var (group, doneCts) = pending[done];
                pending.Remove(done);
                doneCts.Dispose();
                var result = await done.ConfigureAwait(false);
                var hasData = Apply(group, result);
                if (hasData && !shortCircuited && pending.Count > 0)
                {
                    // Someone has data: the client should get it now, not after the other
                    // brokers' long polls time out. Replace each long poll by an immediate fetch.
                    shortCircuited = true;
                    var replacements = new Dictionary<Task<Brk.FetchResponse?>, (BrokerFetch, CancellationTokenSource)>();
                    foreach (var (_, (g, cts)) in pending)
                    {
                        cts.Cancel();
                        cts.Dispose();
                        var immediate = g.Request.Clone();
                        immediate.MaxWaitMs = 0;
                        immediate.MinBytes = 0;
                        var newCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                        replacements[CallAsync(g, immediate, 0, newCts.Token)] = (g, newCts);
                    }
                    pending.Clear();
                    foreach (var (t, v) in replacements) pending[t] = v;
                }
            }
        }
        finally
        {
            foreach (var (_, (_, cts)) in pending) cts.Dispose();
        }
    }

    /// <summary>The broker's answer, or null when the call failed (its partitions already marked).</summary>
    private async Task<Brk.FetchResponse?> CallAsync(BrokerFetch group, Brk.FetchRequest request, int maxWaitMs, CancellationToken cancellationToken)
    {
        var client = brokers.GetClient(group.Broker);
        if (client is null) return null;
        try
        {
            return await client.FetchAsync(request,
                deadline: time.GetUtcNow().UtcDateTime.AddMilliseconds(maxWaitMs + options.Value.BrokerCallMarginMs),
                cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException ex)
        {
            if (ex.StatusCode != StatusCode.Cancelled)
                logger.LogWarning("Fetch from broker {BrokerId} at {Endpoint} failed: {Status} {Detail}",
                    group.Broker.BrokerId, group.Broker.GrpcEndpoint, ex.StatusCode, ex.Status.Detail);
            return null;
        }
    }

    /// <summary>Copies a broker's results into the response; true when any partition got records or an error.</summary>
    private static bool Apply(BrokerFetch group, Brk.FetchResponse? result)
    {
        if (result is null)
        {
            foreach (var t in group.Targets) t.Data.ErrorCode = (short)ErrorCode.NotLeaderOrFollower;
            return false;
        }
        var byKey = new Dictionary<(string, int), Brk.PartitionFetchResult>();
        foreach (var r in result.Results) byKey[(r.Topic, r.Partition)] = r;
        var any = false;
        foreach (var t in group.Targets)
        {
            if (!byKey.TryGetValue((t.Topic, t.Data.PartitionIndex), out var r))
            {
                t.Data.ErrorCode = (short)ErrorCode.UnknownServerError;
                continue;
            }
            t.Data.ErrorCode = (short)r.ErrorCode;
            t.Data.HighWatermark = r.HighWatermark;
            t.Data.LastStableOffset = r.LastStableOffset;
            t.Data.LogStartOffset = r.LogStartOffset;
            // ByteString.Memory: the gRPC message's own buffer, no copy.
            t.Data.Records = r.Records.Memory;
            any |= r.Records.Length > 0 || r.ErrorCode != 0;
        }
        return any;
    }

    /// <summary>Drops records past the response-wide max_bytes; the first non-empty partition always stays.</summary>
    internal static void EnforceMaxBytes(FetchResponse response, int maxBytes)
    {
        long total = 0;
        foreach (var topic in response.Responses)
        {
            foreach (var p in topic.Partitions)
            {
                var size = p.Records?.Length ?? 0;
                if (size == 0) continue;
                if (total > 0 && total + size > maxBytes) p.Records = ReadOnlyMemory<byte>.Empty;
                else total += size;
            }
        }
    }
}
