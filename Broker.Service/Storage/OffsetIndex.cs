using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace StreamPlatform.Broker.Storage;

/// <summary>
/// A segment's sparse offset index (<c>.index</c>): 8-byte entries, relative offset int32 +
/// file position int32, big-endian, appended in increasing offset order. Each entry points at
/// the start of a batch whose last offset is the entry's offset. Lookups binary-search the file
/// with positional reads: nothing is loaded into memory. Bounded by segment.index.bytes; a full
/// index makes the log roll.
/// </summary>
internal sealed class OffsetIndex : IDisposable
{
    public const int EntryBytes = 8;
    private readonly SafeFileHandle _file;
    private readonly long _baseOffset;
    private readonly int _maxEntries;
    private int _entries;
    private long _lastOffset;

    public OffsetIndex(string path, long baseOffset, int maxIndexBytes)
    {
        Path = path;
        _baseOffset = baseOffset;
        _maxEntries = Math.Max(1, maxIndexBytes / EntryBytes);
        _file = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        var length = RandomAccess.GetLength(_file);
        // A torn last entry (crash mid-write) is dropped; the caller rebuilds if unsure anyway.
        _entries = (int)Math.Min(length / EntryBytes, int.MaxValue);
        if (length % EntryBytes != 0) RandomAccess.SetLength(_file, (long)_entries * EntryBytes);
        _lastOffset = _entries > 0 ? ReadEntry(_entries - 1).Offset : -1;
    }

    /// <summary>Current file path (changes when the segment's files are renamed).</summary>
    public string Path { get; set; }
    public int Entries => _entries;
    public bool IsFull => _entries >= _maxEntries;
    public long SizeBytes => (long)_entries * EntryBytes;

    /// <summary>Adds an entry; ignored unless the offset is above the last one (monotonic).</summary>
    public void Append(long offset, long position)
    {
        if (offset <= _lastOffset || IsFull) return;
        Span<byte> entry = stackalloc byte[EntryBytes];
        BinaryPrimitives.WriteInt32BigEndian(entry, checked((int)(offset - _baseOffset)));
        BinaryPrimitives.WriteInt32BigEndian(entry[4..], checked((int)position));
        RandomAccess.Write(_file, entry, (long)_entries * EntryBytes);
        _entries++;
        _lastOffset = offset;
    }

    /// <summary>The last entry with offset &lt;= <paramref name="target"/>, else (baseOffset, 0).</summary>
    public (long Offset, long Position) LookupFloor(long target)
    {
        int lo = 0, hi = _entries - 1, found = -1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (ReadEntry(mid).Offset <= target) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        return found < 0 ? (_baseOffset, 0) : ReadEntry(found);
    }

    public (long Offset, long Position) LastEntry => _entries > 0 ? ReadEntry(_entries - 1) : (_baseOffset, 0);

    public (long Offset, long Position) ReadEntry(int index)
    {
        Span<byte> entry = stackalloc byte[EntryBytes];
        RandomAccess.Read(_file, entry, (long)index * EntryBytes);
        return (_baseOffset + BinaryPrimitives.ReadInt32BigEndian(entry), BinaryPrimitives.ReadInt32BigEndian(entry[4..]));
    }

    /// <summary>Empties the index (recovery rebuilds it from the log).</summary>
    public void Reset()
    {
        RandomAccess.SetLength(_file, 0);
        _entries = 0;
        _lastOffset = -1;
    }

    /// <summary>Removes the entries with an offset &gt;= <paramref name="offset"/> (the log was truncated there).</summary>
    public void TruncateFrom(long offset)
    {
        var keep = FirstAtOrAbove(_entries, offset, i => ReadEntry(i).Offset);
        if (keep == _entries) return;
        RandomAccess.SetLength(_file, (long)keep * EntryBytes);
        _entries = keep;
        _lastOffset = keep > 0 ? ReadEntry(keep - 1).Offset : -1;
    }

