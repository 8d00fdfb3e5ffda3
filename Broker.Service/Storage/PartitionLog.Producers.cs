using Microsoft.Extensions.Logging;
using StreamPlatform.Broker.Transactions;
using StreamPlatform.Protos.Records;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Storage;

/// <summary>
/// The log's side of producer state (<see cref="ProducerStateManager"/>): batches with a
/// producer id are validated and applied under the append lock, leader and follower alike;
/// snapshots (<see cref="ProducerStateSnapshot"/>) are written at every segment roll, flush and
/// close; at open and after a truncation the state is the latest snapshot at or below the log
/// end offset plus a replay of the batch headers after it (control batches are read whole for
/// their marker).
/// </summary>
public sealed partial class PartitionLog
{
    private ProducerStateManager _producerState = null!;
    // Guarded by _appendLock.
    private long _lastProducerExpirationCheckMs;

    /// <summary>This partition's producer state (idempotence and transactions).</summary>
    public ProducerStateManager ProducerState => _producerState;

    /// <summary>Kafka's last stable offset: the high watermark held back by open (or not yet committed ended) transactions.</summary>
    public long LastStableOffset => _producerState.LastStableOffset(HighWatermark);

    /// <summary>
    /// The aborted transactions overlapping [<paramref name="fetchOffset"/>, <paramref name="upperBound"/>)
    /// (Kafka's collectAbortedTransactions): every ABORT marker at or after the fetch offset whose
    /// transaction starts below the bound, from the segment holding the fetch offset on, in
    /// marker order. A read_committed consumer drops those producers' batches from first offset
    /// to marker.
    /// </summary>
    public List<AbortedTxn> AbortedTransactions(long fetchOffset, long upperBound)
    {
        var result = new List<AbortedTxn>();
        var segments = _segmentsView;
        for (var i = Math.Max(FloorSegment(segments, fetchOffset), 0); i < segments.Length; i++)
            // Kafka's early stop: an entry whose last stable offset reaches the bound proves that
            // every later marker belongs to a transaction starting at or after the bound.
            if (segments[i].TxnIndex.Collect(fetchOffset, upperBound, result)) break;
        return result;
    }

    /// <summary>KIP-890: starts verifying a producer's transaction here (see <see cref="TransactionVerificationGuard"/>).</summary>
    public TransactionVerificationGuard StartTransactionVerification(long producerId, short producerEpoch)
        => _producerState.StartVerification(producerId, producerEpoch, _time.GetUtcNow().ToUnixTimeMilliseconds());

    /// <summary>
    /// producer.id.expiration.ms, checked at most every producer.id.expiration.check.interval.ms
    /// (the retention pass calls it). Returns how many producers were forgotten.
    /// </summary>
    public int RemoveExpiredProducers()
    {
        var config = Config;
        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        lock (_appendLock)
        {
            if (_closed || nowMs - _lastProducerExpirationCheckMs < config.ProducerIdExpirationCheckIntervalMs) return 0;
            _lastProducerExpirationCheckMs = nowMs;
        }
        return _producerState.RemoveExpired(nowMs, config.ProducerIdExpirationMs);
    }

    /// <summary>Collects, before the append lock, the producer fields of a batch that has a producer id.</summary>
    private static void CollectProducerBatch(ReadOnlySpan<byte> batch, int index, ref List<(int Index, ProducerBatch Batch)>? batches)
    {
        if (ProducerBatch.TryRead(batch, out var b)) (batches ??= []).Add((index, b));
    }

    /// <summary>
    /// Under the append lock: validates the producer batches of an append whose first batch gets
    /// offset <paramref name="firstOffset"/>. Null when there are none; otherwise a plan that may
    /// have failed or found a duplicate (see <see cref="ProducerOutcome"/>).
    /// </summary>
    private ProducerAppendPlan? PrepareProducers(List<(int Index, ProducerBatch Batch)>? batches, List<BatchSummary> summaries, long firstOffset,
        long nowMs, bool logAppendTime, AppendOrigin? origin, TransactionVerificationGuard? verification)
    {
        if (batches is null) return null;
        var plan = new ProducerAppendPlan();
        var next = firstOffset;
        var b = 0;
        for (var i = 0; i < summaries.Count && b < batches.Count; i++)
        {
            var s = summaries[i];
            // A follower's batches carry their offsets; a leader's get consecutive ones.
            var first = origin is null ? s.BaseOffset : next;
            var last = origin is null ? s.LastOffset : next + s.LastOffset;
            next = last + 1;
            if (batches[b].Index != i) continue;
            var timestamp = logAppendTime ? nowMs : batches[b].Batch.MaxTimestamp;
            if (!_producerState.Prepare(plan, batches[b].Batch, first, last, timestamp, origin, verification)) return plan;
            b++;
        }
        return plan;
    }

