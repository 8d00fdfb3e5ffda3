using System.Globalization;
using Microsoft.Extensions.Logging;
using StreamPlatform.Broker.Transactions;
using StreamPlatform.Protos.Records;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Storage;

/// <summary>Outcome of an append. Offsets are -1 when nothing was appended.</summary>
public readonly record struct LogAppendResult(short ErrorCode, string? ErrorMessage, long FirstOffset, long LastOffset, long LogAppendTimeMs, long LogStartOffset, int BatchCount, long Bytes)
{
    public static LogAppendResult Error(short code, string message, long logStartOffset = -1)
        => new(code, message, -1, -1, -1, logStartOffset, 0, 0);
}

/// <summary>What retention needs to know about a segment. NextOffset = last offset + 1.</summary>
public readonly record struct SegmentInfo(long BaseOffset, long NextOffset, long SizeBytes, long MaxTimestamp, long CreatedMs);

/// <summary>An answer to a ListOffsets lookup; (-1, -1) when no offset matches.</summary>
public readonly record struct OffsetAndTimestamp(long Offset, long Timestamp)
{
    public static readonly OffsetAndTimestamp None = new(-1, -1);
}

/// <summary>
/// One partition's log on disk, in the style of Kafka's: a directory <c>topic-partition</c> of
/// <see cref="LogSegment"/>s. Appends are serialized by a lock (one writer per partition);
/// reads run concurrently, bounded by sizes and offsets published after each write.
/// <para>Files besides segments: <c>partition.metadata</c> (topic id, to tell a recreated topic
/// from the old one), <c>recovery-point</c> (offset below which everything is fsynced),
/// <c>clean.shutdown</c> (present only while closed cleanly; removed at open), and for
/// replication <c>leader-epoch-checkpoint</c> (<see cref="LeaderEpochCache"/>) and
/// <c>high-watermark</c> (see PartitionLog.Replication.cs).</para>
/// </summary>
public sealed partial class PartitionLog : IDisposable
{
    public const string PartitionMetadataFile = "partition.metadata";
    public const string RecoveryPointFile = "recovery-point";
    public const string CleanShutdownFile = "clean.shutdown";
    /// <summary>Offsets below the value in this file are deleted (retention, DeleteRecords); fsynced before segments go.</summary>
    public const string LogStartOffsetFile = "log-start-offset";
    /// <summary>Suffix of segment files removed from the log, deleted after file.delete.delay.ms (or at the next open).</summary>
    public const string DeletedSuffix = ".deleted";
    /// <summary>Suffix of a segment the cleaner is still writing; removed at open.</summary>
    public const string CleanedSuffix = ".cleaned";
    /// <summary>
    /// Start of the suffix of a finished cleaned segment, <c>.swap-END</c>: it replaces every
    /// segment from its base offset up to END (exclusive); completed at open.
    /// </summary>
    public const string SwapSuffix = ".swap";

    private readonly object _appendLock = new();
    // Retention, DeleteRecords and the cleaner change which segments exist: one at a time per log.
    // Taken before _appendLock, never inside it.
    private readonly object _maintenanceLock = new();
    // Segments removed from the log whose files (renamed .deleted) go at DueMs. Guarded by _appendLock.
    private readonly List<(LogSegment Segment, long DueMs)> _pendingDeletes = [];
    // Set once a write or fsync failed (disk full, I/O error): appends are refused, reads go on.
    private volatile string? _readOnlyReason;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly List<LogSegment> _segments;
    private volatile LogSegment[] _segmentsView;
    private LogConfig _config;
    private long _logEndOffset;
    private long _highWatermark;
    private long _logStartOffset;
    private long _unflushedMessages;
    private long _firstUnflushedMs = -1;
    private bool _closed;
    private TaskCompletionSource _appended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _logEndMoved = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private PartitionLog(string directory, TopicPartition tp, Guid topicId, LogConfig config, TimeProvider time, ILogger logger, List<LogSegment> segments, long logStartOffset, long firstDirtyOffset)
    {
        Directory = directory;
        TopicPartition = tp;
        TopicId = topicId;
        _config = config;
        _time = time;
        _logger = logger;
        _segments = segments;
        _segmentsView = [.. segments];
        _logEndOffset = segments[^1].NextOffset;
        // The checkpoint may be ahead of the first segment (DeleteRecords inside it, or a crash
        // before the segments below it were removed), never past the end of what recovery kept.
        _logStartOffset = Math.Min(Math.Max(segments[0].BaseOffset, logStartOffset), _logEndOffset);
        _firstDirtyOffset = Math.Min(firstDirtyOffset, _logEndOffset);
        _highWatermark = _logEndOffset;
        _epochCache = LeaderEpochCache.Open(directory, logger);
    }

