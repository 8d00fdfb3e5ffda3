using System.Collections.Concurrent;
using StreamPlatform.Broker.Groups;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Groups;
using StreamPlatform.Protos.Kafka;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Transactions;

/// <summary>
/// The transactional ids this broker coordinates (Kafka's TransactionStateManager): one
/// <see cref="Shard"/> per partition of __transaction_state it leads, loaded when leadership
/// arrives (the coordinator epoch is the partition's leader epoch) and dropped when it leaves
/// (<see cref="CoordinatorPartitionFollower"/> drives both). Every change of an id is written to
/// its partition (acks=-1) and applied only once committed (<see cref="AppendAsync"/>), so a new
/// coordinator rebuilds exactly what producers were told.
/// <para>Locks: a shard's <see cref="Shard.Gate"/> is taken before an id's
/// <see cref="TransactionMetadata.Gate"/>, never after; an append holds the shard's gate so a
/// shard unloaded (and perhaps loaded again at a newer epoch) never receives a write of the old
/// one.</para>
/// </summary>
public sealed class TransactionStateManager : ICoordinatorPartitions
{
    /// <summary>Most transactional ids one broker coordinates (expiry removes idle ones); more are COORDINATOR_NOT_AVAILABLE.</summary>
    public const int TransactionalIdsMax = 1_000_000;
    /// <summary>Most tombstones written in one batch by expiry.</summary>
    public const int ExpiryBatchMax = 1000;

    private readonly TimeProvider _time;
    private readonly Func<TransactionConfig> _config;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<int, Shard> _shards = new();
    private int _idCount;

    /// <summary>The ids of one __transaction_state partition this broker leads.</summary>
    public sealed class Shard(int partition, int coordinatorEpoch, OffsetsPartitionStore store)
    {
        public int Partition { get; } = partition;
        public int CoordinatorEpoch { get; } = coordinatorEpoch;
        public OffsetsPartitionStore Store { get; } = store;
        public Lock Gate { get; } = new();
        public volatile bool Loaded;
        /// <summary>Set under <see cref="Gate"/> when the partition is given up: no write goes to it after.</summary>
        public bool Unloaded;
        public ConcurrentDictionary<string, TransactionMetadata> Ids { get; } = new(StringComparer.Ordinal);
        public CancellationTokenSource Cancellation { get; } = new();
    }

    public TransactionStateManager(TimeProvider time, Func<TransactionConfig> config, ILogger logger)
    {
        _time = time;
        _config = config;
        _logger = logger;
    }

    /// <summary>
    /// Told, after a load, of every transaction found in PrepareCommit/PrepareAbort: its markers
    /// must be (re)sent and the transaction completed (the coordinator epoch, the metadata, and
    /// the complete state to write once the markers are in).
    /// </summary>
    public Action<int, TransactionMetadata, TxnTransit>? OnPendingCompletion { get; set; }

    /// <summary>Runs a partition's load off the caller's thread (tests run it inline).</summary>
    internal Func<Action, Task> LoadRunner { get; init; } = action => Task.Run(action);

    public long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();
    public TransactionConfig Config => _config();
    public IReadOnlyCollection<int> Partitions => _shards.Keys.ToArray();
    public int? LeaderEpochOf(int partition) => _shards.TryGetValue(partition, out var s) ? s.CoordinatorEpoch : null;
    public bool IsLoaded(int partition) => _shards.TryGetValue(partition, out var s) && s.Loaded;
    public int PartitionFor(string transactionalId) => TransactionStateTopic.PartitionFor(transactionalId, Config.StatePartitions);
    /// <summary>Every loaded shard (a snapshot).</summary>
    public IEnumerable<Shard> LoadedShards => _shards.Values.Where(s => s.Loaded);
    public bool AnyLoading => _shards.Values.Any(s => !s.Loaded);

