using System.Buffers;
using System.Globalization;
using System.IO.Hashing;
using Microsoft.Extensions.Logging;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.Broker.Storage;

/// <summary>
/// The part of a compacted log the cleaner may work on. Offsets below
/// <see cref="FirstDirtyOffset"/> were cleaned before; [FirstDirtyOffset,
/// FirstUncleanableOffset) is dirty; from FirstUncleanableOffset on (the active segment, the
/// first segment reaching the high watermark, and segments with records younger than
/// min.compaction.lag.ms) nothing is touched.
/// </summary>
public readonly record struct CleanableRange(long FirstDirtyOffset, long FirstUncleanableOffset, long CleanBytes, long DirtyBytes)
{
    public double DirtyRatio => CleanBytes + DirtyBytes == 0 ? 0 : (double)DirtyBytes / (CleanBytes + DirtyBytes);
}

/// <summary>What one cleaning did.</summary>
public readonly record struct CleanResult(int SegmentsRewritten, long RecordsRemoved, long TombstonesRemoved, long BytesBefore, long BytesAfter, long FirstDirtyOffsetAfter);

public sealed partial class PartitionLog
{
    /// <summary>Offset where the dirty (never cleaned) part of a compacted log starts; fsynced after each cleaning.</summary>
    public const string CleanerCheckpointFile = "cleaner-checkpoint";

    /// <summary>
    /// Memory one offset-map entry is charged with: a 16-byte key hash, an 8-byte offset and the
    /// dictionary's own entry and bucket overhead (~16 bytes).
    /// </summary>
    public const int OffsetMapEntryBytes = 40;

    private long _firstDirtyOffset;
    // Earliest time a tombstone the last cleaning kept becomes removable (in memory only: after a
    // restart, tombstones wait for the next cleaning that new dirty data triggers).
    private long _tombstonesDueMs = long.MaxValue;

    /// <summary>Offset where the dirty part starts (see <see cref="CleanerCheckpointFile"/>).</summary>
    public long FirstDirtyOffset => Math.Max(Interlocked.Read(ref _firstDirtyOffset), LogStartOffset);

    /// <summary>True when a tombstone kept by the last cleaning has passed delete.retention.ms: worth cleaning even with no new dirty data.</summary>
    public bool TombstonesDue => _time.GetUtcNow().ToUnixTimeMilliseconds() >= Interlocked.Read(ref _tombstonesDueMs);

    /// <summary>
    /// max.compaction.lag.ms: true when the first batch of the dirty part (outside the active
    /// segment) is older than the lag, judged by its first timestamp (a one-header read).
    /// </summary>
    public bool CompactionLagExceeded(CleanableRange range)
    {
        var config = Config;
        if (config.MaxCompactionLagMs == long.MaxValue || range.DirtyBytes == 0) return false;
        var segments = _segmentsView;
        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        Span<byte> header = stackalloc byte[RecordBatchHeader.Size];
        for (var i = 0; i < segments.Length - 1 && segments[i].BaseOffset < range.FirstUncleanableOffset; i++)
        {
            if (segments[i].NextOffset <= range.FirstDirtyOffset) continue;
            var position = segments[i].FindBatchPosition(range.FirstDirtyOffset, segments[i].Size);
            if (position < 0 || !segments[i].TryReadHeader(position, segments[i].Size, header)) continue;
            var h = new RecordBatchHeader(header);
            var first = h.TimestampType == TimestampType.LogAppendTime ? h.MaxTimestamp : h.BaseTimestamp;
            return first >= 0 && nowMs - first > config.MaxCompactionLagMs;
        }
        return false;
    }

    /// <summary>The clean and dirty parts now (see <see cref="CleanableRange"/>).</summary>
    public CleanableRange GetCleanableRange()
    {
        var config = Config;
        var segments = _segmentsView;
        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var firstDirty = FirstDirtyOffset;
        var firstUncleanable = segments[^1].BaseOffset;
        // The last stable offset (<= the high watermark), as Kafka: an uncommitted record may
        // still be truncated, and a record of an open transaction may yet be aborted, so neither
        // may supersede a committed one.
        var lastStable = LastStableOffset;
        for (var i = 0; i < segments.Length - 1; i++)
        {
            // Segments are mapped whole: one reaching past the last stable offset stays as written.
            if (segments[i].NextOffset > lastStable)
            {
                firstUncleanable = segments[i].BaseOffset;
                break;
            }
            // min.compaction.lag.ms: a segment holding a record younger than the lag, and
            // everything after it, stays as written.
            if (segments[i].NextOffset > firstDirty && nowMs - NewestTimestamp(segments[i]) < config.MinCompactionLagMs)
            {
                firstUncleanable = segments[i].BaseOffset;
                break;
            }
        }
        long clean = 0, dirty = 0;
        for (var i = 0; i < segments.Length - 1 && segments[i].BaseOffset < firstUncleanable; i++)
        {
            if (segments[i].NextOffset <= firstDirty) clean += segments[i].Size;
            else dirty += segments[i].Size;
        }
        return new CleanableRange(firstDirty, firstUncleanable, clean, dirty);
    }

