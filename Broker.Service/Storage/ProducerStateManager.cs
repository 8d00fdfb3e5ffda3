using Microsoft.Extensions.Logging;
using StreamPlatform.Broker.Transactions;
using StreamPlatform.Protos.Records;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Storage;

/// <summary>
/// One partition's producer state (Kafka's ProducerStateManager + ProducerAppendInfo): per
/// producer id a <see cref="ProducerStateEntry"/>; the open transactions (their first offsets
/// hold the last stable offset back) and the completed ones whose marker the high watermark has
/// not passed yet. The log validates an append with <see cref="Prepare"/> and applies it with
/// <see cref="Apply"/>, both under its append lock, so concurrent produces cannot both pass.
/// <para>Checks on a leader append (as Kafka returns them): a client's batch with the exact
/// sequence range of one of the producer's last 5 batches in the same epoch is a duplicate
/// (not appended; answered with the original offsets); an epoch below the producer's is
/// INVALID_PRODUCER_EPOCH (client and coordinator writes); a client's batch in a new epoch must
/// start at sequence 0 unless the producer had no epoch yet, and in the same epoch must follow
/// the last sequence (wrapping past Int32.MaxValue), else OUT_OF_ORDER_SEQUENCE_NUMBER; a
/// producer unknown here (new, expired, or whose batches were deleted) may start at any
/// sequence (KIP-360: UNKNOWN_PRODUCER_ID is no longer returned for produce); a non-transactional
/// batch from a producer with an open transaction is INVALID_TXN_STATE; a marker from an older
/// coordinator epoch is TRANSACTION_COORDINATOR_FENCED. Follower appends and recovery apply the
/// same updates without checks. Batches without a producer id never get here.</para>
/// <para>Locking: every member takes <c>_lock</c> (reads by fetches, DescribeProducers and
/// expiration come without the log's lock).</para>
/// </summary>
public sealed class ProducerStateManager
{
    /// <summary>
    /// Producer ids tracked per partition. Kafka has no limit (KIP-936 came for the memory that
    /// costs); an entry is ~400 bytes, so this bounds one partition to ~4 MB while leaving far
    /// more producers than any real partition has writing at once within
    /// producer.id.expiration.ms. At the limit the least recently written producer without an
    /// open transaction is forgotten (its retries are then accepted as a new producer's, as after
    /// expiration); when every tracked producer has one, a new producer is refused with
    /// CONCURRENT_TRANSACTIONS (retriable) until one ends.
    /// </summary>
    public const int ProducersMax = 10_000;

    private readonly object _lock = new();
    private readonly Dictionary<long, ProducerStateEntry> _producers = [];
    // Open transactions by first offset: the smallest holds the last stable offset.
    private readonly SortedSet<(long FirstOffset, long ProducerId)> _ongoing = [];
    // Ended transactions whose marker may still be above the high watermark, marker order.
    private readonly List<CompletedTxn> _unreplicated = [];
    // KIP-890 verifications in flight, with when they started (expired like producers).
    private readonly Dictionary<long, (TransactionVerificationGuard Guard, long StartedMs)> _verifications = [];
    // _ongoing.Count + _unreplicated.Count, written under _lock: lets LastStableOffset answer
    // the common case (no transactions) on every fetch without the lock.
    private volatile int _unstable;
    private readonly string _directory;
    private readonly TopicPartition _partition;
    private readonly ILogger _logger;

    public ProducerStateManager(string directory, TopicPartition partition, ILogger logger)
    {
        _directory = directory;
        _partition = partition;
        _logger = logger;
    }

    public int ProducerCount
    {
        get { lock (_lock) return _producers.Count; }
    }

    /// <summary>Open transactions plus ended ones whose marker the high watermark has not passed (the last time it was looked at).</summary>
    public int UnstableTransactionCount => _unstable;

    /// <summary>A copy of a producer's entry; null when unknown.</summary>
    public ProducerStateEntry? Get(long producerId)
    {
        lock (_lock) return _producers.GetValueOrDefault(producerId)?.Clone();
    }

    /// <summary>Copies of every entry (DescribeProducers, snapshots in tests).</summary>
    public IReadOnlyList<ProducerStateEntry> ActiveProducers()
    {
        lock (_lock) return _producers.Values.Select(e => e.Clone()).ToList();
    }

    public bool HasOngoingTransaction(long producerId)
    {
        lock (_lock) return _producers.TryGetValue(producerId, out var e) && e.HasOngoingTransaction;
    }

    /// <summary>First offset of the oldest open transaction; -1 when none.</summary>
    public long FirstOngoingOffset
    {
        get { lock (_lock) return _ongoing.Count == 0 ? -1 : _ongoing.Min.FirstOffset; }
    }