    /// <summary>
    /// The id's shard and metadata. NOT_COORDINATOR when this broker does not lead the id's
    /// partition, COORDINATOR_LOAD_IN_PROGRESS while it loads; metadata null for an unknown id.
    /// </summary>
    public short TryGet(string transactionalId, out Shard? shard, out TransactionMetadata? metadata)
    {
        metadata = null;
        if (!_shards.TryGetValue(PartitionFor(transactionalId), out shard)) return ErrorCodes.NotCoordinator;
        if (!shard.Loaded) return ErrorCodes.CoordinatorLoadInProgress;
        shard.Ids.TryGetValue(transactionalId, out metadata);
        return ErrorCodes.None;
    }

    /// <summary>The id's metadata, created by <paramref name="create"/> when the id is new.</summary>
    public short GetOrAdd(string transactionalId, Func<TransactionMetadata> create, out Shard? shard, out TransactionMetadata? metadata)
    {
        var error = TryGet(transactionalId, out shard, out metadata);
        if (error != ErrorCodes.None || metadata is not null) return error;
        if (Volatile.Read(ref _idCount) >= TransactionalIdsMax)
        {
            _logger.LogWarning("Transactional id {Id} refused: this broker coordinates {Max} ids already", transactionalId, TransactionalIdsMax);
            return ErrorCodes.CoordinatorNotAvailable;
        }
        var created = create();
        metadata = shard!.Ids.GetOrAdd(transactionalId, created);
        if (ReferenceEquals(metadata, created)) Interlocked.Increment(ref _idCount);
        return ErrorCodes.None;
    }

    // ---------------------------------------------------------------- appends

    /// <summary>
    /// Writes <paramref name="transit"/> for the id and, once committed, applies it
    /// (<see cref="TransactionMetadata.CompleteTransitionTo"/>; Dead removes the id). Any error
    /// leaves the state as it was and clears the pending state, unless
    /// <paramref name="retryOnError"/> keeps it for a retry of the same write. Errors are the
    /// coordinator's (Kafka's mapping): COORDINATOR_NOT_AVAILABLE (not enough replicas, timed
    /// out), NOT_COORDINATOR (leadership moved, or the shard changed epoch meanwhile).
    /// </summary>
    public async Task<short> AppendAsync(string transactionalId, int coordinatorEpoch, TxnTransit transit, Func<short, bool>? retryOnError = null)
    {
        var key = TransactionLogRecords.EncodeKey(transactionalId);
        var value = transit.State == TransactionState.Dead ? null : TransactionLogRecords.EncodeValue(transit);
        var error = await WriteAsync(transactionalId, coordinatorEpoch, [(key, value)]).ConfigureAwait(false);
        var current = TryGet(transactionalId, out var shard, out var metadata);
        if (current != ErrorCodes.None || metadata is null) return error != ErrorCodes.None ? error : current != ErrorCodes.None ? current : ErrorCodes.NotCoordinator;
        lock (metadata.Gate)
        {
            if (shard!.CoordinatorEpoch != coordinatorEpoch) return error != ErrorCodes.None ? error : ErrorCodes.NotCoordinator;
            if (error != ErrorCodes.None)
            {
                if (retryOnError?.Invoke(error) != true) metadata.PendingState = null;
                return error;
            }
            if (transit.State == TransactionState.Dead)
            {
                if (shard.Ids.TryRemove(new KeyValuePair<string, TransactionMetadata>(transactionalId, metadata))) Interlocked.Decrement(ref _idCount);
            }
            else
            {
                metadata.CompleteTransitionTo(transit);
            }
        }
        return ErrorCodes.None;
    }

