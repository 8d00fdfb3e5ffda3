using StreamPlatform.Protos.Records;

namespace StreamPlatform.Benchmarks.Micro;

/// <summary>Deterministic record batches for the micro-benchmarks.</summary>
public static class BenchData
{
    /// <summary>A batch of <paramref name="records"/> records with <paramref name="valueBytes"/>-byte values (letters) and no keys.</summary>
    public static byte[] Batch(int records, int valueBytes, CompressionType compression = CompressionType.None, long baseTimestampMs = 1_700_000_000_000)
    {
        var random = new Random(42);
        var value = new byte[valueBytes];
        using var builder = new RecordBatchBuilder { Compression = compression };
        for (var i = 0; i < records; i++)
        {
            for (var j = 0; j < value.Length; j++)
                value[j] = (byte)('A' + random.Next(26));
            builder.Append(baseTimestampMs + i, null, value);
        }
        return builder.ToArray();
    }

    /// <summary>Records of <paramref name="valueBytes"/> that fill about <paramref name="batchBytes"/> (uncompressed).</summary>
    public static byte[] BatchOfAbout(int batchBytes, int valueBytes)
    {
        // Per record: value + about 8 bytes of varint framing (length, attributes, deltas, key -1, header count).
        var records = Math.Max(1, (batchBytes - RecordBatchHeader.Size) / (valueBytes + 8));
        return Batch(records, valueBytes);
    }
}
