using System.Buffers;
using Microsoft.Win32.SafeHandles;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.Broker.Storage;

/// <summary>Where one batch of an append landed, gathered while validating.</summary>
internal readonly record struct BatchSummary(long RelativePosition, int Size, long BaseOffset, long LastOffset, long MaxTimestamp);

/// <summary>
/// One segment of a partition log: <c>BASE.log</c> (batches back to back, as received, with
/// offsets assigned), <c>BASE.index</c> and <c>BASE.timeindex</c>, BASE being the first offset
/// zero-padded to 20 digits. Only the log's active (last) segment is appended to; readers use
/// positional reads bounded by <see cref="Size"/>, which is published after the write, so a
/// reader never sees a half-written batch.
/// </summary>
internal sealed class LogSegment : IDisposable
{
    /// <summary>
    /// Largest batch recovery will read: nothing bigger can ever have been accepted (the
    /// gateway's frame limit, socket.request.max.bytes), whatever max.message.bytes says today.
    /// </summary>
    public const int RecoveryBatchBytesMax = 104857600;

    private readonly SafeFileHandle _log;
    private readonly int _indexIntervalBytes;
    private long _size;
    private long _bytesSinceIndexEntry;

    private LogSegment(string directory, long baseOffset, LogConfig config, long createdMs, string suffix)
    {
        BaseOffset = baseOffset;
        var stem = Path.Combine(directory, FileStem(baseOffset));
        LogPath = stem + ".log" + suffix;
        _log = File.OpenHandle(LogPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read | FileShare.Delete);
        Index = new OffsetIndex(stem + ".index" + suffix, baseOffset, config.SegmentIndexBytes);
        TimeIndex = new TimeIndex(stem + ".timeindex" + suffix, baseOffset, config.SegmentIndexBytes);
        TxnIndex = new TransactionIndex(stem + ".txnindex" + suffix);
        _indexIntervalBytes = config.IndexIntervalBytes;
        _size = RandomAccess.GetLength(_log);
        NextOffset = baseOffset;
        CreatedMs = createdMs;
    }

