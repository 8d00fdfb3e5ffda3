using System.Globalization;
using Microsoft.Extensions.Logging;
using StreamPlatform.Protos.Records;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Storage;

/// <summary>
/// What replication needs from a log: leader epochs (<see cref="LeaderEpochCache"/>), a high
/// watermark that followers' progress moves (<see cref="ReplicatedHighWatermark"/>), appends
/// of batches fetched from the leader (<see cref="AppendAsFollower"/>) and truncation
/// (PartitionLog.Truncation.cs).
/// <para>File <c>high-watermark</c>: the high watermark as one decimal number, written
/// atomically by <see cref="Flush"/>, <see cref="Close"/> and <see cref="FlushIfDue"/> (at most
/// every <see cref="HighWatermarkCheckpointIntervalMs"/>) when it changed, and at once when a
/// truncation lowers it. At open the high watermark is min(checkpoint, log end offset); with no
/// file, the log end offset (logs from before replication were all committed).</para>
/// </summary>
public sealed partial class PartitionLog
{
    public const string HighWatermarkFile = "high-watermark";
    /// <summary>
    /// Present once a follower stored batches with offset gaps (a compacted leader's): recovery
    /// then accepts gaps in every segment, the active one included, as it does in cleaned ones.
    /// </summary>
    public const string OffsetGapsFile = "offset-gaps";
    /// <summary>Kafka's replica.high.watermark.checkpoint.interval.ms default: how often FlushIfDue rewrites a changed checkpoint.</summary>
    public const long HighWatermarkCheckpointIntervalMs = 5000;

    private readonly LeaderEpochCache _epochCache;
    private volatile bool _replicatedHighWatermark;
    // Guarded by _appendLock.
    private long _checkpointedHighWatermark = -1;
    private long _highWatermarkCheckpointMs;
    private bool _offsetGapsMarked;
    // Incremented when a truncation starts and when it ends (odd: in progress): a read whose
    // copy overlaps one fails (LogReadResult).
    private long _truncations;

    internal long Truncations => Interlocked.Read(ref _truncations);

    /// <summary>The leader-epoch entries, oldest first (a snapshot).</summary>
    public IReadOnlyList<EpochEntry> EpochEntries => _epochCache.Entries;

    /// <summary>The latest leader epoch with batches in the log (or assigned by an append); -1 when none.</summary>
    public int LatestEpoch => _epochCache.LatestEpoch;

    /// <summary>OffsetForLeaderEpoch on this log (see <see cref="LeaderEpochCache.EndOffsetFor"/>).</summary>
    public (int Epoch, long EndOffset) EndOffsetForEpoch(int epoch)
    {
        // Under the lock: the cache and the log end offset from the same moment.
        lock (_appendLock) return _epochCache.EndOffsetFor(epoch, _logEndOffset);
    }