    public string Directory { get; }
    public TopicPartition TopicPartition { get; }
    /// <summary>From partition.metadata; Guid.Empty when unknown (a directory from before ids).</summary>
    public Guid TopicId { get; private set; }
    public LogConfig Config { get => Volatile.Read(ref _config); set => Volatile.Write(ref _config, value); }
    /// <summary>Written into each appended batch's partitionLeaderEpoch.</summary>
    public int LeaderEpoch { get; set; }
    /// <summary>Metadata epoch <see cref="Config"/> and <see cref="LeaderEpoch"/> were taken from (-1: none yet).</summary>
    internal long AppliedMetadataEpoch { get; set; } = -1;
    public long LogStartOffset => Interlocked.Read(ref _logStartOffset);
    public long LogEndOffset => Interlocked.Read(ref _logEndOffset);
    /// <summary>
    /// Offsets below it are committed and visible to consumers. The log end offset unless
    /// <see cref="ReplicatedHighWatermark"/> (one replica: everything written is committed);
    /// in replicated mode only <see cref="UpdateHighWatermark"/> moves it up.
    /// </summary>
    public long HighWatermark => _replicatedHighWatermark ? Interlocked.Read(ref _highWatermark) : LogEndOffset;
    public long SizeBytes => _segmentsView.Sum(s => s.Size);
    public int SegmentCount => _segmentsView.Length;
    /// <summary>Base offsets of the segments, oldest first (for retention and tests).</summary>
    public IReadOnlyList<long> SegmentBaseOffsets => _segmentsView.Select(s => s.BaseOffset).ToArray();
    /// <summary>A snapshot of the segments, oldest first; the last one is the active segment.</summary>
    public IReadOnlyList<SegmentInfo> Segments => _segmentsView.Select(s => new SegmentInfo(s.BaseOffset, s.NextOffset, s.Size, s.MaxTimestamp, s.CreatedMs)).ToArray();

    /// <summary>Why appends are refused after a failed write or fsync (null while writable). Reads keep working.</summary>
    public string? ReadOnlyReason => _readOnlyReason;

    /// <summary>
    /// Fault-injection seam for tests: called with the file path before every segment write;
    /// an IOException thrown here behaves like the write failing (e.g. ENOSPC).
    /// </summary>
    public Action<string>? BeforeWrite { get; set; }

    /// <summary>
    /// Called after each high-watermark advance, outside the log's lock (the broker's
    /// <see cref="AppendWatchers"/>, set by the <see cref="LogManager"/>).
    /// </summary>
    public Action<PartitionLog>? HighWatermarkAdvanced { get; set; }

    /// <summary>Completes at the next high-watermark advance (or close). Take it before reading to never miss one.</summary>
    public Task AppendedSignal => Volatile.Read(ref _appended).Task;