    /// <summary>Binary search over entries whose offsets never decrease: the index of the first one &gt;= <paramref name="offset"/> (count when none).</summary>
    internal static int FirstAtOrAbove(int count, long offset, Func<int, long> offsetAt)
    {
        int lo = 0, hi = count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (offsetAt(mid) >= offset) hi = mid;
            else lo = mid + 1;
        }
        return lo;
    }

    public void Flush() => RandomAccess.FlushToDisk(_file);

    public void Dispose() => _file.Dispose();
}

/// <summary>
/// A segment's time index (<c>.timeindex</c>): 12-byte entries, timestamp int64 + relative offset
/// int32, big-endian. Each entry says "every record up to this offset has a timestamp &lt;= this
/// one" (max timestamp so far), so timestamps only increase along the file. Read with positional
/// reads like <see cref="OffsetIndex"/>.
/// </summary>
internal sealed class TimeIndex : IDisposable
{
    public const int EntryBytes = 12;
    private readonly SafeFileHandle _file;
    private readonly long _baseOffset;
    private readonly int _maxEntries;
    private int _entries;
    private long _lastTimestamp = long.MinValue;

    public TimeIndex(string path, long baseOffset, int maxIndexBytes)
    {
        Path = path;
        _baseOffset = baseOffset;
        _maxEntries = Math.Max(1, maxIndexBytes / EntryBytes);
        _file = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        var length = RandomAccess.GetLength(_file);
        _entries = (int)Math.Min(length / EntryBytes, int.MaxValue);
        if (length % EntryBytes != 0) RandomAccess.SetLength(_file, (long)_entries * EntryBytes);
        if (_entries > 0) _lastTimestamp = ReadEntry(_entries - 1).Timestamp;
    }

    /// <summary>Current file path (changes when the segment's files are renamed).</summary>
    public string Path { get; set; }
    public int Entries => _entries;
    public bool IsFull => _entries >= _maxEntries;

    public void Append(long timestamp, long offset)
    {
        if (timestamp <= _lastTimestamp || IsFull) return;
        Span<byte> entry = stackalloc byte[EntryBytes];
        BinaryPrimitives.WriteInt64BigEndian(entry, timestamp);
        BinaryPrimitives.WriteInt32BigEndian(entry[8..], checked((int)(offset - _baseOffset)));
        RandomAccess.Write(_file, entry, (long)_entries * EntryBytes);
        _entries++;
        _lastTimestamp = timestamp;
    }

    /// <summary>
    /// The last entry whose timestamp is below <paramref name="timestamp"/>: every record up to
    /// its offset is older than the target, so a search may start after it. Null when none.
    /// </summary>
    public (long Timestamp, long Offset)? LookupLastBelow(long timestamp)
    {
        int lo = 0, hi = _entries - 1, found = -1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (ReadEntry(mid).Timestamp < timestamp) { found = mid; lo = mid + 1; }
            else hi = mid - 1;
        }
        return found < 0 ? null : ReadEntry(found);
    }

    public (long Timestamp, long Offset) ReadEntry(int index)
    {
        Span<byte> entry = stackalloc byte[EntryBytes];
        RandomAccess.Read(_file, entry, (long)index * EntryBytes);
        return (BinaryPrimitives.ReadInt64BigEndian(entry), _baseOffset + BinaryPrimitives.ReadInt32BigEndian(entry[8..]));
    }

    public void Reset()
    {
        RandomAccess.SetLength(_file, 0);
        _entries = 0;
        _lastTimestamp = long.MinValue;
    }

    /// <summary>Removes the entries with an offset &gt;= <paramref name="offset"/> (the log was truncated there).</summary>
    public void TruncateFrom(long offset)
    {
        var keep = OffsetIndex.FirstAtOrAbove(_entries, offset, i => ReadEntry(i).Offset);
        if (keep == _entries) return;
        RandomAccess.SetLength(_file, (long)keep * EntryBytes);
        _entries = keep;
        _lastTimestamp = keep > 0 ? ReadEntry(keep - 1).Timestamp : long.MinValue;
    }

    public void Flush() => RandomAccess.FlushToDisk(_file);

    public void Dispose() => _file.Dispose();
}