    /// <summary>
    /// Compacts the log once: builds a map key -> last offset over the dirty part (bounded by
    /// <paramref name="offsetMapBytesMax"/>; when it fills up, the map covers a prefix of the dirty
    /// part and the rest is left for the next cleaning), then rewrites every segment below the
    /// map's end keeping, per key, only the record the map points at or later. Records at or
    /// above the map's end and records without a key are kept. Tombstones that were already in
    /// the cleaned part before this cleaning and whose timestamp is older than
    /// delete.retention.ms are removed too (see <see cref="ShouldRemoveTombstone"/>).
    /// <para>Adjacent segments are cleaned together into one (as Kafka groups them) while their
    /// original sizes add up to at most segment.bytes and their offsets stay within int32 of the
    /// first base, so compaction also brings the segment count (and open files) down. A group
    /// [BASE, END) is written as <c>BASE.*.cleaned</c> (fsynced), renamed to
    /// <c>BASE.*.swap-END</c> (log last) and then replaces the originals under the locks: their
    /// files become <c>.deleted</c> (removed after file.delete.delay.ms; reads in flight finish)
    /// and the swap files take BASE's names. Offsets are kept, so batches leave gaps. The active
    /// segment is never touched. Only the cleaner calls this (one cleaning per log at a time).</para>
    /// </summary>
    public CleanResult Clean(long offsetMapBytesMax, CancellationToken cancellationToken = default)
    {
        var config = Config;
        // A truncation meanwhile (replication) may have cut segments this cleaning read: its
        // swaps and checkpoint are then dropped.
        var truncations = Truncations;
        var range = GetCleanableRange();
        if (!config.Compacted) return new CleanResult(0, 0, 0, 0, 0, range.FirstDirtyOffset);
        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var segments = _segmentsView;
        var capacity = (int)Math.Clamp(offsetMapBytesMax / OffsetMapEntryBytes, 1, int.MaxValue);
        var map = new Dictionary<UInt128, long>(Math.Min(capacity, 1 << 16));
        var transactions = ScanTransactions(segments, capacity, cancellationToken);
        var mapEnd = BuildOffsetMap(segments, range, map, capacity, transactions, cancellationToken);
        if (mapEnd <= range.FirstDirtyOffset && !TombstonesDue) return new CleanResult(0, 0, 0, 0, 0, range.FirstDirtyOffset);
        if (mapEnd <= range.FirstDirtyOffset) mapEnd = range.FirstDirtyOffset; // tombstone-only pass over the clean part

        // Before the first swap, the checkpoint file must exist: recovery reads its presence as
        // "segments before the active one may have offset gaps".
        if (!File.Exists(Path.Combine(Directory, CleanerCheckpointFile)))
            AtomicWrite(Path.Combine(Directory, CleanerCheckpointFile), range.FirstDirtyOffset.ToString(CultureInfo.InvariantCulture));
        var deleteHorizonMs = nowMs - config.DeleteRetentionMs;
        long removed = 0, tombstonesRemoved = 0, before = 0, after = 0, nextTombstoneDueMs = long.MaxValue;
        var rewritten = 0;
        // A marker may go only while every earlier group was replaced as rewritten (its data gone).
        var dropMarkers = true;
        foreach (var group in GroupSegments(segments, mapEnd, config))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var end = NextBaseAfter(segments, group[^1]);
            var outcome = RewriteGroup(group, config, map, mapEnd, range.FirstDirtyOffset, deleteHorizonMs, transactions, dropMarkers, cancellationToken);
            nextTombstoneDueMs = Math.Min(nextTombstoneDueMs, outcome.NextTombstoneDueMs);
            if (outcome.Cleaned is null) continue;
            before += group.Sum(s => s.Size);
            after += outcome.Cleaned.Size;
            removed += outcome.RecordsRemoved;
            tombstonesRemoved += outcome.TombstonesRemoved;
            if (Swap(group, outcome.Cleaned, end, nowMs, truncations, transactions)) rewritten += group.Count;
            else dropMarkers = false;
        }
        lock (_appendLock)
        {
            if (_closed || Truncations != truncations) return new CleanResult(rewritten, removed, tombstonesRemoved, before, after, range.FirstDirtyOffset);
            if (mapEnd > Interlocked.Read(ref _firstDirtyOffset))
            {
                AtomicWrite(Path.Combine(Directory, CleanerCheckpointFile), mapEnd.ToString(CultureInfo.InvariantCulture));
                Interlocked.Exchange(ref _firstDirtyOffset, mapEnd);
            }
            Interlocked.Exchange(ref _tombstonesDueMs, nextTombstoneDueMs);
        }
        _logger.LogInformation("Cleaned {Partition}: {Segments} segments rewritten, {Records} records and {Tombstones} tombstones removed, {Before} -> {After} bytes; dirty part now starts at {FirstDirty}",
            TopicPartition, rewritten, removed, tombstonesRemoved, before, after, mapEnd);
        return new CleanResult(rewritten, removed, tombstonesRemoved, before, after, mapEnd);
    }

    /// <summary>
    /// Fills <paramref name="map"/> with key hash -> last offset over the dirty segments, batch by
    /// batch. Stops before a batch whose records could overflow <paramref name="capacity"/>.
    /// Returns the offset the map is complete up to (exclusive).
    /// </summary>
    private long BuildOffsetMap(LogSegment[] segments, CleanableRange range, Dictionary<UInt128, long> map, int capacity,
        CleanerTransactions transactions, CancellationToken cancellationToken)
    {
        var mapEnd = range.FirstDirtyOffset;
        foreach (var segment in segments)
        {
            if (segment == segments[^1] || segment.BaseOffset >= range.FirstUncleanableOffset) break;
            if (segment.NextOffset <= range.FirstDirtyOffset) continue;
            var full = false;
            ForEachBatch(segment, batch =>
            {
                cancellationToken.ThrowIfCancellationRequested();
                var h = new RecordBatchHeader(batch.Span);
                if (h.LastOffset < range.FirstDirtyOffset) return true;
                // Worst case every record is a new key: stop before the map could outgrow its bound.
                if (map.Count + h.RecordsCount > capacity)
                {
                    full = true;
                    return false;
                }
                // Only committed transactions supersede (Kafka's cleaner skips aborted ones too): an
                // aborted or undecided one's records must not cost a committed value.
                if (!h.IsControl && (!h.IsTransactional || transactions.OutcomeOf(h.ProducerId, h.BaseOffset) == CleanerTransactions.Outcome.Committed))
                {
                    var records = RecordBatchReader.EnumerateRecords(batch.Span, out var decompressed, new RecordBatchReaderOptions { VerifyCrc = false });
                    try
                    {
                        foreach (var r in records)
                            if (!r.KeyIsNull && r.Offset >= range.FirstDirtyOffset) map[XxHash128.HashToUInt128(r.Key)] = r.Offset;
                    }
                    finally
                    {
                        decompressed?.Dispose();
                    }
                }
                mapEnd = h.LastOffset + 1;
                return true;
            });
            if (full) break;
            // A segment fully mapped: the map ends at the next segment (gaps included).
            mapEnd = Math.Max(mapEnd, NextBaseAfter(segments, segment));
        }
        if (mapEnd == range.FirstDirtyOffset && map.Count == 0 && capacity > 0 && range.DirtyBytes > 0)
            _logger.LogWarning("Cleaner offset map ({Capacity} entries) cannot hold one batch of {Partition}: raise Broker:CleanerOffsetMapBytesMax", capacity, TopicPartition);
        return Math.Min(mapEnd, range.FirstUncleanableOffset);
    }

    /// <summary>
    /// One pass over the batches below the high watermark (every segment, the active one too:
    /// a marker there decides data in older segments) to learn how each transaction ended
    /// (<see cref="CleanerTransactions"/>), at most <paramref name="transactionsMax"/> of them.
    /// </summary>
    private CleanerTransactions ScanTransactions(LogSegment[] segments, int transactionsMax, CancellationToken cancellationToken)
    {
        var transactions = new CleanerTransactions(transactionsMax);
        var hw = HighWatermark;
        foreach (var segment in segments)
        {
            if (segment.BaseOffset >= hw) break;
            var more = true;
            ForEachBatch(segment, batch =>
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (new RecordBatchHeader(batch.Span).BaseOffset >= hw) return more = false;
                return more = transactions.Visit(batch.Span);
            });
            if (!more) break;
        }
        return transactions;
    }

    /// <summary>
    /// The non-active segments below <paramref name="mapEnd"/>, in runs whose original sizes add
    /// up to at most segment.bytes and whose offsets stay within int32 of the run's base.
    /// </summary>
    private static List<List<LogSegment>> GroupSegments(LogSegment[] segments, long mapEnd, LogConfig config)
    {
        var groups = new List<List<LogSegment>>();
        List<LogSegment>? current = null;
        long bytes = 0;
        foreach (var segment in segments)
        {
            if (segment == segments[^1] || segment.BaseOffset >= mapEnd) break;
            var fits = current is not null && bytes + segment.Size <= config.SegmentBytes
                && NextBaseAfter(segments, segment) - 1 - current[0].BaseOffset <= int.MaxValue;
            if (!fits)
            {
                current = [];
                groups.Add(current);
                bytes = 0;
            }
            current!.Add(segment);
            bytes += segment.Size;
        }
        return groups;
    }

    private static long NextBaseAfter(LogSegment[] segments, LogSegment segment)
    {
        var i = Array.IndexOf(segments, segment);
        return i + 1 < segments.Length ? segments[i + 1].BaseOffset : segment.NextOffset;
    }

    /// <summary>
    /// Our stand-in for Kafka's delete horizon: a tombstone goes once it has been through one
    /// cleaning already (it lies below the dirty offset this cleaning started from, so consumers
    /// reading the cleaned log have seen it there) and its timestamp is older than
    /// delete.retention.ms. Kafka instead stamps the horizon into the batch at the first
    /// cleaning; record time is simpler and needs no format change.
    /// </summary>
    private static bool ShouldRemoveTombstone(long offset, long timestamp, long previousFirstDirty, long deleteHorizonMs)
        => offset < previousFirstDirty && timestamp <= deleteHorizonMs;

    private readonly record struct RewriteOutcome(LogSegment? Cleaned, long RecordsRemoved, long TombstonesRemoved, long NextTombstoneDueMs);

    /// <summary>
    /// Writes the cleaned copy of the segments of <paramref name="group"/> to one segment of
    /// <c>.cleaned</c> files based at the first one's base offset. Batches that lose nothing are
    /// copied byte for byte; batches that lose records are re-encoded with their base offset,
    /// producer fields, timestamp type and compression; batches that lose all are dropped.
    /// Returns Cleaned = null when nothing would change (one segment, nothing removed).
    /// </summary>
    private RewriteOutcome RewriteGroup(List<LogSegment> group, LogConfig config, Dictionary<UInt128, long> map, long mapEnd,
        long previousFirstDirty, long deleteHorizonMs, CleanerTransactions transactions, bool dropMarkers, CancellationToken cancellationToken)
    {
        var first = group[0];
        // Never append to leftovers of an earlier attempt.
        foreach (var ext in LogSegment.Extensions) File.Delete(Path.Combine(Directory, LogSegment.FileStem(first.BaseOffset) + ext + CleanedSuffix));
        // The merged index may need the room of all the originals' indexes.
        var indexBytes = (int)Math.Min(int.MaxValue, Math.Max((long)config.SegmentIndexBytes * group.Count, 4096));
        var cleaned = LogSegment.Open(Directory, first.BaseOffset, config with { SegmentIndexBytes = indexBytes }, first.CreatedMs, CleanedSuffix);
        long removed = 0, tombstones = 0, nextDue = long.MaxValue;
        var changed = group.Count > 1;
        var keep = new List<bool>();
        try
        {
            using var builder = new RecordBatchBuilder();
            foreach (var segment in group)
            ForEachBatch(segment, batch =>
            {
                cancellationToken.ThrowIfCancellationRequested();
                var h = new RecordBatchHeader(batch.Span);
                if (h.IsControl && h.IsTransactional && dropMarkers && h.BaseOffset < mapEnd && transactions.NoDataLeft(h.ProducerId, h.BaseOffset))
                {
                    // Its transaction has no data left: the marker goes once it has been through
                    // one cleaning and is older than delete.retention.ms, as a tombstone does.
                    if (h.BaseOffset < previousFirstDirty && h.MaxTimestamp <= deleteHorizonMs)
                    {
                        transactions.MarkerRemoved(h.ProducerId, h.BaseOffset);
                        changed = true;
                        removed += h.RecordsCount;
                        return true;
                    }
                    nextDue = Math.Min(nextDue, SaturatingAdd(h.MaxTimestamp, config.DeleteRetentionMs));
                }
                if (h.IsControl || h.BaseOffset >= mapEnd)
                {
                    if (h.IsTransactional && !h.IsControl) transactions.MarkKept(h.ProducerId, h.BaseOffset);
                    AppendBatch(cleaned, batch, h.BaseOffset, h.LastOffset, h.MaxTimestamp);
                    return true;
                }
                // An aborted transaction's records are removed (Kafka's cleaner); its marker then follows.
                var aborted = h.IsTransactional && transactions.OutcomeOf(h.ProducerId, h.BaseOffset) == CleanerTransactions.Outcome.Aborted;
                keep.Clear();
                var kept = 0;
                var records = RecordBatchReader.EnumerateRecords(batch.Span, out var decompressed, new RecordBatchReaderOptions { VerifyCrc = false });
                try
                {
                    foreach (var r in records)
                    {
                        var k = !aborted;
                        if (k && !r.KeyIsNull && r.Offset < mapEnd)
                        {
                            if (map.TryGetValue(XxHash128.HashToUInt128(r.Key), out var latest) && latest > r.Offset) k = false;
                            else if (r.ValueIsNull && ShouldRemoveTombstone(r.Offset, r.Timestamp, previousFirstDirty, deleteHorizonMs)) { k = false; tombstones++; }
                            else if (r.ValueIsNull) nextDue = Math.Min(nextDue, SaturatingAdd(r.Timestamp, config.DeleteRetentionMs));
                        }
                        keep.Add(k);
                        if (k) kept++;
                    }
                }
                finally
                {
                    decompressed?.Dispose();
                }
                removed += keep.Count - kept;
                if (kept > 0 && h.IsTransactional) transactions.MarkKept(h.ProducerId, h.BaseOffset);
                if (kept == keep.Count)
                {
                    AppendBatch(cleaned, batch, h.BaseOffset, h.LastOffset, h.MaxTimestamp);
                    return true;
                }
                changed = true;
                if (kept == 0) return true;
                ReEncode(builder, batch, h, keep, cleaned);
                return true;
            });
            if (!changed)
            {
                cleaned.Delete();
                return new RewriteOutcome(null, 0, 0, nextDue);
            }
            cleaned.Flush();
            return new RewriteOutcome(cleaned, removed, tombstones, nextDue);
        }
        catch
        {
            cleaned.Delete();
            throw;
        }
    }

    private static long SaturatingAdd(long a, long b) => b > 0 && a > long.MaxValue - b ? long.MaxValue : a + b;

    /// <summary>A new batch with only the kept records, same base offset, offset deltas, producer fields, timestamp type and compression.</summary>
    private static void ReEncode(RecordBatchBuilder builder, ReadOnlyMemory<byte> batch, RecordBatchHeader h, List<bool> keep, LogSegment cleaned)
    {
        builder.Reset();
        builder.BaseOffset = h.BaseOffset;
        builder.PartitionLeaderEpoch = h.PartitionLeaderEpoch;
        builder.Compression = h.Compression;
        builder.TimestampType = h.TimestampType;
        builder.LogAppendTimeMs = h.TimestampType == TimestampType.LogAppendTime ? h.MaxTimestamp : null;
        builder.IsTransactional = h.IsTransactional;
        builder.ProducerId = h.ProducerId;
        builder.ProducerEpoch = h.ProducerEpoch;
        builder.BaseSequence = h.BaseSequence;
        var records = RecordBatchReader.EnumerateRecords(batch.Span, out var decompressed, new RecordBatchReaderOptions { VerifyCrc = false });
        try
        {
            var i = 0;
            foreach (var r in records)
            {
                if (!keep[i++]) continue;
                List<RecordHeader>? headers = null;
                if (r.HeaderCount > 0)
                {
                    headers = new List<RecordHeader>(r.HeaderCount);
                    foreach (var header in r.GetHeaders())
                        headers.Add(new RecordHeader(header.KeyString, header.ValueIsNull ? null : header.Value.ToArray()));
                }
                // The record's own CreateTime (for LogAppendTime batches the view reports the batch time).
                builder.Append(h.BaseTimestamp + r.TimestampDelta, r.Key, r.KeyIsNull, r.Value, r.ValueIsNull, headers, r.OffsetDelta);
            }
        }
        finally
        {
            decompressed?.Dispose();
        }
        using var built = builder.BuildPooled();
        var bytes = built.WrittenMemory;
        var nh = new RecordBatchHeader(bytes.Span);
        AppendBatch(cleaned, bytes, nh.BaseOffset, nh.LastOffset, nh.MaxTimestamp);
    }

    private static void AppendBatch(LogSegment segment, ReadOnlyMemory<byte> batch, long baseOffset, long lastOffset, long maxTimestamp)
        => segment.Append([batch], [new BatchSummary(0, batch.Length, baseOffset, lastOffset, maxTimestamp)]);

    /// <summary>
    /// Calls <paramref name="visit"/> with each whole batch of <paramref name="segment"/>, read
    /// into one pooled buffer (grown as needed, bounded by the recovery limit). Stops when visit
    /// returns false.
    /// </summary>
    private static void ForEachBatch(LogSegment segment, Func<ReadOnlyMemory<byte>, bool> visit)
    {
        var size = segment.Size;
        long position = 0;
        Span<byte> header = stackalloc byte[RecordBatchHeader.Size];
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            while (segment.TryReadHeader(position, size, header))
            {
                var total = new RecordBatchHeader(header).TotalSize;
                if (total < RecordBatchHeader.Size || total > LogSegment.RecoveryBatchBytesMax || position + total > size)
                    throw new InvalidDataException($"Segment {segment.LogPath} has an invalid batch at position {position}.");
                if (buffer.Length < total)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = ArrayPool<byte>.Shared.Rent(total);
                }
                segment.ReadExactly(position, buffer.AsSpan(0, total));
                if (!visit(buffer.AsMemory(0, total))) return;
                position += total;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Suffix of the files of a finished cleaned segment replacing every segment from its base up to <paramref name="end"/> (exclusive).</summary>
    public static string SwapSuffixFor(long end) => SwapSuffix + "-" + LogSegment.FileStem(end);

    /// <summary>
    /// Replaces the segments of <paramref name="group"/> (up to <paramref name="end"/>, the base
    /// of the segment after them) by <paramref name="cleaned"/> (see <see cref="Clean"/>). Under
    /// the maintenance lock too, so retention never counts segments while they are merged.
    /// False (and the cleaned files removed) when the group is no longer in the log as it was
    /// (retention, DeleteRecords, truncation, close).
    /// </summary>
    private bool Swap(List<LogSegment> group, LogSegment cleaned, long end, long nowMs, long truncations, CleanerTransactions transactions)
    {
        lock (_maintenanceLock)
        lock (_appendLock)
        {
            var index = _segments.IndexOf(group[0]);
            var intact = !_closed && Truncations == truncations && index >= 0 && index + group.Count < _segments.Count && _segments[index + group.Count].BaseOffset == end;
            for (var k = 0; intact && k < group.Count; k++) intact = _segments[index + k] == group[k];
            if (!intact)
            {
                cleaned.Delete();
                return false;
            }
            // Aborted transactions whose ABORT marker stays keep their index entries (moved along);
            // one whose marker this cleaning removed (no data of it is left) loses it, as in Kafka,
            // so a read_committed reader never waits for a marker that is gone.
            foreach (var original in group)
                cleaned.AddAbortedTransactions([.. original.TxnIndex.Entries.Where(e => !transactions.WasMarkerRemoved(e.ProducerId, e.LastOffset))]);
            var swap = SwapSuffixFor(end);
            cleaned.RenameFiles(CleanedSuffix, swap);
            foreach (var original in group) original.RenameFiles("", DeletedSuffix);
            cleaned.RenameFiles(swap, "");
            _segments.RemoveRange(index, group.Count);
            _segments.Insert(index, cleaned);
            _segmentsView = [.. _segments];
            var dueMs = nowMs + Math.Max(0, Config.FileDeleteDelayMs);
            foreach (var original in group) _pendingDeletes.Add((original, dueMs));
            return true;
        }
    }
}
