using Grpc.Core;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Grpc.Broker;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Replication;

/// <summary>
/// Fetches every partition this broker follows from one leader broker (Kafka's
/// ReplicaFetcherThread) over ONE <c>ReplicationService.Replicate</c> stream: writes a request for
/// all its partitions, applies the answer (<see cref="Partition.ApplyFromLeader"/>), and writes
/// the next request at once, which is what tells the leader how far this follower got (its high
/// watermark, and so acks=all latency, rides on it). One request outstanding at a time. A failed
/// stream is opened again after replica.fetch.backoff.ms; a partition answered with an error
/// waits that long before it is fetched again (metadata usually moves it meanwhile).
/// </summary>
public sealed class ReplicaFetcher : IAsyncDisposable
{
    private readonly ReplicaManager _replicas;
    private readonly CallInvoker _invoker;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly object _lock = new();
    private readonly Dictionary<TopicPartition, Entry> _partitions = [];
    private readonly CancellationTokenSource _stop = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _loop;

    private sealed record Entry(Partition Partition, int LeaderEpoch)
    {
        public long RetryAtMs { get; set; }
    }

    public ReplicaFetcher(int leaderId, string endpoint, CallInvoker invoker, ReplicaManager replicas, TimeProvider time, ILogger logger)
    {
        LeaderId = leaderId;
        Endpoint = endpoint;
        _invoker = invoker;
        _replicas = replicas;
        _time = time;
        _logger = logger;
    }

    public int LeaderId { get; }
    public string Endpoint { get; }
    public int Count { get { lock (_lock) return _partitions.Count; } }
    /// <summary>Answers applied (tests, metrics).</summary>
    public long ResponsesApplied => Interlocked.Read(ref _responsesApplied);
    private long _responsesApplied;

    public void Start() => _loop ??= Task.Run(() => RunAsync(_stop.Token));

    /// <summary>Fetches <paramref name="partition"/> in <paramref name="leaderEpoch"/> from now on (replacing an older entry).</summary>
    public void Add(Partition partition, int leaderEpoch)
    {
        lock (_lock)
        {
            if (_partitions.TryGetValue(partition.TopicPartition, out var e) && ReferenceEquals(e.Partition, partition) && e.LeaderEpoch == leaderEpoch) return;
            _partitions[partition.TopicPartition] = new Entry(partition, leaderEpoch);
        }
        Signal();
    }

    public bool Remove(TopicPartition tp)
    {
        bool removed;
        lock (_lock) removed = _partitions.Remove(tp);
        if (removed) Signal();
        return removed;
    }

    public IReadOnlyList<(Partition Partition, int LeaderEpoch)> Snapshot()
    {
        lock (_lock) return _partitions.Values.Select(e => (e.Partition, e.LeaderEpoch)).ToArray();
    }

