using System.Buffers.Binary;
using System.Text;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.UnitTests.Records;

/// <summary>Shared inputs and a hand-written header writer independent of RecordBatchBuilder.</summary>
internal static class RecordTestData
{
    public const long T = 1_700_000_000_000;

    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>
    /// Records region produced by an independent Python encoder (see RecordBatchCodecTests):
    /// r0 ts T key "key-0" value "value-0" headers h1="x", h2=null; r1 ts T+5 null key "v1";
    /// r2 ts T+7 "k2" tombstone; r3 ts T+9 "k3" empty value.
    /// </summary>
    public static readonly byte[] FixtureRecords = Convert.FromHexString(
        "360000000a6b65792d300e76616c75652d300404683102780468320110000a02010476310010000e04046b32010010001206046b330000");

    /// <summary>Wraps an (already compressed) records region in a v2 header and CRC, by hand.</summary>
    public static byte[] Wrap(ReadOnlySpan<byte> payload, CompressionType compression, int count, int lastOffsetDelta,
        long baseTimestamp, long maxTimestamp, long baseOffset = 0, short extraAttributes = 0, long producerId = -1, int baseSequence = -1)
    {
        var batch = new byte[61 + payload.Length];
        BinaryPrimitives.WriteInt64BigEndian(batch, baseOffset);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(8), batch.Length - 12);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(12), -1);
        batch[16] = 2;
        BinaryPrimitives.WriteInt16BigEndian(batch.AsSpan(21), (short)((short)compression | extraAttributes));
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(23), lastOffsetDelta);
        BinaryPrimitives.WriteInt64BigEndian(batch.AsSpan(27), baseTimestamp);
        BinaryPrimitives.WriteInt64BigEndian(batch.AsSpan(35), maxTimestamp);
        BinaryPrimitives.WriteInt64BigEndian(batch.AsSpan(43), producerId);
        BinaryPrimitives.WriteInt16BigEndian(batch.AsSpan(51), (short)(producerId < 0 ? -1 : 0));
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(53), baseSequence);
        BinaryPrimitives.WriteInt32BigEndian(batch.AsSpan(57), count);
        payload.CopyTo(batch.AsSpan(61));
        FixCrc(batch);
        return batch;
    }

    public static void FixCrc(Span<byte> batch) =>
        BinaryPrimitives.WriteUInt32BigEndian(batch[17..], Crc32C.Compute(batch[21..]));

    public static void AssertFixtureRecords(DecodedRecordBatch batch)
    {
        Assert.Equal(4, batch.Records.Count);
        var r = batch.Records;
        Assert.Equal("key-0", Encoding.UTF8.GetString(r[0].Key!.Value.Span));
        Assert.Equal("value-0", Encoding.UTF8.GetString(r[0].Value!.Value.Span));
        Assert.Equal(T, r[0].Timestamp);
        Assert.Equal(2, r[0].Headers.Count);
        Assert.Equal("h1", r[0].Headers[0].Key);
        Assert.Equal("x", Encoding.UTF8.GetString(r[0].Headers[0].Value!.Value.Span));
        Assert.Equal("h2", r[0].Headers[1].Key);
        Assert.Null(r[0].Headers[1].Value);
        Assert.Null(r[1].Key);
        Assert.Equal("v1", Encoding.UTF8.GetString(r[1].Value!.Value.Span));
        Assert.Equal(T + 5, r[1].Timestamp);
        Assert.Equal(1, r[1].Offset);
        Assert.Equal("k2", Encoding.UTF8.GetString(r[2].Key!.Value.Span));
        Assert.True(r[2].IsTombstone);
        Assert.Equal(T + 7, r[2].Timestamp);
        Assert.NotNull(r[3].Value);
        Assert.Equal(0, r[3].Value!.Value.Length);
        Assert.Equal(3, r[3].OffsetDelta);
        Assert.Equal(T + 9, r[3].Timestamp);
    }
}