    public static string FileStem(long baseOffset) => baseOffset.ToString("D20", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// Opens (or creates) the segment files. The caller then loads or recovers it.
    /// <paramref name="suffix"/> is appended to each file name (".cleaned": a segment the cleaner is writing).
    /// </summary>
    public static LogSegment Open(string directory, long baseOffset, LogConfig config, long createdMs, string suffix = "")
        => new(directory, baseOffset, config, createdMs, suffix);

    /// <summary>The file extensions of a segment (log first: its name is the segment's identity).</summary>
    public static readonly string[] Extensions = [".log", ".index", ".timeindex", ".txnindex"];

    public long BaseOffset { get; }
    public string LogPath { get; private set; }
    public OffsetIndex Index { get; }
    public TimeIndex TimeIndex { get; }
    /// <summary>The ABORT markers of this segment (read_committed fetches).</summary>
    public TransactionIndex TxnIndex { get; }
    /// <summary>Bytes of whole batches in the file; readers never look past it.</summary>
    public long Size => Volatile.Read(ref _size);
    /// <summary>Last offset + 1 (= BaseOffset while empty).</summary>
    public long NextOffset { get; private set; }
    public long MaxTimestamp { get; private set; } = -1;
    public long OffsetOfMaxTimestamp { get; private set; } = -1;
    /// <summary>When the segment was created or opened (segment.ms counts from here).</summary>
    public long CreatedMs { get; }
    public bool IndexesFull => Index.IsFull || TimeIndex.IsFull;

    /// <summary>
    /// Writes validated batches (already given their offsets) with one gather write, then
    /// updates the indexes every index.interval.bytes.
    /// </summary>
    /// <param name="beforeWrite">Fault-injection seam (tests): called with the file path before the write; may throw.</param>
    public void Append(IReadOnlyList<ReadOnlyMemory<byte>> buffers, ReadOnlySpan<BatchSummary> batches, Action<string>? beforeWrite = null)
    {
        var start = _size;
        beforeWrite?.Invoke(LogPath);
        RandomAccess.Write(_log, buffers, start);
        long written = 0;
        foreach (var b in batches)
        {
            TrackBatch(start + b.RelativePosition, b.Size, b.LastOffset, b.MaxTimestamp);
            written += b.Size;
        }
        Volatile.Write(ref _size, start + written);
    }

    private void TrackBatch(long position, int size, long lastOffset, long maxTimestamp)
    {
        if (maxTimestamp > MaxTimestamp)
        {
            MaxTimestamp = maxTimestamp;
            OffsetOfMaxTimestamp = lastOffset;
        }
        if (_bytesSinceIndexEntry > _indexIntervalBytes)
        {
            Index.Append(lastOffset, position);
            TimeIndex.Append(MaxTimestamp, OffsetOfMaxTimestamp);
            _bytesSinceIndexEntry = 0;
        }
        _bytesSinceIndexEntry += size;
        NextOffset = lastOffset + 1;
    }

    /// <summary>Reads a batch header at <paramref name="position"/>; false past the end.</summary>
    public bool TryReadHeader(long position, long limit, Span<byte> header)
    {
        if (position + RecordBatchHeader.Size > limit) return false;
        return RandomAccess.Read(_log, header[..RecordBatchHeader.Size], position) == RecordBatchHeader.Size;
    }

    /// <summary>
    /// Position of the first batch whose last offset is &gt;= <paramref name="offset"/>, searching
    /// from the offset index's floor entry; -1 when no such batch lies below <paramref name="limit"/>.
    /// </summary>
    public long FindBatchPosition(long offset, long limit)
    {
        var position = Index.LookupFloor(offset).Position;
        Span<byte> header = stackalloc byte[RecordBatchHeader.Size];
        while (TryReadHeader(position, limit, header))
        {
            var h = new RecordBatchHeader(header);
            // A length below a header's only appears when a truncation rewrote the file under a
            // reader: give up rather than loop (the reader's copy fails on the truncation count).
            if (h.TotalSize < RecordBatchHeader.Size) return -1;
            if (h.LastOffset >= offset) return position;
            position += h.TotalSize;
        }
        return -1;
    }

    /// <summary>Copies file bytes at <paramref name="position"/> into <paramref name="destination"/>.</summary>
    public void ReadExactly(long position, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            var n = RandomAccess.Read(_log, destination, position);
            if (n == 0) throw new EndOfStreamException($"Segment {LogPath} ends before position {position}.");
            destination = destination[n..];
            position += n;
        }
    }

    /// <summary>
    /// First record with timestamp &gt;= <paramref name="timestamp"/> in this segment, via the
    /// time index then a scan of batch headers; null when none.
    /// </summary>
    public (long Offset, long Timestamp)? FindOffsetByTimestamp(long timestamp, long limit)
    {
        if (MaxTimestamp < timestamp) return null;
        var below = TimeIndex.LookupLastBelow(timestamp);
        var position = below is { } e ? Index.LookupFloor(e.Offset).Position : 0;
        Span<byte> header = stackalloc byte[RecordBatchHeader.Size];
        while (TryReadHeader(position, limit, header))
        {
            var h = new RecordBatchHeader(header);
            if (h.MaxTimestamp >= timestamp)
            {
                // LogAppendTime: every record has the batch's time. CreateTime: decode (and
                // decompress) this one batch to find the first record at or after the target.
                if (h.TimestampType == TimestampType.LogAppendTime) return (h.BaseOffset, h.MaxTimestamp);
                return FindRecordInBatch(position, h.TotalSize, r => r.Timestamp >= timestamp) ?? (h.BaseOffset, h.MaxTimestamp);
            }
            position += h.TotalSize;
        }
        return null;
    }