    /// <summary>
    /// Kafka's lastStableOffset: the high watermark, held back by the first offset of every open
    /// transaction and of every ended one whose marker is not below the high watermark yet.
    /// </summary>
    public long LastStableOffset(long highWatermark)
    {
        if (_unstable == 0) return highWatermark;
        lock (_lock)
        {
            var lso = highWatermark;
            if (_ongoing.Count > 0) lso = Math.Min(lso, _ongoing.Min.FirstOffset);
            _unreplicated.RemoveAll(t => t.LastOffset < highWatermark);
            foreach (var t in _unreplicated) lso = Math.Min(lso, t.FirstOffset);
            CountUnstable();
            return lso;
        }
    }

    /// <summary>
    /// KIP-890: before asking the coordinator, a leader records that it is verifying the
    /// producer's transaction. <see cref="TransactionVerificationGuard.Sentinel"/> when the
    /// producer has a transaction open here already in <paramref name="epoch"/> (Kafka's
    /// hasOngoingTransaction(producerId, epoch): one of an older epoch does not count).
    /// </summary>
    public TransactionVerificationGuard StartVerification(long producerId, short epoch, long nowMs)
    {
        lock (_lock)
        {
            if (_producers.TryGetValue(producerId, out var e) && e.HasOngoingTransaction && e.Epoch == epoch) return TransactionVerificationGuard.Sentinel;
            if (_verifications.TryGetValue(producerId, out var existing)) return existing.Guard;
            // Bounded like the producers: the oldest verification goes (its append then fails
            // INVALID_TXN_STATE and the producer retries).
            if (_verifications.Count >= ProducersMax) _verifications.Remove(_verifications.MinBy(v => v.Value.StartedMs).Key);
            var guard = new TransactionVerificationGuard();
            _verifications[producerId] = (guard, nowMs);
            return guard;
        }
    }

    /// <summary>
    /// Validates one batch of an append into <paramref name="plan"/> (batches in log order;
    /// offsets and timestamp as they will be written). <paramref name="origin"/> null: a
    /// follower's or recovery's batch, applied without checks. <paramref name="verification"/>
    /// null: no KIP-890 verification in use. False stops the append: <paramref name="plan"/>
    /// then holds the error or the duplicate.
    /// </summary>
    public bool Prepare(ProducerAppendPlan plan, in ProducerBatch batch, long firstOffset, long lastOffset, long timestampMs,
        AppendOrigin? origin, TransactionVerificationGuard? verification = null)
    {
        var pid = batch.ProducerId;
        lock (_lock)
        {
            _producers.TryGetValue(pid, out var current);
            if (origin == AppendOrigin.Client && !batch.IsControl && current?.FindDuplicate(batch.Epoch, batch.BaseSequence, batch.LastSequence) is { } duplicate)
            {
                plan.Duplicate = duplicate;
                return false;
            }
            var entry = plan.Pending(pid) ?? current?.Clone();
            if (entry is null)
            {
                if (origin == AppendOrigin.Client && _producers.Count >= ProducersMax && !_producers.Values.Any(e => !e.HasOngoingTransaction))
                    return plan.Fail(ErrorCodes.ConcurrentTransactions,
                        $"{_partition} tracks {ProducersMax} producers, all with a transaction open; retry when one has ended.");
                entry = new ProducerStateEntry(pid);
            }
            // Epoch before verification (KAFKA-19690): a stale producer gets the recoverable
            // INVALID_PRODUCER_EPOCH, not INVALID_TXN_STATE.
            if (origin is not null && !batch.IsControl && batch.Epoch < entry.Epoch)
                return plan.Fail(ErrorCodes.InvalidProducerEpoch,
                    $"Epoch of producer {pid} at offset {firstOffset} in {_partition} is {batch.Epoch}, which is smaller than the last seen epoch {entry.Epoch}.");
            if (origin is not null && !batch.IsControl && batch.IsTransactional && origin != AppendOrigin.TransactionMarker
                && !(entry.HasOngoingTransaction && entry.Epoch == batch.Epoch) && verification is not null
                && (ReferenceEquals(verification, TransactionVerificationGuard.Sentinel) || !ReferenceEquals(_verifications.GetValueOrDefault(pid).Guard, verification)))
                return plan.Fail(ErrorCodes.InvalidTxnState, $"The batch of producer {pid} at offset {firstOffset} in {_partition} was not part of an ongoing transaction (its verification did not hold).");
            if (batch.IsControl)
            {
                if (!PrepareMarker(plan, entry, batch, firstOffset, timestampMs, origin)) return false;
            }
            else if (!PrepareData(plan, current, entry, batch, firstOffset, lastOffset, timestampMs, origin))
            {
                return false;
            }
            plan.Set(entry);
            return true;
        }
    }