    /// <summary>Appends records to the id's partition if its shard is still at <paramref name="coordinatorEpoch"/>, and waits for the commit.</summary>
    private async Task<short> WriteAsync(string transactionalId, int coordinatorEpoch, IReadOnlyList<(byte[] Key, byte[]? Value)> records)
    {
        if (!_shards.TryGetValue(PartitionFor(transactionalId), out var shard) || shard.CoordinatorEpoch != coordinatorEpoch) return ErrorCodes.NotCoordinator;
        var timeout = TimeSpan.FromMilliseconds(Config.WriteTimeoutMs);
        AppendOutcome outcome;
        lock (shard.Gate)
        {
            if (shard.Unloaded) return ErrorCodes.NotCoordinator;
            outcome = shard.Store.Append(records, NowMs, timeout, _time);
        }
        if (outcome.ErrorCode != ErrorCodes.None) return MapAppendError(outcome.ErrorCode);
        if (outcome.Commit is { } commit) return MapAppendError(await commit.ConfigureAwait(false));
        // A bare log (no replica layer): committed once its high watermark passes the batch.
        var waited = await shard.Store.WaitCommittedAsync(outcome.EndOffset, timeout, _time, shard.Cancellation.Token).ConfigureAwait(false);
        return waited switch
        {
            CommitWaitResult.Committed => ErrorCodes.None,
            CommitWaitResult.TimedOut => ErrorCodes.CoordinatorNotAvailable,
            _ => ErrorCodes.NotCoordinator,
        };
    }

    /// <summary>Kafka's TransactionStateManager.appendTransactionToLog error mapping.</summary>
    public static short MapAppendError(short error) => error switch
    {
        ErrorCodes.None => ErrorCodes.None,
        ErrorCodes.UnknownTopicOrPartition or ErrorCodes.NotEnoughReplicas or ErrorCodes.NotEnoughReplicasAfterAppend or ErrorCodes.RequestTimedOut
            => ErrorCodes.CoordinatorNotAvailable,
        ErrorCodes.NotLeaderOrFollower or ErrorCodes.KafkaStorageError => ErrorCodes.NotCoordinator,
        ErrorCodes.MessageTooLarge or ErrorCodes.RecordListTooLarge => ErrorCodes.UnknownServerError,
        _ => error,
    };

    // ---------------------------------------------------------------- loading

    /// <summary>Takes over a partition: until its log is read, its ids answer COORDINATOR_LOAD_IN_PROGRESS.</summary>
    public void Load(int partition, int leaderEpoch, OffsetsPartitionStore store)
    {
        if (_shards.TryGetValue(partition, out var existing))
        {
            if (existing.CoordinatorEpoch == leaderEpoch && ReferenceEquals(existing.Store.Log, store.Log)) return;
            Unload(partition);
        }
        var shard = new Shard(partition, leaderEpoch, store);
        if (!_shards.TryAdd(partition, shard)) return;
        _ = LoadRunner(() => LoadShard(shard));
    }

    private void LoadShard(Shard shard)
    {
        var started = NowMs;
        var loaded = new Dictionary<string, TransactionMetadata>(StringComparer.Ordinal);
        try
        {
            // Kafka's loader reads to the log end: this broker leads, so all of it becomes
            // committed once followers catch up (they truncate to it, never the reverse).
            shard.Store.ReadAll((key, value) => Replay(shard, loaded, key, value), shard.Cancellation.Token);
            List<(TransactionMetadata, TxnTransit)> pending = [];
            lock (shard.Gate)
            {
                if (shard.Unloaded) return;
                foreach (var (id, metadata) in loaded)
                {
                    if (Volatile.Read(ref _idCount) >= TransactionalIdsMax) break;
                    shard.Ids[id] = metadata;
                    Interlocked.Increment(ref _idCount);
                    // A commit or abort decided before the failover: its markers are sent again and it completes here.
                    if (metadata.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort)
                        lock (metadata.Gate) pending.Add((metadata, metadata.PrepareComplete(NowMs)));
                }
                shard.Loaded = true;
            }
            _logger.LogInformation("Loaded __transaction_state-{Partition} (coordinator epoch {Epoch}): {Ids} transactional ids, {Pending} to complete, in {Ms} ms",
                shard.Partition, shard.CoordinatorEpoch, loaded.Count, pending.Count, NowMs - started);
            foreach (var (metadata, complete) in pending) OnPendingCompletion?.Invoke(shard.CoordinatorEpoch, metadata, complete);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex)
        {
            // Stays "loading" no more: dropped, so the next metadata change (or restart) tries
            // again. Never half-loaded state served as complete.
            _logger.LogError(ex, "Loading __transaction_state-{Partition} failed", shard.Partition);
            _shards.TryRemove(new KeyValuePair<int, Shard>(shard.Partition, shard));
        }
    }

