using System.Collections.Concurrent;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using StreamPlatform.Broker.Services;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Broker.Transactions;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Controller;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Replication;

/// <summary>
/// The partitions this broker hosts (Kafka's ReplicaManager): one <see cref="Partition"/> per
/// partition it is a replica of, made leader or follower by each metadata snapshot (applied right
/// after the <see cref="LogManager"/>, which owns the logs); the follower fetchers
/// (<see cref="ReplicaFetcherManager"/>); and, as a background service, the periodic ISR check
/// (every replica.lag.time.max.ms / 2) whose proposals go to the controller as AlterPartition
/// requests, batched, at most one in flight per partition.
/// </summary>
public sealed class ReplicaManager : BackgroundService
{
    /// <summary>Longest an AlterPartition call may take before it counts as failed (sent again after <see cref="AlterPartitionRetryMs"/>).</summary>
    public const int AlterPartitionTimeoutMs = 5000;
    /// <summary>Pause before an AlterPartition that failed with an unknown outcome is sent again (Kafka's AlterPartitionManager retries with a backoff too).</summary>
    public const int AlterPartitionRetryMs = 1000;

    private readonly ConcurrentDictionary<TopicPartition, Partition> _partitions = new();
    private readonly LogManager _logs;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    private readonly BrokerMetrics? _metrics;
    private readonly ControllerService.ControllerServiceClient? _controller;
    private readonly object _applyLock = new();
    private volatile ClusterMetadata _metadata = ClusterMetadata.Empty;
    private volatile ReplicationConfig _config = ReplicationConfig.Default;
    // Completed when a partition proposed an ISR change: the loop sends it at once.
    private TaskCompletionSource _proposed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _isrShrinks;
    private long _isrExpands;
    private bool _unimplementedLogged;

    /// <param name="controller">Where AlterPartition goes; null: ISR changes are proposed but never sent (tests).</param>
    /// <param name="fetcherChannels">How a follower reaches a leader's endpoint (default: a gRPC channel per endpoint).</param>
    public ReplicaManager(LogManager logs, IOptions<BrokerOptions> options, TimeProvider time, ILoggerFactory? loggers = null, BrokerMetrics? metrics = null,
        ControllerService.ControllerServiceClient? controller = null, Func<string, CallInvoker>? fetcherChannels = null)
    {
        _logs = logs;
        BrokerId = options.Value.BrokerId;
        _time = time;
        _loggers = loggers ?? NullLoggerFactory.Instance;
        _logger = _loggers.CreateLogger<ReplicaManager>();
        _metrics = metrics;
        _controller = controller;
        Fetchers = new ReplicaFetcherManager(this, time, _loggers, fetcherChannels);
        metrics?.ObserveReplication(this);
    }

    public int BrokerId { get; }
    public ReplicaFetcherManager Fetchers { get; }
    public ReplicationConfig Config => _config;
    public ClusterMetadata Metadata => _metadata;
    /// <summary>This broker's epoch as the newest metadata records it (-1 before it registered).</summary>
    public long BrokerEpoch => _metadata.BrokersById.TryGetValue(BrokerId, out var b) ? b.BrokerEpoch : -1;
    public ICollection<Partition> Partitions => _partitions.Values;
    public long IsrShrinks => Interlocked.Read(ref _isrShrinks);
    public long IsrExpands => Interlocked.Read(ref _isrExpands);

    public bool TryGetPartition(TopicPartition tp, out Partition partition) => _partitions.TryGetValue(tp, out partition!);

