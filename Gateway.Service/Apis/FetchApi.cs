using Grpc.Core;
using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.Protos.Records;
using Brk = StreamPlatform.Protos.Grpc.Broker;
using FetchFanOut = StreamPlatform.Gateway.Routing.LeaderFanOut<StreamPlatform.Protos.Grpc.Broker.FetchRequest, StreamPlatform.Protos.Kafka.Messages.FetchResponse.PartitionData>;

namespace StreamPlatform.Gateway.Apis;

// Fetch v4-v17 (up to the codec's highest): v4 is the first with isolation level and the
// last-stable-offset/aborted-transactions fields. The isolation level goes to the brokers; each
// partition's last_stable_offset is the broker's, and aborted_transactions is the broker's list
// for a read_committed fetch (empty when none aborted within the records) and null for
// read_uncommitted and for errored partitions, as Kafka answers (BrokerFetchResponse parses both,
// records stay slices of the broker's answer). Topics by name up to v12, by id from v13 (an
// unknown id: UNKNOWN_TOPIC_ID 100; an unknown name: UNKNOWN_TOPIC_OR_PARTITION 3). Fetch
// sessions are not supported: the response always has session_id 0, i.e. a full response, which
// every client accepts (they then send full requests). Partitions are grouped by leading broker
// and fetched in parallel, always with max_wait 0 at the brokers: the first round goes to every
// broker; when it brings less than min_bytes, the fetch waits here, on the brokers' append
// notices (AppendSignals, fed by one WatchAppends stream per broker; interest registered before
// the first round, so no notice is missed), until a requested partition moved past its fetch
// offset, max_wait passed or the client went away, then asks again only the brokers whose
// partitions moved, replacing their earlier answers, until min_bytes or max_wait (see
// FetchAllAsync). No broker call is ever cancelled on this path. When a broker's watch is not
// connected (gateway starting, watch reconnecting) or goes down mid-wait, notices could be
// missing, so the rest of the wait is done the older way: broker long polls, and as soon as
// one returns data the others are dropped and re-asked with max_wait 0. Every requested
// partition appears in the response (no leader or broker unreachable: NOT_LEADER_OR_FOLLOWER 6),
// in request order, and max_bytes is respected overall (the first non-empty partition is always
// included, like Kafka, so progress is made). ResponseMayBeLarge: a fetch starts only once every
// earlier response of its connection has been sent, so a client that pipelines fetches and never
// reads holds one answer at the gateway, not one per request.
// A partition answered NOT_LEADER_OR_FOLLOWER (leader moved, broker unreachable, no leader when
// routed) is fetched once more on its new leader when the metadata shows one within what is
// left of max_wait (LeaderMoveRetry), so a leader change costs the consumer no error.
// Read-ahead (Routing/FetchReadAhead.cs): when the answer of a fetch served by one broker leaves
// data behind, the client's next fetch is asked of that broker at once, while this answer is
// written; the next Fetch uses it in place of round 1 when it asks what was predicted and it
// brought at least min_bytes without error (it predates that Fetch's interest in append
// notices, so it never stands in for a wait).
public sealed class FetchApi(
    TopicAdmin admin,
    BrokerClientPool brokers,
    IOptions<GatewayOptions> options,
    TimeProvider time,
    ILogger<FetchApi> logger,
    AppendSignals? signals = null,
    GatewayMetrics? metrics = null) : ApiHandler<FetchRequest>
{
    /// <summary>Upper bound on a client's max_wait_ms, so a long poll cannot hold resources for hours.</summary>
    public const int MaxWaitMsLimit = 60_000;

    private readonly FetchReadAheadBudget _readAheadBudget = new(options.Value.FetchReadAheadBytesMax);

    public override ApiKey Key => ApiKey.Fetch;
    public override bool ResponseMayBeLarge => true;
    public override short MinVersion => 4;
    public override short MaxVersion => Math.Min((short)17, FetchResponse.HighestSupportedVersion);

    protected override async Task<IKafkaResponse?> HandleAsync(FetchRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var version = context.ApiVersion;
        var metadata = admin.Watcher.Current;
        var response = new FetchResponse { SessionId = 0 };
        var maxWaitMs = Math.Clamp(request.MaxWaitMs, 0, MaxWaitMsLimit);
        var started = time.GetTimestamp();
        var routed = new List<LeaderMoveRetry.Candidate<(FetchResponse.PartitionData Data, Brk.PartitionFetch Forward)>>();
        var fanOut = new FetchFanOut(metadata, () => new Brk.FetchRequest
        {
            MaxWaitMs = 0, // the first round; FetchAllAsync sets the long polls' wait
            MinBytes = request.MinBytes,
            MaxBytes = request.MaxBytes,
            IsolationLevel = request.IsolationLevel,
            ReplicaId = -1,
        }, Fail);

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
                var forward = new Brk.PartitionFetch
                {
                    Topic = info.Name,
                    Partition = p.Partition,
                    FetchOffset = p.FetchOffset,
                    PartitionMaxBytes = p.PartitionMaxBytes,
                    CurrentLeaderEpoch = p.CurrentLeaderEpoch,
                };
                fanOut.Route(info, p.Partition, data)?.Partitions.Add(forward);
                var (leader, leaderEpoch) = LeaderMoveRetry.RoutedBy(metadata, info.Name, p.Partition);
                routed.Add(new(info.Name, p.Partition, leader, leaderEpoch, p.CurrentLeaderEpoch, (data, forward)));
            }
        }

        if (fanOut.Batches.Count > 0)
            await FetchAllAsync(fanOut.Batches.ToList(), request.MinBytes, maxWaitMs, context, cancellationToken).ConfigureAwait(false);
        else
            context.ReadAhead?.AbandonAll();
        await RetryMovedAsync(request, routed, maxWaitMs - (long)time.GetElapsedTime(started).TotalMilliseconds, context, cancellationToken).ConfigureAwait(false);

        EnforceMaxBytes(response, request.MaxBytes);
        // Only when the routing still holds: after a leader change the next fetch goes elsewhere.
        if (ReferenceEquals(admin.Watcher.Current, metadata))
            StartReadAhead(fanOut.Batches, routed, request.IsolationLevel == ReadCommitted, context, cancellationToken);
        return response;
    }

    /// <summary>
    /// Starts, for a fetch served by one broker, the fetch the client will send next (see
    /// <see cref="FetchReadAhead"/>) when the answer left data behind on that broker: some
    /// partition's next offset is below its high watermark (last stable offset for
    /// read_committed). A consumer at the end of its partitions gets none, so a caught-up consumer
    /// costs the brokers no extra call. Not started when the gateway-wide budget is spent.
    /// </summary>
    private void StartReadAhead(IReadOnlyCollection<FetchFanOut.Batch> groups,
        List<LeaderMoveRetry.Candidate<(FetchResponse.PartitionData Data, Brk.PartitionFetch Forward)>> routed,
        bool readCommitted, RequestContext context, CancellationToken cancellationToken)
    {
        // Only for a fetch served by one broker: that is where the consumer waits on each round
        // trip in turn (one partition: +15-25 % here). A fetch spread over several brokers is
        // already served by them side by side, and measured on this 2-core machine (6 partitions
        // on 3 brokers, consume from the start) read-ahead then cost 10-20 %: more processes busy
        // at once, the same work, more switching between them.
        if (context.ReadAhead is not { } readAhead || groups.Count != 1 || cancellationToken.IsCancellationRequested) return;
        Dictionary<Brk.PartitionFetch, FetchResponse.PartitionData>? slots = null;
        BrokerCaller? caller = null;
        foreach (var group in groups)
        {
            if (slots is null)
            {
                // By reference: the broker requests hold these very PartitionFetch objects.
                slots = new Dictionary<Brk.PartitionFetch, FetchResponse.PartitionData>(routed.Count, ReferenceEqualityComparer.Instance);
                foreach (var c in routed) slots[c.Slot.Forward] = c.Slot.Data;
            }
            if (NextRequest(group.Request, slots, readCommitted) is not { } next) continue;
            long partitionBytes = 0;
            foreach (var p in next.Partitions) partitionBytes += Math.Max(p.PartitionMaxBytes, 0);
            var reservedBytes = Math.Min(Math.Max(next.MaxBytes, 0), partitionBytes);
            if (!_readAheadBudget.TryReserve(reservedBytes)) continue;
            caller ??= new BrokerCaller(brokers, time, logger, "Fetch");
            var call = Start(caller, group, next, 0, cancellationToken);
            readAhead.Put(group.Broker.GrpcEndpoint, new FetchReadAhead.Entry(next, call.Call, call.Answer, reservedBytes, _readAheadBudget));
            metrics?.ReadAheadStarted();
        }
    }

    /// <summary>
    /// The broker request the client will send next after this answer, or null when there is no
    /// data left to read ahead (or a partition failed, or its records cannot be walked): each
    /// partition from the offset after the whole batches it got (where it was when it got none),
    /// everything else as asked, max_wait 0.
    /// </summary>
    internal static Brk.FetchRequest? NextRequest(Brk.FetchRequest asked, IReadOnlyDictionary<Brk.PartitionFetch, FetchResponse.PartitionData> slots, bool readCommitted)
    {
        var next = asked.Clone();
        next.MaxWaitMs = 0;
        var behind = false;
        for (var i = 0; i < asked.Partitions.Count; i++)
        {
            if (!slots.TryGetValue(asked.Partitions[i], out var data) || data.ErrorCode != 0) return null;
            var offset = asked.Partitions[i].FetchOffset;
            if (data.Records is { Length: > 0 } records)
            {
                if (RecordBatchHeader.NextOffsetAfter(records.Span) is not { } after) return null;
                offset = after;
            }
            next.Partitions[i].FetchOffset = offset;
            behind |= offset < (readCommitted ? data.LastStableOffset : data.HighWatermark);
        }
        return behind ? next : null;
    }

    /// <summary>
    /// The one retry of partitions whose leader moved (<see cref="LeaderMoveRetry"/>): waits for
    /// the new leaders at most what is left of max_wait (capped by LeaderChangeWaitMs), and not at
    /// all when the response already carries data (it must not be held back for them), then
    /// fetches those partitions once, at once (max_wait 0), and overwrites their slots.
    /// </summary>
    private async Task RetryMovedAsync(FetchRequest request, List<LeaderMoveRetry.Candidate<(FetchResponse.PartitionData Data, Brk.PartitionFetch Forward)>> routed,
        long remainingMs, RequestContext context, CancellationToken cancellationToken)
    {
        var candidates = routed.Where(c => LeaderMoveRetry.IsMoved(c.Slot.Data.ErrorCode)).ToList();
        if (candidates.Count == 0 || cancellationToken.IsCancellationRequested) return;
        var hasData = routed.Exists(c => c.Slot.Data.Records is { Length: > 0 });
        var waitMs = hasData ? 0 : Math.Clamp(remainingMs, 0, options.Value.LeaderChangeWaitMs);
        var (metadata, retry) = await LeaderMoveRetry.WaitForNewLeadersAsync(admin, candidates, TimeSpan.FromMilliseconds(waitMs), cancellationToken).ConfigureAwait(false);
        if (retry.Count == 0) return;
        var fanOut = new FetchFanOut(metadata, () => new Brk.FetchRequest
        {
            MaxWaitMs = 0, MinBytes = 0, MaxBytes = request.MaxBytes, IsolationLevel = request.IsolationLevel, ReplicaId = -1,
        }, Fail);
        foreach (var c in retry)
            fanOut.Route(c.Topic, c.Partition, c.Slot.Data)?.Partitions.Add(c.Slot.Forward.Clone());
        logger.LogDebug("Fetch: {Count} partitions retried on their new leaders", retry.Count);
        var caller = new BrokerCaller(brokers, time, logger, "Fetch");
        var calls = fanOut.Batches.Select(b => Start(caller, b, b.Request, 0, cancellationToken)).ToList();
        foreach (var call in calls)
        {
            var answer = await call.Answer.ConfigureAwait(false);
            if (answer is not null) context.DisposeAfterResponse(answer);
            Apply(call.Group, answer);
        }
    }

    /// <summary>Marks a slot failed: no records (a failed long poll drops what the first round got) and, as Kafka answers an errored partition, no aborted-transaction list.</summary>
    private static void Fail(FetchResponse.PartitionData data, ErrorCode error)
    {
        data.ErrorCode = (short)error;
        data.Records = ReadOnlyMemory<byte>.Empty;
        data.AbortedTransactions = null;
    }

    /// <summary>One broker call in flight: its share of the request and the answer (null: failed).</summary>
    private sealed record Pending(FetchFanOut.Batch Group, AsyncUnaryCall<BrokerFetchResponse>? Call, Task<BrokerFetchResponse?> Answer)
    {
        /// <summary>Started by the previous fetch (<see cref="FetchReadAhead"/>): used only when it brought enough data without error.</summary>
        public bool ReadAhead { get; init; }

        /// <summary>
        /// Drops the call: disposing cancels it (RST_STREAM; the broker's long poll ends) without
        /// the cost of a cancelled token (grpc-dotnet then builds an exception with a formatted
        /// stack trace per call), and an answer that still arrives goes back to the pool.
        /// </summary>
        public void Abandon()
        {
            Call?.Dispose();
            BrokerFetchResponse.DisposeWhenAnswered(Answer);
        }
    }

    // Not LeaderFanOut.SendAllAsync: each broker's call is its own task (the long-poll fallback
    // drops and replaces them; the notice path re-asks only some brokers).
    //
    // Round 1 asks every broker for what it has now (max_wait 0): a consumer that is behind, the
    // throughput case, is answered by it alone, with one call per broker and nothing cancelled.
    // Interest in the partitions is registered before that round, so when it is below min_bytes
    // the gateway waits for the brokers' append notices (AppendSignals) and re-asks, again with
    // max_wait 0, only the brokers whose partitions moved; nothing is ever cancelled. Without a
    // connected append watch on every broker involved (just started, reconnecting) a notice
    // could be missing and the consumer would stall, so that case takes the long-poll path.
    private async Task FetchAllAsync(List<FetchFanOut.Batch> groups, int minBytes, int maxWaitMs, RequestContext context, CancellationToken cancellationToken)
    {
        var caller = new BrokerCaller(brokers, time, logger, "Fetch");
        var started = time.GetTimestamp();
        // Only when the fetch may wait: registering costs a lock and a few allocations.
        using var interest = maxWaitMs > 0 && minBytes > 0 ? Register(groups) : null;

        // Per broker: its latest answer (the slots reference it; a later round replaces it and
        // every slot, so the older one can go back to the pool at once), bytes, and whether it
        // is still asked (a failed broker is not).
        var answers = new BrokerFetchResponse?[groups.Count];
        var bytesOf = new long[groups.Count];
        var alive = new bool[groups.Count];
        try
        {
            var round = new Pending[groups.Count];
            for (var i = 0; i < groups.Count; i++)
            {
                round[i] = context.ReadAhead?.Take(groups[i].Broker.GrpcEndpoint, groups[i].Request) is { } ahead
                    ? new Pending(groups[i], ahead.Call, ahead.Answer) { ReadAhead = true }
                    : Start(caller, groups[i], groups[i].Request, 0, cancellationToken);
            }
            context.ReadAhead?.AbandonAll();
            var anyError = false;
            for (var i = 0; i < groups.Count; i++)
            {
                var answer = await round[i].Answer.ConfigureAwait(false);
                // A read-ahead answer is older than this request's interest in append notices, so
                // it stands in for round 1 only when no wait follows: data, at least min_bytes, no
                // error. Otherwise the broker is asked now, as without read-ahead.
                if (round[i].ReadAhead)
                {
                    var sufficient = Sufficient(answer, minBytes, groups[i].Request);
                    metrics?.ReadAheadTaken(sufficient);
                    if (!sufficient)
                    {
                        answer?.Dispose();
                        answer = await Start(caller, groups[i], groups[i].Request, 0, cancellationToken).Answer.ConfigureAwait(false);
                    }
                }
                answers[i] = answer;
                alive[i] = answer is not null;
                (bytesOf[i], var error) = Apply(groups[i], answer);
                anyError |= error;
            }

            while (true)
            {
                var remainingMs = maxWaitMs - (long)time.GetElapsedTime(started).TotalMilliseconds;
                if (bytesOf.Sum() >= minBytes || anyError || !alive.Contains(true) || remainingMs <= 0 || cancellationToken.IsCancellationRequested)
                    return;
                if (interest is null || interest.Lost)
                {
                    var polling = new List<FetchFanOut.Batch>(groups.Count);
                    for (var i = 0; i < groups.Count; i++)
                    {
                        if (!alive[i]) continue;
                        polling.Add(groups[i]);
                        // Now owned by the response: the long polls' answers replace its slots
                        // only when they arrive, so it must live until the response is written.
                        if (answers[i] is { } kept) context.DisposeAfterResponse(kept);
                        answers[i] = null;
                    }
                    await LongPollAsync(caller, polling, remainingMs, context, cancellationToken).ConfigureAwait(false);
                    return;
                }

                await interest.WaitAsync(TimeSpan.FromMilliseconds(remainingMs), time, cancellationToken).ConfigureAwait(false);
                if (interest.Lost) continue; // the fallback above, for what is left of max_wait
                // Re-arms before the round: a notice during it counts for the next wait.
                var moved = interest.TakeMoved();
                var asked = new List<(int Index, Pending Call)>(moved.Count);
                foreach (var i in moved)
                {
                    if (alive[i]) asked.Add((i, Start(caller, groups[i], groups[i].Request, 0, cancellationToken)));
                }
                foreach (var (i, call) in asked)
                {
                    var answer = await call.Answer.ConfigureAwait(false);
                    var (answerBytes, error) = Apply(groups[i], answer);
                    answers[i]?.Dispose();
                    answers[i] = answer;
                    alive[i] = answer is not null;
                    bytesOf[i] = answerBytes;
                    anyError |= error;
                }
            }
        }
        finally
        {
            foreach (var answer in answers)
            {
                if (answer is not null) context.DisposeAfterResponse(answer);
            }
        }
    }

    /// <summary>Interest in every routed partition, tagged with its broker's index; null when some broker's append watch is not connected.</summary>
    private AppendSignals.Interest? Register(List<FetchFanOut.Batch> groups)
    {
        if (signals is null) return null;
        var endpoints = new string[groups.Count];
        var partitions = new List<(string, int, long, int)>();
        for (var i = 0; i < groups.Count; i++)
        {
            endpoints[i] = groups[i].Broker.GrpcEndpoint;
            foreach (var p in groups[i].Request.Partitions) partitions.Add((p.Topic, p.Partition, p.FetchOffset, i));
        }
        return signals.TryRegister(endpoints, groups.Count, partitions);
    }

    // The fallback: the brokers long-poll for the rest of max_wait; as soon as one of them has
    // data the others' long polls are dropped and replaced by immediate fetches, so the client
    // gets the data now, not when the other polls time out.
    private async Task LongPollAsync(BrokerCaller caller, List<FetchFanOut.Batch> polling, long remainingMs, RequestContext context, CancellationToken cancellationToken)
    {
        var pending = new Dictionary<Task<BrokerFetchResponse?>, Pending>(polling.Count);
        try
        {
            foreach (var g in polling)
            {
                // Reused rather than cloned: its earlier calls are over (answered), so nothing
                // serializes it any more.
                g.Request.MaxWaitMs = (int)remainingMs;
                var p = Start(caller, g, g.Request, remainingMs, cancellationToken);
                pending[p.Answer] = p;
            }
            var shortCircuited = false;
            while (pending.Count > 0)
            {
                var done = await Task.WhenAny(pending.Keys).ConfigureAwait(false);
                var group = pending[done].Group;
                pending.Remove(done);
                var answer = await done.ConfigureAwait(false);
                if (answer is not null) context.DisposeAfterResponse(answer);
                var (answerBytes, answerError) = Apply(group, answer);
                if ((answerBytes > 0 || answerError) && !shortCircuited && pending.Count > 0)
                {
                    shortCircuited = true;
                    var replacements = new List<Pending>(pending.Count);
                    foreach (var p in pending.Values)
                    {
                        p.Abandon();
                        replacements.Add(Start(caller, p.Group, Immediate(p.Group.Request), 0, cancellationToken));
                    }
                    pending.Clear();
                    foreach (var p in replacements) pending[p.Answer] = p;
                }
            }
        }
        finally
        {
            // Only when the handler itself failed: whatever is still in flight is dropped.
            foreach (var p in pending.Values) p.Abandon();
        }
    }

    /// <summary>A copy that answers at once with whatever there is (the original may still be serializing for a dropped call).</summary>
    private static Brk.FetchRequest Immediate(Brk.FetchRequest request)
    {
        var immediate = request.Clone();
        immediate.MaxWaitMs = 0;
        immediate.MinBytes = 0;
        return immediate;
    }

    private Pending Start(BrokerCaller caller, FetchFanOut.Batch group, Brk.FetchRequest request, long maxWaitMs, CancellationToken cancellationToken)
    {
        var call = caller.Start(group.Broker, BrokerFetchResponse.Method, request, maxWaitMs + options.Value.BrokerCallMarginMs, cancellationToken);
        return new Pending(group, call, call is null ? Task.FromResult<BrokerFetchResponse?>(null) : AnswerAsync(caller, group.Broker, call));
    }

    /// <summary>The broker's answer, or null when the call failed (its partitions then get NOT_LEADER_OR_FOLLOWER). Never throws.</summary>
    private static async Task<BrokerFetchResponse?> AnswerAsync(BrokerCaller caller, BrokerInfo broker, AsyncUnaryCall<BrokerFetchResponse> call)
    {
        var response = call.ResponseAsync;
        // Not awaited as Task<T>: a failed or cancelled call would throw here, one more exception per call.
        await ((Task)response).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (response.IsCompletedSuccessfully) return response.Result;
        // Cancelled: a long poll this handler dropped, or the client went away; not a fault.
        if (response.Exception?.InnerException is RpcException { StatusCode: not StatusCode.Cancelled } ex) caller.LogFailure(broker, ex);
        return null;
    }

    /// <summary>
    /// Whether a read-ahead answer can be used as it is: answered, and for the partitions
    /// <paramref name="asked"/> (it may hold others the client left out this time) no error and
    /// records of at least max(min_bytes, 1) bytes.
    /// </summary>
    private static bool Sufficient(BrokerFetchResponse? answer, int minBytes, Brk.FetchRequest asked)
    {
        if (answer is null) return false;
        var names = new HashSet<(string, int)>(asked.Partitions.Count);
        foreach (var p in asked.Partitions) names.Add((p.Topic, p.Partition));
        long bytes = 0;
        foreach (var r in answer.Results)
        {
            if (!names.Contains((r.Topic, r.Partition))) continue;
            if (r.ErrorCode != 0) return false;
            bytes += r.Records.Length;
        }
        return bytes >= Math.Max(minBytes, 1);
    }

    /// <summary>
    /// Copies a broker's results into the response (every slot of the broker is overwritten):
    /// the bytes of records it got and whether any partition got an error. The caller owns the
    /// answer's buffer, which the records are slices of.
    /// </summary>
    private static (long Bytes, bool AnyError) Apply(FetchFanOut.Batch group, BrokerFetchResponse? result)
    {
        if (result is null)
        {
            // Any failure, the deadline included, is NOT_LEADER_OR_FOLLOWER for Fetch: the
            // client refreshes metadata and fetches again from the same offset. It counts as an
            // error, so the fetch is answered at once (as Kafka answers a fetch with an errored
            // partition) instead of after max_wait.
            group.Fail(ErrorCode.NotLeaderOrFollower);
            return (0, true);
        }
        long bytes = 0;
        var anyError = false;
        var readCommitted = group.Request.IsolationLevel == ReadCommitted;
        group.Apply(result.Results, r => (r.Topic, r.Partition), (data, r) =>
        {
            data.ErrorCode = (short)r.ErrorCode;
            data.HighWatermark = r.HighWatermark;
            data.LastStableOffset = r.LastStableOffset;
            data.LogStartOffset = r.LogStartOffset;
            data.Records = r.Records;
            data.AbortedTransactions = AbortedTransactions(r, readCommitted);
            bytes += r.Records.Length;
            anyError |= r.ErrorCode != 0;
        });
        return (bytes, anyError);
    }

    /// <summary>Kafka's isolation_level 1.</summary>
    private const sbyte ReadCommitted = 1;

    /// <summary>
    /// A partition's aborted_transactions as Kafka answers them: a list (maybe empty) for a
    /// read_committed fetch answered without error, null otherwise (read_uncommitted, errors:
    /// Kafka's FetchDataInfo carries none then).
    /// </summary>
    internal static List<FetchResponse.AbortedTransaction>? AbortedTransactions(BrokerFetchResult result, bool readCommitted)
    {
        if (!readCommitted || result.ErrorCode != 0) return null;
        var list = new List<FetchResponse.AbortedTransaction>(result.AbortedTransactions?.Count ?? 0);
        foreach (var t in result.AbortedTransactions ?? [])
            list.Add(new FetchResponse.AbortedTransaction { ProducerId = t.ProducerId, FirstOffset = t.FirstOffset });
        return list;
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