    /// <summary>
    /// A replica becoming leader in <paramref name="epoch"/> (Kafka's makeLeader): later appends
    /// are stamped with it, and the epoch cache records at once that it starts at the log end
    /// offset, so OffsetForLeaderEpoch answers followers right before the first append. An
    /// epoch not above the latest one only sets <see cref="LeaderEpoch"/>.
    /// </summary>
    public void AssignLeaderEpoch(int epoch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        lock (_appendLock)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            LeaderEpoch = epoch;
            if (epoch > _epochCache.LatestEpoch) _epochCache.Assign(epoch, _logEndOffset);
        }
    }

    /// <summary>
    /// False (default): one replica, the high watermark is the log end offset. True: appends
    /// leave it alone and only <see cref="UpdateHighWatermark"/> moves it (the leader, from the
    /// ISR's log end offsets; a follower, from the leader's). Set it before the log serves reads:
    /// switching on exposes the stored value (min(checkpoint, LEO) after open), which may be
    /// below what the unreplicated log showed. Switching off moves it to the log end offset.
    /// </summary>
    public bool ReplicatedHighWatermark
    {
        get => _replicatedHighWatermark;
        set
        {
            TaskCompletionSource? signal = null;
            lock (_appendLock)
            {
                if (_replicatedHighWatermark == value) return;
                var before = HighWatermark;
                _replicatedHighWatermark = value;
                if (!value) Interlocked.Exchange(ref _highWatermark, _logEndOffset);
                if (!_closed && HighWatermark > before) signal = TakeHighWatermarkSignal();
            }
            if (signal is null) return;
            signal.TrySetResult();
            HighWatermarkAdvanced?.Invoke(this);
        }
    }

    /// <summary>
    /// Moves the high watermark up to <paramref name="offset"/>, clamped to [log start, log end];
    /// never down (only a truncation lowers it). When it advanced (in replicated mode): completes
    /// <see cref="AppendedSignal"/> and calls <see cref="HighWatermarkAdvanced"/>, outside the
    /// lock, and returns true.
    /// </summary>
    public bool UpdateHighWatermark(long offset)
    {
        TaskCompletionSource signal;
        lock (_appendLock)
        {
            if (_closed) return false;
            var target = Math.Clamp(offset, _logStartOffset, _logEndOffset);
            if (target <= Interlocked.Read(ref _highWatermark)) return false;
            Interlocked.Exchange(ref _highWatermark, target);
            // Unreplicated, the visible high watermark is the log end offset already.
            if (!_replicatedHighWatermark) return false;
            signal = TakeHighWatermarkSignal();
        }
        signal.TrySetResult();
        HighWatermarkAdvanced?.Invoke(this);
        return true;
    }

    /// <summary>
    /// A follower adopts the leader's high watermark: min(leader's, own log end offset), only
    /// upwards (Kafka's follower takes the leader's value as is; keeping it monotonic is safe as
    /// everything below it was committed). Same as <see cref="UpdateHighWatermark"/>.
    /// </summary>
    public bool SetFollowerHighWatermark(long leaderHighWatermark) => UpdateHighWatermark(Math.Min(leaderHighWatermark, LogEndOffset));

    /// <summary>
    /// Completes at the next append (leader or follower), truncation or close: followers' long
    /// polls on the leader wait on it. Take it before reading, to never miss one.
    /// </summary>
    public Task LogEndOffsetSignal => Volatile.Read(ref _logEndMoved).Task;

    // Under _appendLock: the signal to complete (outside the lock) and a fresh one in its place.
    private TaskCompletionSource TakeLogEndSignal()
    {
        var signal = _logEndMoved;
        Volatile.Write(ref _logEndMoved, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        return signal;
    }

    private TaskCompletionSource TakeHighWatermarkSignal()
    {
        var signal = _appended;
        Volatile.Write(ref _appended, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        return signal;
    }

    /// <summary>
    /// Stores batches fetched from the leader exactly as they are (offsets and leader epochs
    /// already assigned). Checks: whole v2 batches with valid CRCs; the first base offset not
    /// below the log end offset, else OFFSET_OUT_OF_RANGE (the follower must truncate first);
    /// offsets strictly increasing, else CORRUPT_MESSAGE. Gaps are accepted as Kafka does: a
    /// compacted leader's batches have them (see <see cref="OffsetGapsFile"/>). Nothing is
    /// written on an error. max.message.bytes does not apply (the leader accepted the batches);
    /// the recovery limit does. New leader epochs go into the cache; the high watermark is left
    /// alone (see <see cref="SetFollowerHighWatermark"/>).
    /// </summary>
    public LogAppendResult AppendAsFollower(ReadOnlyMemory<byte> batches)
    {
        var span = batches.Span;
        var summaries = new List<BatchSummary>();
        List<(int Index, ProducerBatch Batch)>? producerBatches = null;
        var epochs = new List<EpochEntry>();
        long messages = 0;
        var gaps = false;
        var enumerator = new RecordBatchEnumerator(span, LogSegment.RecoveryBatchBytesMax, verifyCrc: true);
        while (enumerator.MoveNext())
        {
            var h = new RecordBatchHeader(enumerator.Current);
            if (summaries.Count > 0)
            {
                var previousLast = summaries[^1].LastOffset;
                if (h.BaseOffset <= previousLast)
                    return LogAppendResult.Error(ErrorCodes.CorruptMessage, $"Batch {summaries.Count} starts at {h.BaseOffset}, not after the previous batch's last offset {previousLast}.", LogStartOffset);
                gaps |= h.BaseOffset != previousLast + 1;
            }
            var latest = epochs.Count > 0 ? epochs[^1].Epoch : -1;
            if (h.PartitionLeaderEpoch > latest) epochs.Add(new EpochEntry(h.PartitionLeaderEpoch, h.BaseOffset));
            CollectProducerBatch(enumerator.Current, summaries.Count, ref producerBatches);
            summaries.Add(new BatchSummary(enumerator.BatchStart, h.TotalSize, h.BaseOffset, h.LastOffset, h.MaxTimestamp));
            messages += h.RecordsCount;
        }
        if (enumerator.Error != BatchValidationError.None)
            return LogAppendResult.Error(ErrorCodes.CorruptMessage, $"Batch {summaries.Count} at byte {enumerator.BatchStart} is invalid: {enumerator.Error}.", LogStartOffset);
        if (summaries.Count == 0)
            return LogAppendResult.Error(ErrorCodes.CorruptMessage, "No record batches to append.", LogStartOffset);

        TaskCompletionSource logEndSignal;
        LogAppendResult result;
        lock (_appendLock)
        {
            if (_closed) return LogAppendResult.Error(ErrorCodes.KafkaStorageError, "The log is closed.");
            if (_readOnlyReason is { } why) return LogAppendResult.Error(ErrorCodes.KafkaStorageError, why, _logStartOffset);
            var first = summaries[0].BaseOffset;
            var last = summaries[^1].LastOffset;
            if (first < _logEndOffset)
                return LogAppendResult.Error(ErrorCodes.OffsetOutOfRange, $"First offset {first} is below the log end offset {_logEndOffset}.", _logStartOffset);
            gaps |= first != _logEndOffset;
            var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
            try
            {
                var segment = MaybeRoll(Config, nowMs, span.Length, last + 1 - _logEndOffset, first);
                if (last - segment.BaseOffset > int.MaxValue)
                    return LogAppendResult.Error(ErrorCodes.CorruptMessage, $"Offsets {first}..{last} do not fit one segment (relative offsets are int32).", _logStartOffset);
                if (gaps && !_offsetGapsMarked)
                {
                    AtomicWrite(Path.Combine(Directory, OffsetGapsFile), "");
                    _offsetGapsMarked = true;
                }
                // Before the batches, as on the leader: the checkpoint never misses a stored epoch.
                var newEpochs = epochs.Where(e => e.Epoch > _epochCache.LatestEpoch).ToList();
                if (newEpochs.Count > 0) _epochCache.Assign(newEpochs);
                var sizeBefore = segment.Size;
                try
                {
                    segment.Append([batches], summaries.ToArray(), BeforeWrite);
                }
                catch (IOException)
                {
                    TryCut(segment, sizeBefore);
                    throw;
                }
                // The leader's producer state, without checks (Kafka's REPLICATION origin).
                ApplyProducers(PrepareProducers(producerBatches, summaries, first, nowMs, logAppendTime: false, origin: null, verification: null), segment);
                Interlocked.Exchange(ref _logEndOffset, last + 1);
            }
            catch (IOException ex)
            {
                return LogAppendResult.Error(ErrorCodes.KafkaStorageError, GoReadOnly("appending as follower", ex), _logStartOffset);
            }
            try
            {
                MaybeFlush(messages, nowMs);
            }
            catch (IOException ex)
            {
                GoReadOnly("flushing", ex);
            }
            logEndSignal = TakeLogEndSignal();
            result = new LogAppendResult(ErrorCodes.None, null, first, last, -1, _logStartOffset, summaries.Count, span.Length);
        }
        logEndSignal.TrySetResult();
        return result;
    }

    private static void TryCut(LogSegment segment, long size)
    {
        try
        {
            segment.TruncateTo(size);
        }
        catch (IOException)
        {
            // Recovery at the next open cuts the torn tail.
        }
    }

    /// <summary>
    /// At open: the leader-epoch cache (rebuilt from the batch headers when its file is missing
    /// or damaged; then cut to the log as recovered, as Kafka does) and the high watermark.
    /// </summary>
    private void LoadReplicationState(long? highWatermarkCheckpoint)
    {
        if (!_epochCache.LoadedFromFile)
        {
            var entries = ScanEpochs();
            if (entries.Count > 0) _epochCache.Assign(entries);
            else _epochCache.WriteCheckpoint();
            _logger.LogInformation("Rebuilt the leader-epoch checkpoint of {Partition} from its batches: {Count} epochs", TopicPartition, entries.Count);
        }
        // Recovery may have cut batches the checkpoint knew; retention may have moved the start.
        _epochCache.TruncateFromEnd(_logEndOffset);
        _epochCache.TruncateFromStart(_logStartOffset);
        _highWatermark = Math.Clamp(highWatermarkCheckpoint ?? _logEndOffset, _logStartOffset, _logEndOffset);
        _checkpointedHighWatermark = highWatermarkCheckpoint ?? -1;
        _offsetGapsMarked = File.Exists(Path.Combine(Directory, OffsetGapsFile));
    }

    /// <summary>The first batch of each new leader epoch, from the headers only (one 61-byte read per batch).</summary>
    private List<EpochEntry> ScanEpochs()
    {
        var entries = new List<EpochEntry>();
        Span<byte> header = stackalloc byte[RecordBatchHeader.Size];
        foreach (var segment in _segments)
        {
            var size = segment.Size;
            long position = 0;
            while (segment.TryReadHeader(position, size, header))
            {
                var h = new RecordBatchHeader(header);
                if (h.PartitionLeaderEpoch > (entries.Count > 0 ? entries[^1].Epoch : -1))
                    entries.Add(new EpochEntry(h.PartitionLeaderEpoch, h.BaseOffset));
                position += h.TotalSize;
            }
        }
        return entries;
    }

    /// <summary>The checkpointed high watermark; null without a file; 0 when it is damaged (clamped up to the log start: nothing more is assumed committed).</summary>
    private static long? ReadHighWatermarkCheckpoint(string directory)
    {
        var path = Path.Combine(directory, HighWatermarkFile);
        if (!File.Exists(path)) return null;
        return long.TryParse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : 0;
    }

    // Under _appendLock.
    private void MaybeCheckpointHighWatermark(long nowMs)
    {
        if (nowMs - _highWatermarkCheckpointMs < HighWatermarkCheckpointIntervalMs) return;
        CheckpointHighWatermark(nowMs);
    }

    // Under _appendLock. Writes the high watermark when it changed since the last write.
    private void CheckpointHighWatermark(long nowMs)
    {
        var hw = HighWatermark;
        if (hw == _checkpointedHighWatermark) return;
        AtomicWrite(Path.Combine(Directory, HighWatermarkFile), hw.ToString(CultureInfo.InvariantCulture));
        _checkpointedHighWatermark = hw;
        _highWatermarkCheckpointMs = nowMs;
    }
}