    private void Signal() => Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    private async Task RunAsync(CancellationToken stop)
    {
        var failures = 0;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                // Answers parsed into pooled buffers (PooledReplicaFetchResponse), returned once applied.
                using var call = _invoker.AsyncDuplexStreamingCall(PooledReplicaFetchResponse.ReplicateMethod, null, new CallOptions(cancellationToken: stop));
                while (!stop.IsCancellationRequested)
                {
                    var changed = Volatile.Read(ref _changed).Task;
                    var (request, sent, retryAtMs) = BuildRequest();
                    if (request is null)
                    {
                        // Nothing to fetch now: wait for a partition to arrive or to be due again.
                        using var cts = CancellationTokenSource.CreateLinkedTokenSource(stop);
                        var delay = retryAtMs == long.MaxValue ? Timeout.InfiniteTimeSpan
                            : TimeSpan.FromMilliseconds(Math.Max(1, retryAtMs - _time.GetUtcNow().ToUnixTimeMilliseconds()));
                        await Task.WhenAny(changed, Task.Delay(delay, _time, cts.Token)).ConfigureAwait(false);
                        await cts.CancelAsync().ConfigureAwait(false);
                        continue;
                    }
                    await call.RequestStream.WriteAsync(request, stop).ConfigureAwait(false);
                    if (!await call.ResponseStream.MoveNext(stop).ConfigureAwait(false))
                        throw new RpcException(new Status(StatusCode.Unavailable, "The leader ended the replication stream."));
                    using (var answer = call.ResponseStream.Current) Apply(answer.Response, sent);
                    if (failures > 0)
                    {
                        _logger.LogInformation("Replication stream from broker {Leader} works again after {Failures} failures", LeaderId, failures);
                        failures = 0;
                    }
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled && stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (!stop.IsCancellationRequested)
            {
                // Any failure (transport, a malformed answer, a log error) restarts the stream
                // after the backoff: a fetcher that died silently would stop replication.
                var backoffMs = _replicas.Config.ReplicaFetchBackoffMs;
                // A dead leader fails every attempt until metadata moves its partitions: warn once per outage.
                if (failures++ == 0)
                    _logger.LogWarning("Replication stream from broker {Leader} at {Endpoint} failed ({Message}); trying again every {BackoffMs} ms",
                        LeaderId, Endpoint, ex.Message, backoffMs);
                else
                    _logger.LogDebug("Replication stream from broker {Leader} failed again ({Message})", LeaderId, ex.Message);
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(backoffMs, 1)), _time, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>The next request: every partition that is not waiting out an error, at its log end and latest epoch.</summary>
    private (ReplicaFetchRequest? Request, Dictionary<TopicPartition, Entry> Sent, long RetryAtMs) BuildRequest()
    {
        var config = _replicas.Config;
        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var sent = new Dictionary<TopicPartition, Entry>();
        var retryAtMs = long.MaxValue;
        ReplicaFetchRequest? request = null;
        lock (_lock)
        {
            foreach (var (tp, entry) in _partitions)
            {
                if (entry.RetryAtMs > nowMs)
                {
                    retryAtMs = Math.Min(retryAtMs, entry.RetryAtMs);
                    continue;
                }
                var (fetchOffset, lastFetchedEpoch) = entry.Partition.FetchPosition();
                request ??= new ReplicaFetchRequest
                {
                    ReplicaId = _replicas.BrokerId,
                    BrokerEpoch = _replicas.BrokerEpoch,
                    MaxWaitMs = config.ReplicaFetchWaitMaxMs,
                    MinBytes = 1,
                    MaxBytes = config.ReplicaFetchResponseMaxBytes,
                };
                request.Partitions.Add(new ReplicaFetchPartition
                {
                    Topic = tp.Topic,
                    Partition = tp.Partition,
                    FetchOffset = fetchOffset,
                    LastFetchedEpoch = lastFetchedEpoch,
                    CurrentLeaderEpoch = entry.LeaderEpoch,
                    PartitionMaxBytes = config.ReplicaFetchMaxBytes,
                });
                sent[tp] = entry;
            }
        }
        return (request, sent, retryAtMs);
    }

    private void Apply(ReplicaFetchResponse response, Dictionary<TopicPartition, Entry> sent)
    {
        Interlocked.Increment(ref _responsesApplied);
        var backoffMs = _replicas.Config.ReplicaFetchBackoffMs;
        foreach (var result in response.Results)
        {
            var tp = new TopicPartition(result.Topic, result.Partition);
            if (!sent.TryGetValue(tp, out var entry)) continue;
            var data = new LeaderFetchData((short)result.ErrorCode, result.HighWatermark, result.LogStartOffset, result.LogEndOffset,
                result.DivergingEpoch, result.DivergingEndOffset, result.Records.Memory);
            short error;
            try
            {
                error = entry.Partition.ApplyFromLeader(entry.LeaderEpoch, data);
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
            {
                _logger.LogWarning(ex, "{Partition}: applying the leader's answer failed", tp);
                error = ErrorCodes.KafkaStorageError;
            }
            if (error == ErrorCodes.None) continue;
            _logger.LogDebug("{Partition}: fetch from broker {Leader} answered {Code}; again in {BackoffMs} ms", tp, LeaderId, error, backoffMs);
            lock (_lock)
                if (_partitions.TryGetValue(tp, out var current) && ReferenceEquals(current, entry))
                    entry.RetryAtMs = _time.GetUtcNow().ToUnixTimeMilliseconds() + backoffMs;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            try
            {
                await _loop.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Stopped.
            }
        }
        _stop.Dispose();
    }
}