    /// <summary>
    /// Opens (creating if needed) the log in <paramref name="directory"/>, recovering it: after an
    /// unclean shutdown every segment from the recovery point on is validated batch by batch
    /// and cut at the first bad or torn batch; later segments are dropped.
    /// </summary>
    public static PartitionLog Open(string directory, TopicPartition tp, Guid topicId, LogConfig config, TimeProvider time, ILogger logger)
    {
        System.IO.Directory.CreateDirectory(directory);
        var storedId = ReadTopicId(directory);
        if (storedId is null && topicId != Guid.Empty) WriteTopicId(directory, topicId);
        var effectiveId = storedId ?? topicId;

        var cleanMarker = Path.Combine(directory, CleanShutdownFile);
        var clean = File.Exists(cleanMarker);
        var recoveryPoint = ReadRecoveryPoint(directory);
        var logStartCheckpoint = ReadOffsetFile(directory, LogStartOffsetFile);
        var cleanerCheckpoint = ReadOffsetFile(directory, CleanerCheckpointFile);
        // Written before the cleaner's first swap: absent = no segment has gaps.
        var everCleaned = File.Exists(Path.Combine(directory, CleanerCheckpointFile));
        // Written before a follower stores batches with offset gaps (a compacted leader's).
        var followerGaps = File.Exists(Path.Combine(directory, OffsetGapsFile));
        var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        var mustRecover = CompleteInterruptedOperations(directory, tp, logger);

        var baseOffsets = System.IO.Directory.EnumerateFiles(directory, "*.log")
            .Select(f => Path.GetFileNameWithoutExtension(f))
            .Where(n => n.Length == 20 && n.All(char.IsAsciiDigit))
            .Select(n => long.Parse(n, CultureInfo.InvariantCulture))
            .Order()
            .ToList();
        var segments = new List<LogSegment>();
        try
        {
            var truncated = false;
            long expectedNext = baseOffsets.Count > 0 ? baseOffsets[0] : 0;
            for (var i = 0; i < baseOffsets.Count; i++)
            {
                var segment = LogSegment.Open(directory, baseOffsets[i], config, nowMs);
                if (truncated || baseOffsets[i] < expectedNext)
                {
                    // After a cut, later segments cannot follow on: their offsets would leave a gap
                    // or overlap. Kafka drops them the same way.
                    logger.LogWarning("Deleting segment {Segment} of {Partition}: it follows a truncated or overlapping segment", baseOffsets[i], tp);
                    segment.Delete();
                    continue;
                }
                var upperBound = i + 1 < baseOffsets.Count ? baseOffsets[i + 1] : long.MaxValue;
                var trusted = (clean || upperBound <= recoveryPoint) && !mustRecover.Contains(baseOffsets[i]);
                if (!trusted || !segment.LoadAfterCleanShutdown())
                {
                    // Compaction leaves offset gaps, only ever in segments before the active one;
                    // elsewhere a gap means a damaged base offset (it is outside the CRC).
                    var gapsAllowed = mustRecover.Contains(baseOffsets[i]) || (everCleaned && i < baseOffsets.Count - 1) || followerGaps;
                    var cut = segment.Recover(expectedNext, gapsAllowed ? long.MaxValue : 0);
                    if (cut > 0)
                    {
                        logger.LogWarning("Recovery of {Partition} cut {Bytes} bytes of invalid or torn batches at the end of segment {Segment}", tp, cut, baseOffsets[i]);
                        truncated = true;
                    }
                }
                expectedNext = segment.NextOffset;
                segments.Add(segment);
            }
            if (segments.Count == 0) segments.Add(LogSegment.Open(directory, 0, config, nowMs));
        }
        catch
        {
            foreach (var s in segments) s.Dispose();
            throw;
        }
        // From here a crash is an unclean shutdown: the marker only exists while closed cleanly.
        if (clean) File.Delete(cleanMarker);
        var log = new PartitionLog(directory, tp, effectiveId, config, time, logger, segments, logStartCheckpoint, cleanerCheckpoint);
        log.LoadReplicationState(ReadHighWatermarkCheckpoint(directory));
        log.LoadProducerState(clean);
        logger.LogInformation("Opened log {Partition} ({Mode}): {Segments} segments, offsets {Start}..{End}",
            tp, baseOffsets.Count == 0 ? "new" : clean ? "clean" : "recovered", segments.Count, log.LogStartOffset, log.LogEndOffset);
        return log;
    }

    /// <summary>
    /// Finishes what a crash interrupted, before segments are opened: removes <c>.deleted</c>
    /// files (segments already out of the log) and <c>.cleaned</c> files (a cleaning not
    /// finished: the originals are intact); completes a swap whose <c>BASE.log.swap-END</c>
    /// exists (the cleaned segment was complete: it replaces every segment in [BASE, END)).
    /// Returns the base offsets of swapped-in segments, which are then fully recovered.
    /// </summary>
    private static HashSet<long> CompleteInterruptedOperations(string directory, TopicPartition tp, ILogger logger)
    {
        var swapped = new HashSet<long>();
        foreach (var file in System.IO.Directory.EnumerateFiles(directory).ToList())
        {
            var name = Path.GetFileName(file);
            if (name.EndsWith(DeletedSuffix, StringComparison.Ordinal) || name.EndsWith(CleanedSuffix, StringComparison.Ordinal))
            {
                File.Delete(file);
                continue;
            }
            // 20-digit base + ".log.swap-" + 20-digit end.
            var marker = ".log" + SwapSuffix + "-";
            var at = name.IndexOf(marker, StringComparison.Ordinal);
            if (at != 20 || name.Length != 20 + marker.Length + 20) continue;
            var stem = name[..20];
            var endText = name[(20 + marker.Length)..];
            if (!stem.All(char.IsAsciiDigit) || !endText.All(char.IsAsciiDigit)) continue;
            var start = long.Parse(stem, CultureInfo.InvariantCulture);
            var end = long.Parse(endText, CultureInfo.InvariantCulture);
            // The log file is renamed to .swap-END last, so its presence means the cleaned segment
            // is whole: drop the originals in [start, end), move the cleaned files in place.
            foreach (var log in System.IO.Directory.EnumerateFiles(directory, "*.log").ToList())
            {
                var b = Path.GetFileNameWithoutExtension(log);
                if (b.Length != 20 || !b.All(char.IsAsciiDigit)) continue;
                var baseOffset = long.Parse(b, CultureInfo.InvariantCulture);
                if (baseOffset < start || baseOffset >= end) continue;
                foreach (var ext in LogSegment.Extensions) File.Delete(Path.Combine(directory, b + ext));
            }
            foreach (var ext in LogSegment.Extensions)
            {
                var swap = Path.Combine(directory, stem + ext + SwapSuffix + "-" + endText);
                // An index not renamed yet is simply missing: recovery rebuilds it.
                if (File.Exists(swap)) File.Move(swap, Path.Combine(directory, stem + ext), overwrite: true);
            }
            swapped.Add(start);
            logger.LogWarning("Completed the interrupted swap of cleaned segment {Segment} of {Partition}", stem, tp);
        }
        // Index .swap files without their log (crash between the renames): the cleaning did not
        // finish; the original segment is still whole.
        foreach (var file in System.IO.Directory.EnumerateFiles(directory, "*" + SwapSuffix + "*").ToList()) File.Delete(file);
        return swapped;
    }

