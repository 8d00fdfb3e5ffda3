using System.Buffers.Binary;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.UnitTests.Storage;

/// <summary>
/// Builds Kafka v2 record batches by hand (uncompressed, no keys, no headers) for storage tests,
/// until the records branch's RecordBatchBuilder is merged.
/// </summary>
internal static class TestBatches
{
    /// <summary>One batch with one record per value, timestamps baseTimestamp + i * stepMs.</summary>
    public static byte[] Build(long baseTimestamp, params string[] values) => Build(baseTimestamp, 1, values);

    public static byte[] Build(long baseTimestamp, long stepMs, params string[] values)
    {
        var records = new List<byte>();
        for (var i = 0; i < values.Length; i++)
        {
            var body = new List<byte> { 0 }; // attributes
            WriteVarint(body, i * stepMs); // timestamp delta
            WriteVarint(body, i); // offset delta
            WriteVarint(body, -1); // null key
            var value = System.Text.Encoding.UTF8.GetBytes(values[i]);
            WriteVarint(body, value.Length);
            body.AddRange(value);
            WriteVarint(body, 0); // no headers
            WriteVarint(records, body.Count);
            records.AddRange(body);
        }
        var batch = new byte[RecordBatchHeader.Size + records.Count];
        var s = batch.AsSpan();
        BinaryPrimitives.WriteInt64BigEndian(s, 0);
        BinaryPrimitives.WriteInt32BigEndian(s[8..], batch.Length - RecordBatchHeader.LogOverhead);
        BinaryPrimitives.WriteInt32BigEndian(s[12..], -1);
        s[16] = 2;
        BinaryPrimitives.WriteInt16BigEndian(s[21..], 0);
        BinaryPrimitives.WriteInt32BigEndian(s[23..], values.Length - 1);
        BinaryPrimitives.WriteInt64BigEndian(s[27..], baseTimestamp);
        BinaryPrimitives.WriteInt64BigEndian(s[35..], baseTimestamp + (values.Length - 1) * stepMs);
        BinaryPrimitives.WriteInt64BigEndian(s[43..], -1);
        BinaryPrimitives.WriteInt16BigEndian(s[51..], -1);
        BinaryPrimitives.WriteInt32BigEndian(s[53..], -1);
        BinaryPrimitives.WriteInt32BigEndian(s[57..], values.Length);
        records.CopyTo(batch, RecordBatchHeader.Size);
        BinaryPrimitives.WriteUInt32BigEndian(s[17..], RecordBatchHeader.ComputeCrc(batch));
        return batch;
    }

    public static byte[] Concat(params byte[][] batches) => batches.SelectMany(b => b).ToArray();

    /// <summary>Each batch in a buffer: (base offset, last offset, CRC still valid, first value).</summary>
    public static List<(long BaseOffset, long LastOffset, bool CrcValid, string FirstValue)> Parse(ReadOnlySpan<byte> buffer)
    {
        var result = new List<(long, long, bool, string)>();
        var e = new RecordBatchEnumerator(buffer, verifyCrc: false);
        while (e.MoveNext())
        {
            var h = new RecordBatchHeader(e.Current);
            result.Add((h.BaseOffset, h.LastOffset, RecordBatchHeader.ComputeCrc(e.Current) == h.Crc, FirstValue(e.Current)));
        }
        Assert.Equal(BatchValidationError.None, e.Error);
        return result;
    }

    private static string FirstValue(ReadOnlySpan<byte> batch)
    {
        var r = batch[RecordBatchHeader.Size..];
        var pos = ReadVarint(r, 0, out _);
        pos += 1; // attributes
        pos = ReadVarint(r, pos, out _);
        pos = ReadVarint(r, pos, out _);
        pos = ReadVarint(r, pos, out var keyLength);
        if (keyLength > 0) pos += (int)keyLength;
        pos = ReadVarint(r, pos, out var valueLength);
        return System.Text.Encoding.UTF8.GetString(r.Slice(pos, (int)valueLength));
    }

    private static int ReadVarint(ReadOnlySpan<byte> s, int pos, out long value)
    {
        ulong raw = 0;
        var shift = 0;
        while (true)
        {
            var b = s[pos++];
            raw |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) break;
            shift += 7;
        }
        value = (long)(raw >> 1) ^ -(long)(raw & 1);
        return pos;
    }

    private static void WriteVarint(List<byte> output, long value)
    {
        var v = (ulong)((value << 1) ^ (value >> 63));
        while (v >= 0x80)
        {
            output.Add((byte)(v | 0x80));
            v >>= 7;
        }
        output.Add((byte)v);
    }
}

/// <summary>A fresh temp directory per test, removed afterwards.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sp-storage-" + Guid.NewGuid().ToString("N"));

    public TempDir() => Directory.CreateDirectory(Path);

    public string PartitionDir(string topic = "t", int partition = 0) => System.IO.Path.Combine(Path, $"{topic}-{partition}");

    public PartitionLog Open(LogConfig? config = null, FakeTimeProvider? time = null, string topic = "t", int partition = 0, Guid? topicId = null)
        => PartitionLog.Open(PartitionDir(topic, partition), new TopicPartition(topic, partition), topicId ?? Guid.Empty,
            config ?? LogConfig.Default, time ?? new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000)), NullLogger.Instance);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