    /// <summary>
    /// Applies a metadata snapshot after <see cref="LogManager.ApplyMetadata"/>: every partition
    /// with this broker among its replicas gets a <see cref="Partition"/> made leader or follower
    /// in the snapshot's epochs (stale ones are refused by the partition); partitions no longer
    /// hosted here stop. Followers are handed to the fetchers of their leaders.
    /// </summary>
    public void ApplyMetadata(ClusterMetadata metadata)
    {
        if (metadata.Epoch <= 0) return;
        lock (_applyLock)
        {
            if (metadata.Epoch < _metadata.Epoch) return;
            _metadata = metadata;
            var config = _config = ReplicationConfig.From(metadata.BrokerConfigsFor(BrokerId));
            var hosted = new HashSet<TopicPartition>();
            foreach (var topic in metadata.Snapshot.Topics)
            foreach (var info in topic.Partitions)
            {
                if (!info.Replicas.Contains(BrokerId)) continue;
                var tp = new TopicPartition(topic.Name, info.Partition);
                if (!_logs.TryGetLog(tp, out var log)) continue; // LogManager could not open it (logged there)
                hosted.Add(tp);
                if (_partitions.TryGetValue(tp, out var partition) && !ReferenceEquals(partition.Log, log))
                {
                    // The topic was recreated (a new log): the old partition object goes with its log.
                    Fetchers.Remove(tp);
                    partition.Stop();
                    _partitions.TryRemove(tp, out _);
                    partition = null;
                }
                if (partition is null)
                {
                    partition = new Partition(tp, BrokerId, log, _time, _loggers.CreateLogger<Partition>()) { IsrChangeProposed = OnIsrChangeProposed };
                    _partitions[tp] = partition;
                }
                partition.MinInSyncReplicas = config.MinInSyncReplicas(topic.Configs);
                partition.ReplicaLagTimeMaxMs = config.ReplicaLagTimeMaxMs;
                var state = PartitionState.From(info);
                try
                {
                    if (info.Leader == BrokerId)
                    {
                        if (partition.MakeLeader(state) != TransitionResult.Stale) Fetchers.Remove(tp);
                    }
                    else if (partition.MakeFollower(state) != TransitionResult.Stale)
                    {
                        // Fetch from the leader when it is alive; with none (or fenced) wait for the next leader.
                        Fetchers.Follow(partition, metadata.LeaderOf(info));
                    }
                }
                catch (Exception ex) when (ex is IOException or ObjectDisposedException)
                {
                    // The epoch checkpoint could not be written, or the log closed meanwhile: this
                    // partition keeps its old role (requests get its errors); the others go on.
                    _logger.LogError(ex, "Could not apply the new state of {Partition}", tp);
                }
            }
            foreach (var (tp, partition) in _partitions)
            {
                if (hosted.Contains(tp)) continue;
                Fetchers.Remove(tp);
                partition.Stop();
                _partitions.TryRemove(tp, out _);
            }
        }
    }

    /// <summary>
    /// The partition this broker leads, for produce, fetch, ListOffsets and DeleteRecords, or the
    /// Kafka error: UNKNOWN_TOPIC_OR_PARTITION (not in metadata), NOT_LEADER_OR_FOLLOWER (not
    /// leader here), FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH (the caller's epoch, -1 = any, is
    /// older / newer than the partition's).
    /// </summary>
    public (Partition? Partition, short ErrorCode) LeaderPartition(string topic, int partition, int currentLeaderEpoch)
    {
        if (!_partitions.TryGetValue(new TopicPartition(topic, partition), out var p))
            return (null, _metadata.TryGetPartition(topic, partition, out _, out _) ? ErrorCodes.NotLeaderOrFollower : ErrorCodes.UnknownTopicOrPartition);
        var error = p.CheckLeader(currentLeaderEpoch);
        return error == ErrorCodes.None ? (p, error) : (null, error);
    }

