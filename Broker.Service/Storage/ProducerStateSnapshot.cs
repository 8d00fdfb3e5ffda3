using System.Buffers.Binary;
using System.Globalization;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.Broker.Storage;

/// <summary>
/// Producer-state snapshot files, <c>NNNNNNNNNNNNNNNNNNNN.snapshot</c> (20-digit offset, Kafka's
/// name): the state of every producer after every batch below that offset. Binary, big-endian:
/// <code>
/// int16  version (1)
/// uint32 CRC-32C of everything after this field
/// int64  offset (the one in the name)
/// int32  producer count
/// per producer: int64 producerId, int16 epoch, int32 coordinatorEpoch, int64 lastTimestampMs,
///   int64 currentTxnFirstOffset (-1: none), int8 batch count (0..5), then per batch, oldest
///   first: int32 firstSeq, int32 lastSeq, int64 firstOffset, int64 lastOffset, int64 timestampMs
/// </code>
/// Unlike Kafka's (which keeps only each producer's last batch) all retained batches are stored,
/// so a retry of any of the last five batches is still recognised after a restart. Written to a
/// temporary file, fsynced, renamed. A file that is short, has another version or a bad CRC is
/// ignored (and deleted) by the loader, which falls back to an older snapshot or the log.
/// </summary>
public static class ProducerStateSnapshot
{
    public const string Suffix = ".snapshot";
    public const short Version = 1;
    private const int HeaderBytes = 2 + 4 + 8 + 4;
    private const int ProducerBytes = 8 + 2 + 4 + 8 + 8 + 1;
    private const int BatchBytes = 4 + 4 + 8 + 8 + 8;

    public static string FileName(long offset) => offset.ToString("D20", CultureInfo.InvariantCulture) + Suffix;

    /// <summary>Offsets of the snapshot files in <paramref name="directory"/>, ascending.</summary>
    public static List<long> List(string directory)
    {
        var offsets = new List<long>();
        foreach (var path in Directory.EnumerateFiles(directory, "*" + Suffix))
        {
            var stem = Path.GetFileNameWithoutExtension(path);
            if (stem.Length == 20 && long.TryParse(stem, NumberStyles.None, CultureInfo.InvariantCulture, out var offset)) offsets.Add(offset);
        }
        offsets.Sort();
        return offsets;
    }

    public static void Write(string directory, long offset, IReadOnlyCollection<ProducerStateEntry> entries)
    {
        var size = HeaderBytes;
        foreach (var e in entries) size += ProducerBytes + e.Batches.Count * BatchBytes;
        var bytes = new byte[size];
        var span = bytes.AsSpan();
        BinaryPrimitives.WriteInt16BigEndian(span, Version);
        var p = 6;
        BinaryPrimitives.WriteInt64BigEndian(span[p..], offset); p += 8;
        BinaryPrimitives.WriteInt32BigEndian(span[p..], entries.Count); p += 4;
        foreach (var e in entries)
        {
            BinaryPrimitives.WriteInt64BigEndian(span[p..], e.ProducerId); p += 8;
            BinaryPrimitives.WriteInt16BigEndian(span[p..], e.Epoch); p += 2;
            BinaryPrimitives.WriteInt32BigEndian(span[p..], e.CoordinatorEpoch); p += 4;
            BinaryPrimitives.WriteInt64BigEndian(span[p..], e.LastTimestampMs); p += 8;
            BinaryPrimitives.WriteInt64BigEndian(span[p..], e.CurrentTxnFirstOffset); p += 8;
            span[p++] = (byte)e.Batches.Count;
            foreach (var b in e.Batches)
            {
                BinaryPrimitives.WriteInt32BigEndian(span[p..], b.FirstSeq); p += 4;
                BinaryPrimitives.WriteInt32BigEndian(span[p..], b.LastSeq); p += 4;
                BinaryPrimitives.WriteInt64BigEndian(span[p..], b.FirstOffset); p += 8;
                BinaryPrimitives.WriteInt64BigEndian(span[p..], b.LastOffset); p += 8;
                BinaryPrimitives.WriteInt64BigEndian(span[p..], b.TimestampMs); p += 8;
            }
        }
        if (p != size) throw new InvalidOperationException($"Snapshot size mismatch ({p} != {size}).");
        BinaryPrimitives.WriteUInt32BigEndian(span[2..], Crc32C.Compute(span[6..]));
        var path = Path.Combine(directory, FileName(offset));
        var tmp = path + ".tmp";
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            f.Write(bytes);
            f.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>The entries of a snapshot file; null when it is damaged, of another version or names another offset.</summary>
    public static List<ProducerStateEntry>? Read(string directory, long offset)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(Path.Combine(directory, FileName(offset)));
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        ReadOnlySpan<byte> span = bytes;
        if (span.Length < HeaderBytes || BinaryPrimitives.ReadInt16BigEndian(span) != Version) return null;
        if (BinaryPrimitives.ReadUInt32BigEndian(span[2..]) != Crc32C.Compute(span[6..])) return null;
        if (BinaryPrimitives.ReadInt64BigEndian(span[6..]) != offset) return null;
        var count = BinaryPrimitives.ReadInt32BigEndian(span[14..]);
        var p = HeaderBytes;
        if (count < 0 || (long)count * ProducerBytes > span.Length - p) return null;
        var entries = new List<ProducerStateEntry>(count);
        for (var i = 0; i < count; i++)
        {
            if (span.Length - p < ProducerBytes) return null;
            var entry = new ProducerStateEntry(
                producerId: BinaryPrimitives.ReadInt64BigEndian(span[p..]),
                epoch: BinaryPrimitives.ReadInt16BigEndian(span[(p + 8)..]),
                coordinatorEpoch: BinaryPrimitives.ReadInt32BigEndian(span[(p + 10)..]),
                lastTimestampMs: BinaryPrimitives.ReadInt64BigEndian(span[(p + 14)..]),
                currentTxnFirstOffset: BinaryPrimitives.ReadInt64BigEndian(span[(p + 22)..]));
            int batches = span[p + 30];
            p += ProducerBytes;
            if (batches > ProducerStateEntry.BatchesRetained || span.Length - p < batches * BatchBytes) return null;
            for (var b = 0; b < batches; b++)
            {
                entry.RestoreBatch(new ProducerBatchMetadata(
                    BinaryPrimitives.ReadInt32BigEndian(span[p..]),
                    BinaryPrimitives.ReadInt32BigEndian(span[(p + 4)..]),
                    BinaryPrimitives.ReadInt64BigEndian(span[(p + 8)..]),
                    BinaryPrimitives.ReadInt64BigEndian(span[(p + 16)..]),
                    BinaryPrimitives.ReadInt64BigEndian(span[(p + 24)..])));
                p += BatchBytes;
            }
            entries.Add(entry);
        }
        return p == span.Length ? entries : null;
    }

    public static void Delete(string directory, long offset) => File.Delete(Path.Combine(directory, FileName(offset)));
}