    /// <summary>
    /// Validates and appends one or more batches exactly as the client sent them. Offsets are
    /// assigned by rewriting only each batch's baseOffset and partitionLeaderEpoch (outside
    /// the CRC) in a 61-byte copy of its header; the records are written from the caller's
    /// buffer with one gather write, never copied.
    /// </summary>
    /// <param name="crcVerified">True when the caller already ran the full RecordBatchValidator
    /// (the produce path: CRC, and timestamp bounds per record, which the header walk here can
    /// only approximate); the header walk still runs.</param>
    /// <param name="origin">Which producer-state checks apply (see <see cref="ProducerStateManager"/>).</param>
    /// <param name="verification">KIP-890: the guard the produce path verified with; null when verification is not in use.</param>
    public LogAppendResult Append(ReadOnlyMemory<byte> records, bool crcVerified = false, AppendOrigin origin = AppendOrigin.Client, TransactionVerificationGuard? verification = null)
    {
        var config = Config;
        var span = records.Span;
        var summaries = new List<BatchSummary>();
        List<(int Index, ProducerBatch Batch)>? producerBatches = null;
        long messages = 0;
        // Validation before the lock: it is the CPU-heavy part (CRC) and needs no log state.
        var enumerator = new RecordBatchEnumerator(span, verifyCrc: !crcVerified);
        while (enumerator.MoveNext())
        {
            var h = new RecordBatchHeader(enumerator.Current);
            if (h.TotalSize > config.MaxMessageBytes)
                return LogAppendResult.Error(ErrorCodes.MessageTooLarge, $"Batch {summaries.Count} is {h.TotalSize} bytes, above max.message.bytes {config.MaxMessageBytes}.", LogStartOffset);
            if (h.RecordsCount == 0)
                return LogAppendResult.Error(ErrorCodes.CorruptMessage, $"Batch {summaries.Count} has no records.", LogStartOffset);
            if (!crcVerified && !config.LogAppendTime && TimestampOutOfBounds(h, config, _time.GetUtcNow().ToUnixTimeMilliseconds()))
                return LogAppendResult.Error(ErrorCodes.InvalidTimestamp, $"Batch {summaries.Count} has a timestamp outside message.timestamp.before.max.ms/after.max.ms.", LogStartOffset);
            CollectProducerBatch(enumerator.Current, summaries.Count, ref producerBatches);
            summaries.Add(new BatchSummary(enumerator.BatchStart, h.TotalSize, 0, h.LastOffsetDelta, h.MaxTimestamp));
            messages += h.RecordsCount;
        }
        if (enumerator.Error != BatchValidationError.None)
        {
            // A batch declaring more than max.message.bytes is "too large" even when cut short.
            if (RecordBatchHeader.TryReadTotalSize(span[enumerator.BatchStart..], out var declared) && declared > config.MaxMessageBytes)
                return LogAppendResult.Error(ErrorCodes.MessageTooLarge, $"Batch {summaries.Count} declares {declared} bytes, above max.message.bytes {config.MaxMessageBytes}.", LogStartOffset);
            return LogAppendResult.Error(ErrorCodes.CorruptMessage, $"Batch {summaries.Count} at byte {enumerator.BatchStart} is invalid: {enumerator.Error}.", LogStartOffset);
        }
        if (summaries.Count == 0)
            return LogAppendResult.Error(ErrorCodes.CorruptMessage, "No record batches in the request.", LogStartOffset);

        TaskCompletionSource? signal;
        TaskCompletionSource logEndSignal;
        LogAppendResult result;
        lock (_appendLock)
        {
            if (_closed) return LogAppendResult.Error(ErrorCodes.KafkaStorageError, "The log is closed.");
            if (_readOnlyReason is { } why) return LogAppendResult.Error(ErrorCodes.KafkaStorageError, why, _logStartOffset);
            var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
            // Producer state first (Kafka's analyzeAndValidateProducerState): an error or a
            // duplicate writes nothing; under this lock, so two appends cannot both pass.
            var producers = PrepareProducers(producerBatches, summaries, _logEndOffset, nowMs, config.LogAppendTime, origin, verification);
            if (ProducerOutcome(producers) is { } stopped) return stopped;
            var totalBytes = span.Length;
            var lastOffsetDeltaSum = summaries.Sum(s => s.LastOffset + 1);
            LogSegment segment;
            try
            {
                segment = MaybeRoll(config, nowMs, totalBytes, lastOffsetDeltaSum, _logEndOffset);
            }
            catch (IOException ex)
            {
                // A roll changes nothing visible until its new segment is added last: safe to stop here.
                return LogAppendResult.Error(ErrorCodes.KafkaStorageError, GoReadOnly("rolling a segment", ex), _logStartOffset);
            }

            var headers = new byte[summaries.Count * RecordBatchHeader.Size];
            var buffers = new List<ReadOnlyMemory<byte>>(summaries.Count * 2);
            var placed = new BatchSummary[summaries.Count];
            var next = _logEndOffset;
            var epoch = LeaderEpoch;
            for (var i = 0; i < summaries.Count; i++)
            {
                var s = summaries[i];
                var header = headers.AsMemory(i * RecordBatchHeader.Size, RecordBatchHeader.Size);
                var start = (int)s.RelativePosition;
                span.Slice(start, RecordBatchHeader.Size).CopyTo(header.Span);
                RecordBatchHeader.SetBaseOffset(header.Span, next);
                RecordBatchHeader.SetPartitionLeaderEpoch(header.Span, epoch);
                var body = records.Slice(start + RecordBatchHeader.Size, s.Size - RecordBatchHeader.Size);
                var maxTimestamp = s.MaxTimestamp;
                if (config.LogAppendTime)
                {
                    SetLogAppendTime(header.Span, body.Span, nowMs);
                    maxTimestamp = nowMs;
                }
                buffers.Add(header);
                if (!body.IsEmpty) buffers.Add(body);
                placed[i] = new BatchSummary(s.RelativePosition, s.Size, next, next + s.LastOffset, maxTimestamp);
                next += s.LastOffset + 1;
            }
            var sizeBefore = segment.Size;
            try
            {
                // Before the batches: the checkpoint never misses the epoch of a batch on disk.
                if (epoch > _epochCache.LatestEpoch) _epochCache.Assign(epoch, _logEndOffset);
                segment.Append(buffers, placed, BeforeWrite);
            }
            catch (IOException ex)
            {
                var message = GoReadOnly("appending", ex);
                try
                {
                    // Part of the write may have landed; nothing of it was published. Cut it so
                    // the file ends with whole batches (recovery would cut it too).
                    segment.TruncateTo(sizeBefore);
                }
                catch (IOException)
                {
                    // Recovery at the next open cuts the torn tail.
                }
                return LogAppendResult.Error(ErrorCodes.KafkaStorageError, message, _logStartOffset);
            }
            var first = _logEndOffset;
            // Before the log end offset moves: no reader may see a transactional batch the last stable offset does not cover.
            ApplyProducers(producers, segment);
            Interlocked.Exchange(ref _logEndOffset, next);
            // One replica: the high watermark follows the log end offset at once. Replicated:
            // it moves when the followers have the batches (UpdateHighWatermark).
            var hwAdvanced = !_replicatedHighWatermark;
            if (hwAdvanced) Interlocked.Exchange(ref _highWatermark, next);
            try
            {
                MaybeFlush(messages, nowMs);
            }
            catch (IOException ex)
            {
                // The batches are written and visible; only their fsync failed. The append stands
                // (answering an error would invite a duplicate retry); later appends are refused.
                GoReadOnly("flushing", ex);
            }
            logEndSignal = TakeLogEndSignal();
            signal = hwAdvanced ? TakeHighWatermarkSignal() : null;
            result = new LogAppendResult(ErrorCodes.None, null, first, next - 1, config.LogAppendTime ? nowMs : -1, _logStartOffset, summaries.Count, totalBytes);
        }
        logEndSignal.TrySetResult();
        if (signal is not null)
        {
            signal.TrySetResult();
            HighWatermarkAdvanced?.Invoke(this);
        }
        return result;
    }