    /// <summary>The answer when producer state stops an append: its error, or a duplicate's original offsets (Kafka answers its timestamp as the log append time).</summary>
    private LogAppendResult? ProducerOutcome(ProducerAppendPlan? plan)
    {
        if (plan is null) return null;
        if (plan.Failed) return LogAppendResult.Error(plan.ErrorCode, plan.ErrorMessage ?? "", _logStartOffset);
        if (plan.Duplicate is { } d) return new LogAppendResult(ErrorCodes.None, null, d.FirstOffset, d.LastOffset, d.TimestampMs, _logStartOffset, 0, 0);
        return null;
    }

    /// <summary>Under the append lock, after the batches are written and before the log end offset moves.</summary>
    private void ApplyProducers(ProducerAppendPlan? plan, LogSegment segment)
    {
        if (plan is null) return;
        if (_producerState.Apply(plan, HighWatermark) is { } aborted) segment.AddAbortedTransactions(aborted);
    }

    /// <summary>Under the append lock (or at open): snapshot at the log end offset; older snapshots below the first segment go.</summary>
    private void TakeProducerSnapshot()
    {
        if (_producerState is null) return;
        _producerState.TakeSnapshot(_logEndOffset, _segments[0].BaseOffset);
    }

    /// <summary>
    /// At open and after a truncation: the latest snapshot at or below the log end offset, then
    /// the batches after it (from the first segment when there is none). A cleanly closed log
    /// without any snapshot (written before producer state existed) is replayed from its last two
    /// segments only, as Kafka does on upgrade, instead of reading every batch header of the log.
    /// </summary>
    private void LoadProducerState(bool cleanShutdown = false)
    {
        _producerState ??= new ProducerStateManager(Directory, TopicPartition, _logger);
        // Markers cut by recovery or truncation leave the aborted-transaction index too.
        foreach (var segment in _segments) segment.TxnIndex.TruncateFrom(segment.NextOffset);
        var loaded = _producerState.LoadSnapshot(_logEndOffset);
        var from = Math.Max(loaded, _segments[0].BaseOffset);
        if (loaded < 0 && cleanShutdown) from = _segments[Math.Max(0, _segments.Count - 2)].BaseOffset;
        var replayed = ReplayProducerState(from);
        if (replayed > 0 || loaded >= 0)
            _logger.LogInformation("Loaded the producer state of {Partition}: snapshot {Snapshot}, {Batches} batches replayed, {Producers} producers",
                TopicPartition, loaded, replayed, _producerState.ProducerCount);
    }

    private int ReplayProducerState(long from)
    {
        var replayed = 0;
        Span<byte> header = stackalloc byte[RecordBatchHeader.Size];
        byte[]? control = null;
        foreach (var segment in _segments)
        {
            if (segment.NextOffset <= from) continue;
            var size = segment.Size;
            var position = segment.FindBatchPosition(from, size);
            if (position < 0) continue;
            while (segment.TryReadHeader(position, size, header))
            {
                var h = new RecordBatchHeader(header);
                if (h.TotalSize < RecordBatchHeader.Size) break;
                if (h.ProducerId >= 0 && h.LastOffset >= from)
                {
                    ReadOnlySpan<byte> batch = header;
                    if (h.IsControl && h.TotalSize <= LogSegment.RecoveryBatchBytesMax)
                    {
                        if (control is null || control.Length < h.TotalSize) control = new byte[Math.Max(h.TotalSize, 256)];
                        segment.ReadExactly(position, control.AsSpan(0, h.TotalSize));
                        batch = control.AsSpan(0, h.TotalSize);
                    }
                    if (ProducerBatch.TryRead(batch, out var b))
                    {
                        var plan = new ProducerAppendPlan();
                        _producerState.Prepare(plan, b, h.BaseOffset, h.LastOffset, h.MaxTimestamp, origin: null);
                        if (_producerState.Apply(plan, _highWatermark) is { } aborted) segment.AddAbortedTransactions(aborted);
                        replayed++;
                    }
                }
                position += h.TotalSize;
            }
        }
        return replayed;
    }
}
