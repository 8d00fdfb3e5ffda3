using System.Buffers.Binary;

namespace StreamPlatform.Broker.Storage;

/// <summary>
/// A segment's aborted-transaction index, <c>BASE.txnindex</c> (Kafka's TransactionIndex, same
/// entry layout): one 34-byte entry per ABORT marker in the segment, in marker order — int16
/// version (0), int64 producerId, int64 firstOffset, int64 lastOffset (the marker's offset),
/// int64 lastStableOffset. Created on the first entry; renamed and deleted with its segment
/// (retention, truncation, cleaning) because it is one of <see cref="LogSegment.Extensions"/>.
/// Entries are kept in memory as well: at most one per ABORT marker batch of the segment, so
/// their number is bounded by segment.bytes / 70 (the smallest marker batch).
/// A torn last entry (crash while appending) is ignored at open; recovery replays the
/// segment's batches and adds what is missing (entries are only added past the last one).
/// </summary>
internal sealed class TransactionIndex
{
    public const int EntryBytes = 34;
    private const short EntryVersion = 0;
    private readonly object _lock = new();
    private List<AbortedTxn> _entries = [];

    public TransactionIndex(string path)
    {
        Path = path;
        if (!File.Exists(path)) return;
        var bytes = File.ReadAllBytes(path);
        for (var p = 0; p + EntryBytes <= bytes.Length; p += EntryBytes)
        {
            var e = bytes.AsSpan(p, EntryBytes);
            if (BinaryPrimitives.ReadInt16BigEndian(e) != EntryVersion) break;
            _entries.Add(new AbortedTxn(BinaryPrimitives.ReadInt64BigEndian(e[2..]), BinaryPrimitives.ReadInt64BigEndian(e[10..]),
                BinaryPrimitives.ReadInt64BigEndian(e[18..]), BinaryPrimitives.ReadInt64BigEndian(e[26..])));
        }
        if (bytes.Length != _entries.Count * EntryBytes) Rewrite();
    }

    public string Path { get; set; }

    public int Count
    {
        get { lock (_lock) return _entries.Count; }
    }

    /// <summary>Appends entries whose marker is past the last one's (a replay adds only what is missing), then fsyncs.</summary>
    public void Append(IReadOnlyList<AbortedTxn> entries)
    {
        lock (_lock)
        {
            var last = _entries.Count == 0 ? long.MinValue : _entries[^1].LastOffset;
            var added = entries.Where(e => e.LastOffset > last).ToList();
            if (added.Count == 0) return;
            var bytes = Encode(added);
            using (var f = new FileStream(Path, FileMode.Append, FileAccess.Write))
            {
                f.Write(bytes);
                f.Flush(flushToDisk: true);
            }
            _entries = [.. _entries, .. added];
        }
    }

    /// <summary>
    /// Adds the entries overlapping [<paramref name="fetchOffset"/>, <paramref name="upperBound"/>)
    /// (marker at or after the fetch offset, data starting below the bound). True when an entry's
    /// last stable offset reached the bound: later segments hold nothing more (Kafka's isComplete).
    /// </summary>
    public bool Collect(long fetchOffset, long upperBound, List<AbortedTxn> into)
    {
        List<AbortedTxn> entries;
        lock (_lock) entries = _entries;
        foreach (var e in entries)
        {
            if (e.LastOffset < fetchOffset) continue;
            if (e.FirstOffset < upperBound) into.Add(e);
            if (e.LastStableOffset >= upperBound) return true;
        }
        return false;
    }

    /// <summary>Drops entries whose marker is at or after <paramref name="offset"/> (truncation).</summary>
    public void TruncateFrom(long offset)
    {
        lock (_lock)
        {
            var kept = _entries.Where(e => e.LastOffset < offset).ToList();
            if (kept.Count == _entries.Count) return;
            _entries = kept;
            Rewrite();
        }
    }

    public IReadOnlyList<AbortedTxn> Entries
    {
        get { lock (_lock) return _entries; }
    }

    private void Rewrite()
    {
        if (_entries.Count == 0)
        {
            File.Delete(Path);
            return;
        }
        var tmp = Path + ".tmp";
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            f.Write(Encode(_entries));
            f.Flush(flushToDisk: true);
        }
        File.Move(tmp, Path, overwrite: true);
    }

    private static byte[] Encode(IReadOnlyList<AbortedTxn> entries)
    {
        var bytes = new byte[entries.Count * EntryBytes];
        for (var i = 0; i < entries.Count; i++)
        {
            var s = bytes.AsSpan(i * EntryBytes, EntryBytes);
            BinaryPrimitives.WriteInt16BigEndian(s, EntryVersion);
            BinaryPrimitives.WriteInt64BigEndian(s[2..], entries[i].ProducerId);
            BinaryPrimitives.WriteInt64BigEndian(s[10..], entries[i].FirstOffset);
            BinaryPrimitives.WriteInt64BigEndian(s[18..], entries[i].LastOffset);
            BinaryPrimitives.WriteInt64BigEndian(s[26..], entries[i].LastStableOffset);
        }
        return bytes;
    }
}