    /// <summary>
    /// After a failed write or fsync the partition refuses appends until the broker restarts
    /// (and recovery checks the files): retrying on a full disk or a failing device would only
    /// tear more batches, and after a failed fsync the page cache may no longer match the disk.
    /// Kafka takes the whole log directory offline; we keep serving reads of what was written.
    /// </summary>
    private string GoReadOnly(string operation, IOException ex)
    {
        var reason = StorageErrors.IsDiskFull(ex)
            ? $"Partition {TopicPartition} is read-only: the disk is full ({operation} failed: {ex.Message})."
            : $"Partition {TopicPartition} is read-only: {operation} failed ({ex.Message}).";
        if (_readOnlyReason is null) _logger.LogError(ex, "{Reason}", reason);
        _readOnlyReason = reason;
        return reason;
    }

    /// <summary>
    /// message.timestamp.before.max.ms / after.max.ms on CreateTime batches. Checked on the
    /// batch's base and max timestamps (records are not decoded; with the defaults, no limit).
    /// </summary>
    private static bool TimestampOutOfBounds(RecordBatchHeader h, LogConfig config, long nowMs)
    {
        if (config.TimestampBeforeMaxMs == long.MaxValue && config.TimestampAfterMaxMs == long.MaxValue) return false;
        var earliest = Math.Min(h.BaseTimestamp, h.MaxTimestamp);
        return nowMs - earliest > config.TimestampBeforeMaxMs || h.MaxTimestamp - nowMs > config.TimestampAfterMaxMs;
    }

