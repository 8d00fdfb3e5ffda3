using Grpc.Core;
using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using Brk = StreamPlatform.Protos.Grpc.Broker;
using FetchFanOut = StreamPlatform.Gateway.Routing.LeaderFanOut<StreamPlatform.Protos.Grpc.Broker.FetchRequest, StreamPlatform.Protos.Kafka.Messages.FetchResponse.PartitionData>;

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

    protected override async Task<IKafkaResponse?> HandleAsync(FetchRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var version = context.ApiVersion;
        var metadata = admin.Watcher.Current;
        var response = new FetchResponse { SessionId = 0 };
        var maxWaitMs = Math.Clamp(request.MaxWaitMs, 0, MaxWaitMsLimit);
        var fanOut = new FetchFanOut(metadata, () => new Brk.FetchRequest
        {
            MaxWaitMs = maxWaitMs,
            MinBytes = request.MinBytes,
            MaxBytes = request.MaxBytes,
            IsolationLevel = request.IsolationLevel,
            ReplicaId = -1,
        }, (data, error) => data.ErrorCode = (short)error);

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
                fanOut.Route(info, p.Partition, data)?.Partitions.Add(new Brk.PartitionFetch
                {
                    Topic = info.Name,
                    Partition = p.Partition,
                    FetchOffset = p.FetchOffset,
                    PartitionMaxBytes = p.PartitionMaxBytes,
                    CurrentLeaderEpoch = p.CurrentLeaderEpoch,
                });
            }
        }

        if (fanOut.Batches.Count > 0)
            await FetchAllAsync(fanOut.Batches.ToList(), maxWaitMs, cancellationToken).ConfigureAwait(false);

        EnforceMaxBytes(response, request.MaxBytes);
        return response;
    }

    // Not LeaderFanOut.SendAllAsync: the long-poll short-circuit below needs each broker's call
    // as its own task that can be cancelled and replaced.
    private async Task FetchAllAsync(List<FetchFanOut.Batch> groups, int maxWaitMs, CancellationToken cancellationToken)
    {
        var caller = new BrokerCaller(brokers, time, logger, "Fetch");
        var pending = new Dictionary<Task<Brk.FetchResponse?>, (FetchFanOut.Batch Group, CancellationTokenSource Cts)>();
        try
        {
            foreach (var g in groups)
            {
                var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                pending[CallAsync(caller, g, g.Request, maxWaitMs, cts.Token)] = (g, cts);
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
                    var replacements = new Dictionary<Task<Brk.FetchResponse?>, (FetchFanOut.Batch, CancellationTokenSource)>();
                    foreach (var (_, (g, cts)) in pending)
                    {
                        cts.Cancel();
                        cts.Dispose();
                        var immediate = g.Request.Clone();
                        immediate.MaxWaitMs = 0;
                        immediate.MinBytes = 0;
                        var newCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                        replacements[CallAsync(caller, g, immediate, 0, newCts.Token)] = (g, newCts);
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

    /// <summary>The broker's answer, or null when the call failed (its partitions then get NOT_LEADER_OR_FOLLOWER).</summary>
    private async Task<Brk.FetchResponse?> CallAsync(BrokerCaller caller, FetchFanOut.Batch group, Brk.FetchRequest request, int maxWaitMs,
        CancellationToken cancellationToken)
    {
        try
        {
            return await caller.CallAsync(group.Broker, (long)maxWaitMs + options.Value.BrokerCallMarginMs,
                (client, deadline, ct) => client.FetchAsync(request, deadline: deadline, cancellationToken: ct), cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException ex)
        {
            // Cancelled: a long poll this handler replaced, or the client went away; not a fault.
            if (ex.StatusCode != StatusCode.Cancelled) caller.LogFailure(group.Broker, ex);
            return null;
        }
    }

    /// <summary>Copies a broker's results into the response; true when any partition got records or an error.</summary>
    private static bool Apply(FetchFanOut.Batch group, Brk.FetchResponse? result)
    {
        if (result is null)
        {
            // Any failure, the deadline included, is NOT_LEADER_OR_FOLLOWER for Fetch: the
            // client refreshes metadata and fetches again from the same offset.
            group.Fail(ErrorCode.NotLeaderOrFollower);
            return false;
        }
        var any = false;
        group.Apply(result.Results, r => (r.Topic, r.Partition), (data, r) =>
        {
            data.ErrorCode = (short)r.ErrorCode;
            data.HighWatermark = r.HighWatermark;
            data.LastStableOffset = r.LastStableOffset;
            data.LogStartOffset = r.LogStartOffset;
            // ByteString.Memory: the gRPC message's own buffer, no copy.
            data.Records = r.Records.Memory;
            any |= r.Records.Length > 0 || r.ErrorCode != 0;
        });
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