    private bool PrepareData(ProducerAppendPlan plan, ProducerStateEntry? current, ProducerStateEntry entry, in ProducerBatch batch,
        long firstOffset, long lastOffset, long timestampMs, AppendOrigin? origin)
    {
        var pid = batch.ProducerId;
        // The epoch was checked in Prepare (before the verification guard).
        if (origin == AppendOrigin.Client)
        {
            if (batch.Epoch != entry.Epoch)
            {
                if (batch.BaseSequence != 0 && entry.Epoch != -1)
                    return plan.Fail(ErrorCodes.OutOfOrderSequenceNumber,
                        $"Invalid sequence number for new epoch of producer {pid} at offset {firstOffset} in {_partition}: {batch.Epoch} (request epoch), {batch.BaseSequence} (seq. number), {entry.Epoch} (current producer epoch).");
            }
            else if (!(current is null || current.Epoch == -1 || ProducerBatch.InSequence(entry.LastSeq, batch.BaseSequence)))
            {
                return plan.Fail(ErrorCodes.OutOfOrderSequenceNumber,
                    $"Out of order sequence number for producer {pid} at offset {firstOffset} in {_partition}: {batch.BaseSequence} (incoming seq. number), {entry.LastSeq} (current end sequence number).");
            }
        }
        entry.AddBatch(batch.Epoch, new ProducerBatchMetadata(batch.BaseSequence, batch.LastSequence, firstOffset, lastOffset, timestampMs));
        if (entry.HasOngoingTransaction && !batch.IsTransactional)
        {
            // Kafka fails this on every origin; a follower keeps what its leader accepted.
            if (origin is not null)
                return plan.Fail(ErrorCodes.InvalidTxnState, $"Expected a transactional write from producer {pid} at offset {firstOffset} in {_partition}: it has a transaction open.");
        }
        else if (!entry.HasOngoingTransaction && batch.IsTransactional)
        {
            entry.CurrentTxnFirstOffset = firstOffset;
        }
        return true;
    }

    private bool PrepareMarker(ProducerAppendPlan plan, ProducerStateEntry entry, in ProducerBatch batch, long offset, long timestampMs, AppendOrigin? origin)
    {
        // An empty control batch: its whole transaction was cleaned away (Kafka ignores it).
        if (batch.Marker is not { } type) return true;
        var pid = batch.ProducerId;
        if (origin is not null && batch.Epoch < entry.Epoch)
            return plan.Fail(ErrorCodes.InvalidProducerEpoch,
                $"Epoch of producer {pid} at offset {offset} in {_partition} is {batch.Epoch}, which is smaller than the last seen epoch {entry.Epoch}.");
        if (origin is not null && entry.CoordinatorEpoch > batch.CoordinatorEpoch)
            return plan.Fail(ErrorCodes.TransactionCoordinatorFenced,
                $"Invalid coordinator epoch for producer {pid} at offset {offset} in {_partition}: {batch.CoordinatorEpoch} (zombie), {entry.CoordinatorEpoch} (current).");
        // Only a transaction with data here is completed: an empty one never held the LSO back.
        if (entry.HasOngoingTransaction) plan.Complete(new CompletedTxn(pid, entry.CurrentTxnFirstOffset, offset, type == ControlRecordType.Abort));
        entry.EndTransaction(batch.Epoch, batch.CoordinatorEpoch, timestampMs);
        return true;
    }

    /// <summary>
    /// Applies a validated plan once its batches are written (before the log end offset moves,
    /// so no reader sees a transactional batch the last stable offset does not cover). Returns
    /// the transactions it aborted, for the aborted-transaction index (null when none).
    /// <paramref name="highWatermark"/>: ended transactions whose marker it passed are dropped
    /// here too, so their list stays bounded even when nobody asks for the last stable offset.
    /// </summary>
    public List<AbortedTxn>? Apply(ProducerAppendPlan plan, long highWatermark = -1)
    {
        if (plan.Updated is null) return null;
        lock (_lock)
        {
            if (_unreplicated.Count > 0) _unreplicated.RemoveAll(t => t.LastOffset < highWatermark);
            foreach (var (pid, entry) in plan.Updated)
            {
                if (_producers.TryGetValue(pid, out var old) && old.HasOngoingTransaction) _ongoing.Remove((old.CurrentTxnFirstOffset, pid));
                if (entry.HasOngoingTransaction) _ongoing.Add((entry.CurrentTxnFirstOffset, pid));
                _producers[pid] = entry;
                _verifications.Remove(pid);
            }
            List<AbortedTxn>? aborted = null;
            if (plan.Completed is { } completed)
            {
                foreach (var txn in completed)
                {
                    _unreplicated.Add(txn);
                    if (!txn.IsAborted) continue;
                    // Kafka's lastStableOffset(completedTxn): where read_committed may read up to
                    // once this marker is stable, for the index's early stop.
                    var lso = txn.LastOffset + 1;
                    foreach (var (first, other) in _ongoing)
                        if (other != txn.ProducerId) { lso = first; break; }
                    (aborted ??= []).Add(new AbortedTxn(txn.ProducerId, txn.FirstOffset, txn.LastOffset, lso));
                }
            }
            if (_producers.Count > ProducersMax) EvictIdle(_producers.Count - ProducersMax);
            CountUnstable();
            return aborted;
        }
    }