    /// <summary>
    /// Same effect as <see cref="RecordBatchHeader.SetLogAppendTime"/>, but on the 61-byte
    /// header copy: the CRC is continued over the untouched records in the caller's buffer, so
    /// they need not be copied next to the header.
    /// </summary>
    private static void SetLogAppendTime(Span<byte> header, ReadOnlySpan<byte> body, long nowMs)
    {
        var attributes = RecordBatchHeader.ComposeAttributes(System.Buffers.Binary.BinaryPrimitives.ReadInt16BigEndian(header[RecordBatchHeader.AttributesOffset..]), TimestampType.LogAppendTime);
        System.Buffers.Binary.BinaryPrimitives.WriteInt16BigEndian(header[RecordBatchHeader.AttributesOffset..], attributes);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(header[RecordBatchHeader.MaxTimestampOffset..], nowMs);
        var crc = Crc32C.Append(0xFFFFFFFFu, header[RecordBatchHeader.AttributesOffset..]);
        crc = ~Crc32C.Append(crc, body);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(header[RecordBatchHeader.CrcOffset..], crc);
    }

    /// <summary>Kafka's roll rules: size, age (segment.ms), full index, or relative offsets overflowing int32.</summary>
    /// <param name="firstOffset">Base offset of the first batch appended: the new segment's base
    /// (the log end offset, except for a follower storing a compacted leader's batches after a gap).</param>
    private LogSegment MaybeRoll(LogConfig config, long nowMs, int appendBytes, long appendOffsets, long firstOffset)
    {
        var active = _segments[^1];
        if (active.Size == 0) return active;
        var tooBig = active.Size + appendBytes > config.SegmentBytes;
        var tooOld = nowMs - active.CreatedMs >= config.SegmentMs;
        var offsetsOverflow = _logEndOffset + appendOffsets - active.BaseOffset > int.MaxValue;
        if (!tooBig && !tooOld && !active.IndexesFull && !offsetsOverflow) return active;
        // Everything before the new segment is made durable, then recorded as the recovery point,
        // so recovery after a crash only has to scan the new segment.
        active.Flush();
        WriteRecoveryPoint(Directory, _logEndOffset);
        TakeProducerSnapshot();
        _unflushedMessages = 0;
        _firstUnflushedMs = -1;
        var rolled = LogSegment.Open(Directory, firstOffset, config, nowMs);
        _segments.Add(rolled);
        _segmentsView = [.. _segments];
        _logger.LogDebug("Rolled {Partition} to segment {Base} (size {SizeBytes}, old {Old}, full index {Full})",
            TopicPartition, firstOffset, tooBig, tooOld, active.IndexesFull);
        return rolled;
    }

    /// <summary>
    /// The flush policy seam: flush.messages is applied here on every append; flush.ms is
    /// checked by <see cref="FlushIfDue"/>, which a periodic scheduler may call.
    /// </summary>
    private void MaybeFlush(long messages, long nowMs)
    {
        _unflushedMessages += messages;
        if (_firstUnflushedMs < 0) _firstUnflushedMs = nowMs;
        if (_unflushedMessages >= Config.FlushMessages) FlushLocked();
    }

    /// <summary>fsyncs when the oldest unflushed append is older than flush.ms.</summary>
    public void FlushIfDue()
    {
        lock (_appendLock)
        {
            // Read-only after a failed write or fsync: retrying an fsync that failed proves nothing.
            if (_closed || _readOnlyReason is not null) return;
            var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
            try
            {
                if (_firstUnflushedMs >= 0 && nowMs - _firstUnflushedMs >= Config.FlushMs) FlushLocked();
                MaybeCheckpointHighWatermark(nowMs);
            }
            catch (IOException ex)
            {
                GoReadOnly("flushing", ex);
                throw;
            }
        }
    }