    /// <summary>
    /// Appends records as leader and waits for their commit: the entry point for writers inside
    /// the broker (the group coordinator's __consumer_offsets writes). acks=-1 completes once the
    /// high watermark passed the records, with the commit's error code; a timeout answers
    /// REQUEST_TIMED_OUT (the records may still commit later, as with Kafka).
    /// </summary>
    /// <param name="origin">The producer-state checks (markers: <see cref="AppendOrigin.TransactionMarker"/>; transactional offset commits: <see cref="AppendOrigin.Coordinator"/>).</param>
    public async Task<(LogAppendResult Append, short ErrorCode)> AppendRecordsAsync(TopicPartition tp, ReadOnlyMemory<byte> records, int requiredAcks, int timeoutMs,
        CancellationToken cancellationToken = default, AppendOrigin origin = AppendOrigin.Client)
    {
        var (partition, error) = LeaderPartition(tp.Topic, tp.Partition, -1);
        if (partition is null) return (LogAppendResult.Error(error, $"Broker {BrokerId} does not lead {tp}."), error);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(Math.Max(timeoutMs, 0)), _time);
        using var linked = cancellationToken.Register(static t => ((CancellationTokenSource)t!).Cancel(), timeout);
        var appended = partition.AppendAsLeader(records, requiredAcks, timeout.Token, crcVerified: false, origin);
        if (appended.Commit is null) return (appended.Append, appended.Append.ErrorCode);
        return (appended.Append, await appended.Commit.ConfigureAwait(false));
    }

    private void OnIsrChangeProposed(Partition partition) => Volatile.Read(ref _proposed).TrySetResult();

    /// <summary>
    /// The periodic ISR check on every partition this broker leads (shrink the lagging, expand
    /// the caught up, see <see cref="Partition.MaybeChangeIsr"/>).
    /// </summary>
    public void CheckIsr()
    {
        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var partition in _partitions.Values)
            if (partition.Role == ReplicaRole.Leader) partition.MaybeChangeIsr(nowMs);
    }

    /// <summary>
    /// Sends every unsent ISR proposal in one AlterPartition request and adopts the answers. A
    /// failed call (controller unreachable, Unimplemented, request-level error) leaves the
    /// proposals pending, to be sent again: returns true then.
    /// </summary>
    public async Task<bool> SendIsrChangesAsync(CancellationToken cancellationToken)
    {
        if (_controller is null) return false;
        var proposals = new List<(Partition Partition, IsrProposal Proposal, Guid TopicId)>();
        foreach (var partition in _partitions.Values)
        {
            if (partition.Role != ReplicaRole.Leader) continue;
            if (partition.TakeUnsentProposal() is { } proposal) proposals.Add((partition, proposal, partition.Log.TopicId));
        }
        if (proposals.Count == 0) return false;
        var request = new AlterPartitionRequest { BrokerId = BrokerId, BrokerEpoch = BrokerEpoch };
        foreach (var group in proposals.GroupBy(p => p.TopicId))
        {
            var topic = new AlterPartitionTopic { TopicId = TopicIds.ToByteString(group.Key) };
            foreach (var (partition, proposal, _) in group)
                topic.Partitions.Add(new AlterPartitionItem
                {
                    Partition = partition.TopicPartition.Partition,
                    LeaderEpoch = proposal.LeaderEpoch,
                    PartitionEpoch = proposal.PartitionEpoch,
                    NewIsr = { proposal.NewIsr },
                });
            request.Topics.Add(topic);
        }
        AlterPartitionResponse response;
        try
        {
            response = await _controller.AlterPartitionAsync(request, deadline: DateTime.UtcNow.AddMilliseconds(AlterPartitionTimeoutMs),
                cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Outcome unknown (or not sent): every proposal stays pending and goes again.
            foreach (var (partition, proposal, _) in proposals) partition.ResendLater(proposal);
            if (ex is OperationCanceledException && cancellationToken.IsCancellationRequested) throw;
            var status = ex is RpcException rpc ? rpc.StatusCode : StatusCode.Unknown;
            if (status != StatusCode.Unimplemented || !_unimplementedLogged)
                _logger.LogWarning("AlterPartition failed ({Status}: {Message}); {Count} ISR changes are sent again in {RetryMs} ms", status, ex.Message, proposals.Count, AlterPartitionRetryMs);
            _unimplementedLogged |= status == StatusCode.Unimplemented;
            return true;
        }
        if (response.ErrorCode != ErrorCodes.None)
        {
            _logger.LogWarning("AlterPartition refused with error {Code}; {Count} ISR changes are sent again at the next check", response.ErrorCode, proposals.Count);
            foreach (var (partition, proposal, _) in proposals) partition.ResendLater(proposal);
            return true;
        }
        var retry = false;
        var answers = new Dictionary<(Guid, int), AlterPartitionItemResult>();
        foreach (var topic in response.Topics)
        foreach (var item in topic.Partitions)
            answers[(topic.TopicId.Length == 16 ? TopicIds.ToGuid(topic.TopicId) : Guid.Empty, item.Partition)] = item;
        foreach (var (partition, proposal, topicId) in proposals)
        {
            if (!answers.TryGetValue((topicId, partition.TopicPartition.Partition), out var answer))
            {
                partition.ResendLater(proposal);
                retry = true;
                continue;
            }
            var before = partition.Isr.Count;
            var state = new PartitionState(answer.LeaderId, answer.LeaderEpoch, answer.PartitionEpoch, partition.Replicas, [.. answer.Isr]);
            partition.CompleteIsrChange(proposal, (short)answer.ErrorCode, answer.ErrorCode == ErrorCodes.None ? state : null);
            if (answer.ErrorCode != ErrorCodes.None) continue;
            if (answer.Isr.Count < before) Interlocked.Increment(ref _isrShrinks);
            else if (answer.Isr.Count > before) Interlocked.Increment(ref _isrExpands);
        }
        return retry;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var nextCheck = _time.GetUtcNow();
        DateTimeOffset? retryAt = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            var interval = TimeSpan.FromMilliseconds(Math.Max(_config.ReplicaLagTimeMaxMs / 2, 1));
            var proposed = Volatile.Read(ref _proposed).Task;
            var wait = (retryAt is { } r && r < nextCheck ? r : nextCheck) - _time.GetUtcNow();
            if (wait > TimeSpan.Zero && !proposed.IsCompleted)
            {
                using var cts = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                await Task.WhenAny(Task.Delay(wait, _time, cts.Token), proposed).ConfigureAwait(false);
                await cts.CancelAsync().ConfigureAwait(false);
            }
            if (stoppingToken.IsCancellationRequested) return;
            if (proposed.IsCompleted) Interlocked.Exchange(ref _proposed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            try
            {
                if (_time.GetUtcNow() >= nextCheck)
                {
                    CheckIsr();
                    nextCheck = _time.GetUtcNow() + interval;
                }
                retryAt = await SendIsrChangesAsync(stoppingToken).ConfigureAwait(false) ? _time.GetUtcNow().AddMilliseconds(AlterPartitionRetryMs) : null;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                // Never end the loop (a background service's exception would stop the broker):
                // the next check tries again.
                _logger.LogError(ex, "ISR check failed; trying again at the next one");
                retryAt = _time.GetUtcNow().AddMilliseconds(AlterPartitionRetryMs);
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        await Fetchers.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>The replication figures of /health and the metrics.</summary>
    public ReplicationSummary Summarize()
    {
        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var led = _partitions.Values.Where(p => p.Role == ReplicaRole.Leader).ToArray();
        return new ReplicationSummary(
            LeaderCount: led.Length,
            FollowerCount: _partitions.Values.Count(p => p.Role == ReplicaRole.Follower),
            UnderReplicated: led.Count(p => p.Isr.Count < p.Replicas.Count),
            UnderMinIsr: led.Count(p => p.Isr.Count < p.MinInSyncReplicas),
            IsrShrinks: IsrShrinks,
            IsrExpands: IsrExpands,
            Partitions: led.Select(p => PartitionReplicationStatus.Of(p, nowMs)).ToArray());
    }
}