    private void Replay(Shard shard, Dictionary<string, TransactionMetadata> loaded, ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value)
    {
        try
        {
            if (TransactionLogRecords.DecodeKey(key) is not { } id) return; // a key version this broker cannot read: skipped, as Kafka
            if (value is not { } v) loaded.Remove(id);
            else loaded[id] = TransactionLogRecords.DecodeValue(id, v);
        }
        catch (KafkaProtocolException ex)
        {
            // The id keeps its earlier state: a record this version cannot read is never taken as a tombstone.
            _logger.LogError("Unreadable record in __transaction_state-{Partition} skipped: {Message}", shard.Partition, ex.Message);
        }
    }

    /// <summary>Gives up a partition (leadership moved): its ids are forgotten here; writes and markers in flight stop.</summary>
    public void Unload(int partition)
    {
        if (!_shards.TryRemove(partition, out var shard)) return;
        shard.Cancellation.Cancel();
        lock (shard.Gate)
        {
            shard.Unloaded = true;
            Interlocked.Add(ref _idCount, -shard.Ids.Count);
            shard.Ids.Clear();
        }
        _logger.LogInformation("Unloaded __transaction_state-{Partition} (coordinator epoch {Epoch})", partition, shard.CoordinatorEpoch);
    }

    // ---------------------------------------------------------------- timeouts and expiry

    /// <summary>Ongoing transactions open longer than their timeout, with no change in flight (Kafka's timedOutTransactions).</summary>
    public List<(string TransactionalId, long ProducerId, short ProducerEpoch)> TimedOutTransactions()
    {
        var now = NowMs;
        List<(string, long, short)> result = [];
        foreach (var shard in LoadedShards)
            foreach (var metadata in shard.Ids.Values)
                lock (metadata.Gate)
                    if (!metadata.PendingTransitionInProgress && metadata.State == TransactionState.Ongoing
                        && metadata.StartTimestampMs + metadata.TimeoutMs < now)
                        result.Add((metadata.TransactionalId, metadata.ProducerId, metadata.ProducerEpoch));
        return result;
    }

    /// <summary>
    /// Removes ids idle longer than transactional.id.expiration.ms with no transaction open
    /// (Kafka's removeExpiredTransactionalIds): Dead is prepared, tombstones are written in
    /// batches, and each id goes once its tombstone is committed.
    /// </summary>
    public async Task RemoveExpiredAsync()
    {
        var now = NowMs;
        var expiration = Config.IdExpirationMs;
        foreach (var shard in LoadedShards.ToList())
        {
            List<(TransactionMetadata Metadata, TxnTransit Dead)> expired = [];
            foreach (var metadata in shard.Ids.Values)
            {
                if (expired.Count >= ExpiryBatchMax) break;
                lock (metadata.Gate)
                    if (metadata.PendingState is null && TransactionStates.ExpirationAllowed(metadata.State) && metadata.LastUpdateTimestampMs <= now - expiration)
                        expired.Add((metadata, metadata.PrepareDead()));
            }
            if (expired.Count == 0) continue;
            var error = await WriteAsync(expired[0].Metadata.TransactionalId, shard.CoordinatorEpoch,
                [.. expired.Select(e => (TransactionLogRecords.EncodeKey(e.Metadata.TransactionalId), (byte[]?)null))]).ConfigureAwait(false);
            foreach (var (metadata, dead) in expired)
            {
                lock (metadata.Gate)
                {
                    if (error == ErrorCodes.None && metadata.PendingState == TransactionState.Dead && metadata.ProducerEpoch == dead.ProducerEpoch
                        && shard.Ids.TryRemove(new KeyValuePair<string, TransactionMetadata>(metadata.TransactionalId, metadata)))
                        Interlocked.Decrement(ref _idCount);
                    else
                        metadata.PendingState = null;
                }
            }
            _logger.LogInformation("Expired {Count} transactional ids of __transaction_state-{Partition} (error {Error})", expired.Count, shard.Partition, error);
        }
    }
}