    public void Flush()
    {
        lock (_appendLock)
        {
            if (_closed) return;
            try
            {
                FlushLocked();
                TakeProducerSnapshot();
                CheckpointHighWatermark(_time.GetUtcNow().ToUnixTimeMilliseconds());
            }
            catch (IOException ex)
            {
                GoReadOnly("flushing", ex);
                throw;
            }
        }
    }

    // The high-watermark checkpoint is not written here: flush.messages may call this on every
    // append; FlushIfDue writes it at most every HighWatermarkCheckpointIntervalMs.
    private void FlushLocked()
    {
        _segments[^1].Flush();
        WriteRecoveryPoint(Directory, _logEndOffset);
        _unflushedMessages = 0;
        _firstUnflushedMs = -1;
    }

    /// <summary>
    /// Whole batches from the one containing <paramref name="fetchOffset"/>, up to
    /// <paramref name="maxBytes"/>, none at or above <paramref name="maxOffsetExclusive"/>
    /// (default: the high watermark). With <paramref name="minOneBatch"/> the first batch is
    /// returned even when larger than maxBytes (KIP-74), so a consumer never gets stuck.
    /// </summary>
    public LogReadResult Read(long fetchOffset, int maxBytes, bool minOneBatch = true, long maxOffsetExclusive = -1)
    {
        // Offsets first, segments second: a roll publishes the new segment before the offsets
        // move, so every offset below the high watermark read here is in the segments read next.
        // The truncation count before both: a truncation after it fails the copy (LogReadResult).
        var truncations = Truncations;
        var hw = HighWatermark;
        var start = LogStartOffset;
        var leo = LogEndOffset;
        var segments = _segmentsView;
        var limit = maxOffsetExclusive < 0 ? hw : Math.Min(maxOffsetExclusive, leo);
        if (fetchOffset < start || fetchOffset > leo) return new LogReadResult(ErrorCodes.OffsetOutOfRange, hw, start, leo);
        if (fetchOffset >= limit) return new LogReadResult(ErrorCodes.None, hw, start, leo);
        var index = FloorSegment(segments, fetchOffset);
        Span<byte> header = stackalloc byte[RecordBatchHeader.Size];
        for (var i = Math.Max(index, 0); i < segments.Length; i++)
        {
            var segment = segments[i];
            var size = segment.Size;
            var position = segment.FindBatchPosition(fetchOffset, size);
            if (position < 0) continue;
            long length = 0;
            while (segment.TryReadHeader(position + length, size, header))
            {
                var h = new RecordBatchHeader(header);
                if (h.BaseOffset >= limit) break;
                // Only reachable when a truncation rewrote the file under this read (the header is
                // then inside a new batch): stop; the copy fails on the truncation count.
                if (h.TotalSize < RecordBatchHeader.Size || position + length + h.TotalSize > size) break;
                if (length + h.TotalSize > maxBytes && !(length == 0 && minOneBatch)) break;
                length += h.TotalSize;
            }
            // Retention may have removed older segments meanwhile: an offset now below the log
            // start is out of range, not silently answered with later batches.
            if (fetchOffset < LogStartOffset) return new LogReadResult(ErrorCodes.OffsetOutOfRange, hw, LogStartOffset, leo);
            return new LogReadResult(ErrorCodes.None, hw, start, leo, segment, position, checked((int)length), this, truncations);
        }
        return new LogReadResult(ErrorCodes.None, hw, start, leo);
    }

    private static int FloorSegment(LogSegment[] segments, long offset)
    {
        int lo = 0, hi = segments.Length - 1, found = -1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (segments[mid].BaseOffset <= offset) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        return found;
    }