    // Under _lock, after every change of _ongoing or _unreplicated.
    private void CountUnstable() => _unstable = _ongoing.Count + _unreplicated.Count;

    // Under _lock.
    private void EvictIdle(int count)
    {
        // One at a time in steady state: a linear scan, not a sort.
        var idle = _producers.Values.Where(e => !e.HasOngoingTransaction);
        var victims = count == 1
            ? idle.MinBy(e => e.LastTimestampMs) is { } oldest ? [oldest.ProducerId] : []
            : idle.OrderBy(e => e.LastTimestampMs).Take(count).Select(e => e.ProducerId).ToList();
        foreach (var pid in victims) _producers.Remove(pid);
        _logger.LogWarning("{Partition}: forgot {Count} idle producers: more than {Max} are tracked", _partition, victims.Count, ProducersMax);
    }

    /// <summary>
    /// producer.id.expiration.ms (Kafka's removeExpiredProducers): producers without an open
    /// transaction whose last write is at least that old are forgotten, and so are verifications
    /// started that long ago. Returns how many producers went.
    /// </summary>
    public int RemoveExpired(long nowMs, long expirationMs)
    {
        lock (_lock)
        {
            var expired = _producers.Values.Where(e => !e.HasOngoingTransaction && nowMs - e.LastTimestampMs >= expirationMs).Select(e => e.ProducerId).ToList();
            foreach (var pid in expired) _producers.Remove(pid);
            foreach (var pid in _verifications.Where(v => nowMs - v.Value.StartedMs >= expirationMs).Select(v => v.Key).ToList()) _verifications.Remove(pid);
            return expired.Count;
        }
    }

    /// <summary>Writes a snapshot of the state at <paramref name="offset"/> (the log end offset) and deletes those below <paramref name="keepFrom"/>.</summary>
    public void TakeSnapshot(long offset, long keepFrom)
    {
        List<ProducerStateEntry> entries;
        lock (_lock) entries = [.. _producers.Values];
        ProducerStateSnapshot.Write(_directory, offset, entries);
        foreach (var old in ProducerStateSnapshot.List(_directory))
            if (old < keepFrom && old != offset) ProducerStateSnapshot.Delete(_directory, old);
    }

    /// <summary>
    /// Forgets everything, deletes snapshots above <paramref name="maxOffset"/> and loads the
    /// latest readable one at or below it (damaged ones are deleted). Returns its offset, or -1
    /// when none was loaded (the caller replays the log from its start).
    /// </summary>
    public long LoadSnapshot(long maxOffset)
    {
        lock (_lock)
        {
            _producers.Clear();
            _ongoing.Clear();
            _unreplicated.Clear();
            _verifications.Clear();
            var offsets = ProducerStateSnapshot.List(_directory);
            for (var i = offsets.Count - 1; i >= 0; i--)
            {
                var offset = offsets[i];
                if (offset > maxOffset)
                {
                    ProducerStateSnapshot.Delete(_directory, offset);
                    continue;
                }
                if (ProducerStateSnapshot.Read(_directory, offset) is not { } entries)
                {
                    _logger.LogWarning("{Partition}: producer-state snapshot {Offset} is damaged; deleting it", _partition, offset);
                    ProducerStateSnapshot.Delete(_directory, offset);
                    continue;
                }
                foreach (var e in entries)
                {
                    _producers[e.ProducerId] = e;
                    if (e.HasOngoingTransaction) _ongoing.Add((e.CurrentTxnFirstOffset, e.ProducerId));
                }
                CountUnstable();
                return offset;
            }
            CountUnstable();
            return -1;
        }
    }

    /// <summary>Drops every snapshot and all state (the log was emptied).</summary>
    public void Clear()
    {
        lock (_lock)
        {
            foreach (var offset in ProducerStateSnapshot.List(_directory)) ProducerStateSnapshot.Delete(_directory, offset);
            _producers.Clear();
            _ongoing.Clear();
            _unreplicated.Clear();
            _verifications.Clear();
            CountUnstable();
        }
    }
}