    /// <summary>The first record of the batch at <paramref name="position"/> matching, decoded in a pooled buffer; null if none or undecodable.</summary>
    public (long Offset, long Timestamp)? FindRecordInBatch(long position, int size, Func<Record, bool> match)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(size);
        try
        {
            ReadExactly(position, buffer.AsSpan(0, size));
            using var batch = RecordBatchReader.Read(buffer.AsMemory(0, size), new RecordBatchReaderOptions { VerifyCrc = false });
            foreach (var record in batch.Records)
                if (match(record)) return (record.Offset, record.Timestamp);
            return null;
        }
        catch (RecordBatchFormatException)
        {
            return null;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Loads a cleanly closed segment: trusts the indexes and scans only the batch headers after
    /// the last index entry to find the next offset and the max timestamp. False when the
    /// headers do not add up to the file size (then the caller recovers the segment).
    /// </summary>
    public bool LoadAfterCleanShutdown()
    {
        var (lastIndexed, position) = Index.LastEntry;
        if (Index.Entries > 0) NextOffset = lastIndexed + 1;
        if (TimeIndex.Entries > 0)
        {
            var (ts, off) = TimeIndex.ReadEntry(TimeIndex.Entries - 1);
            MaxTimestamp = ts;
            OffsetOfMaxTimestamp = off;
        }
        Span<byte> header = stackalloc byte[RecordBatchHeader.Size];
        var size = _size;
        while (TryReadHeader(position, size, header))
        {
            var h = new RecordBatchHeader(header);
            if (h.Magic != RecordBatchHeader.CurrentMagic || h.TotalSize < RecordBatchHeader.Size || position + h.TotalSize > size) return false;
            if (h.MaxTimestamp > MaxTimestamp) { MaxTimestamp = h.MaxTimestamp; OffsetOfMaxTimestamp = h.LastOffset; }
            NextOffset = h.LastOffset + 1;
            position += h.TotalSize;
        }
        return position == size;
    }

    /// <summary>
    /// Validates every batch (length, magic, CRC, offsets increasing and not below
    /// <paramref name="minBaseOffset"/>), one batch at a time in a pooled buffer, rebuilding
    /// both indexes, and truncates the file at the first bad or torn batch. Returns the bytes
    /// cut off (0 when the segment was intact).
    /// </summary>
    /// <param name="gapsAllowedBelow">
    /// The base offset is outside the CRC, so a damaged one is only caught by continuity: each
    /// batch must start where the previous one ended, except below this offset (compacted
    /// segments, where removed records leave gaps: long.MaxValue). 0: no gaps at all.
    /// </param>
    public long Recover(long minBaseOffset, long gapsAllowedBelow = 0)
    {
        Index.Reset();
        TimeIndex.Reset();
        MaxTimestamp = -1;
        OffsetOfMaxTimestamp = -1;
        NextOffset = Math.Max(BaseOffset, minBaseOffset);
        _bytesSinceIndexEntry = 0;
        var fileLength = RandomAccess.GetLength(_log);
        long position = 0;
        Span<byte> header = stackalloc byte[RecordBatchHeader.Size];
        while (TryReadHeader(position, fileLength, header))
        {
            if (!RecordBatchHeader.TryReadTotalSize(header, out var total)
                || total < RecordBatchHeader.Size || total > RecoveryBatchBytesMax || position + total > fileLength)
                break;
            var buffer = ArrayPool<byte>.Shared.Rent(total);
            try
            {
                var batch = buffer.AsSpan(0, total);
                ReadExactly(position, batch);
                var enumerator = new RecordBatchEnumerator(batch, RecoveryBatchBytesMax);
                if (!enumerator.MoveNext()) break;
                var h = new RecordBatchHeader(batch);
                if (h.BaseOffset < NextOffset) break;
                if (h.BaseOffset != NextOffset && h.BaseOffset > gapsAllowedBelow) break;
                // Index entries hold offsets relative to the segment's base as int32 (Kafka's check too).
                if (h.LastOffset - BaseOffset > int.MaxValue) break;
                TrackBatch(position, total, h.LastOffset, h.MaxTimestamp);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
            position += total;
        }
        var cut = fileLength - position;
        if (cut > 0) RandomAccess.SetLength(_log, position);
        Volatile.Write(ref _size, position);
        return cut;
    }

    /// <summary>
    /// Cuts the file back to <paramref name="size"/> bytes (undoing a partly failed write, whose
    /// batches were never published). Index entries are only added after a successful write.
    /// </summary>
    public void TruncateTo(long size)
    {
        RandomAccess.SetLength(_log, size);
        Volatile.Write(ref _size, size);
    }

    /// <summary>
    /// Removes every batch whose last offset is &gt;= <paramref name="offset"/> (replication
    /// truncation): the file is cut at the start of the first such batch, so a batch containing
    /// <paramref name="offset"/> goes whole; index entries pointing at removed batches go; the next
    /// offset and max timestamp are recomputed from the indexes and the headers after the last
    /// entry. Then fsynced. Only called with the log's locks held, on its last segment.
    /// </summary>
    public void TruncateFromOffset(long offset)
    {
        var position = FindBatchPosition(offset, Size);
        if (position < 0) return;
        RandomAccess.SetLength(_log, position);
        Volatile.Write(ref _size, position);
        Index.TruncateFrom(offset);
        TimeIndex.TruncateFrom(offset);
        TxnIndex.TruncateFrom(offset);
        NextOffset = BaseOffset;
        MaxTimestamp = -1;
        OffsetOfMaxTimestamp = -1;
        if (!LoadAfterCleanShutdown()) throw new InvalidDataException($"Segment {LogPath} does not end with a whole batch after truncation at {position}.");
        _bytesSinceIndexEntry = position - Index.LastEntry.Position;
        Flush();
    }

    /// <summary>
    /// Renames the three files from <c>name + fromSuffix</c> to <c>name + toSuffix</c>, handles
    /// open (POSIX rename; readers holding this segment keep reading). Missing files are skipped.
    /// </summary>
    /// <remarks>The log file is renamed last: recovery treats <c>BASE.log.swap-END</c> as the sign that every file of a cleaned segment is in place.</remarks>
    public void RenameFiles(string fromSuffix, string toSuffix)
    {
        Index.Path = RenameOne(Index.Path, fromSuffix, toSuffix);
        TimeIndex.Path = RenameOne(TimeIndex.Path, fromSuffix, toSuffix);
        TxnIndex.Path = RenameOne(TxnIndex.Path, fromSuffix, toSuffix);
        LogPath = RenameOne(LogPath, fromSuffix, toSuffix);
    }

    private static string RenameOne(string path, string fromSuffix, string toSuffix)
    {
        if (!path.EndsWith(fromSuffix, StringComparison.Ordinal)) throw new InvalidOperationException($"{path} does not end with '{fromSuffix}'.");
        var target = path[..^fromSuffix.Length] + toSuffix;
        if (File.Exists(path)) File.Move(path, target, overwrite: true);
        return target;
    }

    /// <summary>ABORT markers appended to this segment (written and fsynced at once: they are rare).</summary>
    public void AddAbortedTransactions(IReadOnlyList<AbortedTxn> aborted) => TxnIndex.Append(aborted);

    public void Flush()
    {
        RandomAccess.FlushToDisk(_log);
        Index.Flush();
        TimeIndex.Flush();
    }

    public void Dispose()
    {
        _log.Dispose();
        Index.Dispose();
        TimeIndex.Dispose();
    }

    /// <summary>Closes and removes the three files.</summary>
    public void Delete()
    {
        Dispose();
        // File.Delete ignores missing files.
        File.Delete(LogPath);
        File.Delete(Index.Path);
        File.Delete(TimeIndex.Path);
        File.Delete(TxnIndex.Path);
    }
}