    /// <summary>
    /// ListOffsets: -2 earliest (log start), -1 latest (high watermark), -3 max timestamp,
    /// -4 earliest local (= earliest, no tiered storage), -5 latest tiered (none: -1), else the
    /// first offset whose timestamp is &gt;= the given one, or (-1, -1).
    /// </summary>
    public OffsetAndTimestamp LookupOffset(long timestamp)
    {
        var hw = HighWatermark;
        switch (timestamp)
        {
            case -2:
            case -4:
                return new OffsetAndTimestamp(LogStartOffset, -1);
            case -1:
                return new OffsetAndTimestamp(hw, -1);
            case -5:
                return OffsetAndTimestamp.None;
            case -3:
                LogSegment? holder = null;
                foreach (var s in _segmentsView)
                    if (s.MaxTimestamp >= 0 && s.MaxTimestamp > (holder?.MaxTimestamp ?? -1) && s.OffsetOfMaxTimestamp < hw) holder = s;
                if (holder is null) return OffsetAndTimestamp.None;
                // The segment knows the batch (its last offset); KIP-734 wants the record itself.
                var position = holder.FindBatchPosition(holder.OffsetOfMaxTimestamp, holder.Size);
                var maxTs = holder.MaxTimestamp;
                Span<byte> header = stackalloc byte[RecordBatchHeader.Size];
                if (position >= 0 && holder.TryReadHeader(position, holder.Size, header)
                    && new RecordBatchHeader(header).TimestampType == TimestampType.CreateTime
                    && holder.FindRecordInBatch(position, new RecordBatchHeader(header).TotalSize, r => r.Timestamp == maxTs) is { } exact)
                    return new OffsetAndTimestamp(exact.Offset, exact.Timestamp);
                return new OffsetAndTimestamp(holder.OffsetOfMaxTimestamp, holder.MaxTimestamp);
        }
        if (timestamp < 0) return OffsetAndTimestamp.None;
        foreach (var s in _segmentsView)
        {
            var found = s.FindOffsetByTimestamp(timestamp, s.Size);
            if (found is { } f && f.Offset < hw) return new OffsetAndTimestamp(Math.Max(f.Offset, LogStartOffset), f.Timestamp);
        }
        return OffsetAndTimestamp.None;
    }

    /// <summary>Orderly close: fsync, record the recovery point, write the clean-shutdown marker.</summary>
    public void Close()
    {
        TaskCompletionSource signal;
        lock (_appendLock)
        {
            if (_closed) return;
            try
            {
                FlushLocked();
                TakeProducerSnapshot();
                CheckpointHighWatermark(_time.GetUtcNow().ToUnixTimeMilliseconds());
            }
            finally
            {
                _closed = true;
                foreach (var s in _segments) s.Dispose();
                // Their .deleted files are removed at the next open.
                foreach (var (s, _) in _pendingDeletes) s.Dispose();
                _pendingDeletes.Clear();
            }
            File.WriteAllText(Path.Combine(Directory, CleanShutdownFile), "");
            signal = _appended;
        }
        signal.TrySetResult();
        Volatile.Read(ref _logEndMoved).TrySetResult();
    }

    /// <summary>Closes without the marker and removes the directory (topic deleted).</summary>
    public void Delete()
    {
        TaskCompletionSource signal;
        lock (_appendLock)
        {
            _closed = true;
            foreach (var s in _segments) s.Dispose();
            foreach (var (s, _) in _pendingDeletes) s.Dispose();
            _pendingDeletes.Clear();
            signal = _appended;
        }
        signal.TrySetResult();
        Volatile.Read(ref _logEndMoved).TrySetResult();
        // Rename first: a crash mid-delete leaves a "-delete" directory, not a half log that
        // would be opened again at start.
        var doomed = Directory + "." + Guid.NewGuid().ToString("N") + "-delete";
        System.IO.Directory.Move(Directory, doomed);
        System.IO.Directory.Delete(doomed, recursive: true);
    }

    public void Dispose() => Close();

    internal static Guid? ReadTopicId(string directory)
    {
        var path = Path.Combine(directory, PartitionMetadataFile);
        if (!File.Exists(path)) return null;
        foreach (var line in File.ReadLines(path))
        {
            var parts = line.Split(':', 2, StringSplitOptions.TrimEntries);
            if (parts.Length == 2 && parts[0] == "topic_id" && Guid.TryParse(parts[1], out var id)) return id;
        }
        return null;
    }

    internal static void WriteTopicId(string directory, Guid topicId)
        => AtomicWrite(Path.Combine(directory, PartitionMetadataFile), $"version: 0\ntopic_id: {topicId:D}\n");

    private static long ReadRecoveryPoint(string directory) => ReadOffsetFile(directory, RecoveryPointFile);

    /// <summary>An offset checkpoint file; 0 when missing or unreadable (both files only ever move the log forward from 0).</summary>
    private static long ReadOffsetFile(string directory, string name)
    {
        var path = Path.Combine(directory, name);
        return File.Exists(path) && long.TryParse(File.ReadAllText(path).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= 0 ? v : 0;
    }

    private static void WriteRecoveryPoint(string directory, long offset)
        => AtomicWrite(Path.Combine(directory, RecoveryPointFile), offset.ToString(CultureInfo.InvariantCulture));

    /// <summary>Write to a temp file, fsync, rename: a crash leaves the old or the new content, never half.</summary>
    internal static void AtomicWrite(string path, string content)
    {
        var tmp = path + ".tmp";
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            f.Write(System.Text.Encoding.UTF8.GetBytes(content));
            f.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
    }
}
