using System.Text;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.UnitTests.Records;

/// <summary>
/// Batches produced by a real client: kcat 1.7.1 / librdkafka 2.0.2, captured by a throwaway fake
/// broker (ApiVersions/Metadata/Produce v7) from
/// <c>kcat -P -t t -p 0 -z CODEC -K: -Z -H h1=x -H h2 -X linger.ms=200</c> with input lines
/// <c>key-0:value-0×40</c>, <c>nokeyvalue×30</c> (no key), <c>k2:</c> (empty + -Z = tombstone), <c>k3:x</c>.
/// (Records/capture_librdkafka_batches.py). Snappy here is raw (no xerial framing), lz4 is an LZ4 frame, zstd a zstd frame.
/// </summary>
public class LibrdkafkaFixtureTests
{
    private static readonly Dictionary<CompressionType, string> Batches = new()
    {
        [CompressionType.None] =
            "AAAAAAAAAAAAAALDAAAAAAIyytX8AAAAAAADAAABogXdiHcAAAGiBd2Id///////////////////AAAABNoEAAAACmtleS0wsAR2YWx1ZS0wdm"
            + "FsdWUtMHZhbHVlLTB2YWx1ZS0wdmFsdWUtMHZhbHVlLTB2YWx1ZS0wdmFsdWUtMHZhbHVlLTB2YWx1ZS0wdmFsdWUtMHZhbHVlLTB2YWx1ZS0w"
            + "dmFsdWUtMHZhbHVlLTB2YWx1ZS0wdmFsdWUtMHZhbHVlLTB2YWx1ZS0wdmFsdWUtMHZhbHVlLTB2YWx1ZS0wdmFsdWUtMHZhbHVlLTB2YWx1ZS"
            + "0wdmFsdWUtMHZhbHVlLTB2YWx1ZS0wdmFsdWUtMHZhbHVlLTB2YWx1ZS0wdmFsdWUtMHZhbHVlLTB2YWx1ZS0wdmFsdWUtMHZhbHVlLTB2YWx1"
            + "ZS0wdmFsdWUtMHZhbHVlLTB2YWx1ZS0wBARoMQJ4BGgyAfgEAAACAdgEbm9rZXl2YWx1ZW5va2V5dmFsdWVub2tleXZhbHVlbm9rZXl2YWx1ZW"
            + "5va2V5dmFsdWVub2tleXZhbHVlbm9rZXl2YWx1ZW5va2V5dmFsdWVub2tleXZhbHVlbm9rZXl2YWx1ZW5va2V5dmFsdWVub2tleXZhbHVlbm9r"
            + "ZXl2YWx1ZW5va2V5dmFsdWVub2tleXZhbHVlbm9rZXl2YWx1ZW5va2V5dmFsdWVub2tleXZhbHVlbm9rZXl2YWx1ZW5va2V5dmFsdWVub2tleX"
            + "ZhbHVlbm9rZXl2YWx1ZW5va2V5dmFsdWVub2tleXZhbHVlbm9rZXl2YWx1ZW5va2V5dmFsdWVub2tleXZhbHVlbm9rZXl2YWx1ZW5va2V5dmFs"
            + "dWVub2tleXZhbHVlBARoMQJ4BGgyASIAAAQEazIBBARoMQJ4BGgyASQAAAYEazMCeAQEaDECeARoMgE=",
        [CompressionType.Gzip] =
            "AAAAAAAAAAAAAACPAAAAAAIJFqY9AAEAAAADAAABogXdiVEAAAGiBd2JUf//////////////////AAAABB+LCAAAAAAAAAO7xcLAwMCVnVqpa7"
            + "CBpSwxpzRV12CUQqNYWDIMmSpYMowYfwCDi4nxBktePjDIwLKjLEIsROgpMTCwsGQbMSJEVBgY2FiyjYEcuBAAdYWwEpICAAA=",
        [CompressionType.Snappy] =
            "AAAAAAAAAAAAAAChAAAAAALlJLVCAAIAAAADAAABogXdiiQAAAGiBd2KJP//////////////////AAAABJIFTNoEAAAACmtleS0wsAR2YWx1ZS"
            + "0w/gcA/gcA/gcA/gcAQgcAWAQEaDECeARoMgH4BAAAAgHYBG5va2V5JSj+CgD+CgD+CgD+CgCGCgA5PhwiAAAEBGsyARkSSCQAAAYEazMCeAQE"
            + "aDECeARoMgE=",
        [CompressionType.Lz4] =
            "AAAAAAAAAAAAAACcAAAAAALpYfuAAAMAAAADAAABogXdivQAAAGiBd2K9P//////////////////AAAABAQiTRhgQIJcAAAA/wXaBAAAAAprZX"
            + "ktMLAEdmFsdWUtMAcA/vEIBARoMQJ4BGgyAfgEAAACAdgEbm9rZXkoAQ8KAP8QBj4BhiIAAAQEazIBEgDwBCQAAAYEazMCeAQEaDECeARoMgEA"
            + "AAAA",
        [CompressionType.Zstd] =
            "AAAAAAAAAAAAAACMAAAAAAJIZ3nPAAQAAAADAAABogXdi8YAAAGiBd2Lxv//////////////////AAAABCi1L/0AWJUCAMQD2gQAAAAKa2V5LT"
            + "CwBHZhbHVlLTAEBGgxAngEaDIB+AQAAAIB2ARub2tleSIAAAQEazIBJAAABgRrMwJ4BgA296nZHES3+GgpcGUJjYPUwgQ=",
    };

    public static TheoryData<CompressionType> Codecs => new()
    {
        CompressionType.None, CompressionType.Gzip, CompressionType.Snappy, CompressionType.Lz4, CompressionType.Zstd,
    };

    [Theory]
    [MemberData(nameof(Codecs))]
    public void Librdkafka_batch_decodes_and_validates(CompressionType codec)
    {
        var bytes = Convert.FromBase64String(Batches[codec]);
        var header = new RecordBatchHeader(bytes);
        Assert.Equal(codec, header.Compression);
        Assert.Equal(bytes.Length, header.TotalSize);
        Assert.Equal(RecordBatchHeader.ComputeCrc(bytes), header.Crc);

        var validation = RecordBatchValidator.Validate(bytes);
        Assert.True(validation.IsValid, validation.Message);
        Assert.Equal(4, validation.RecordCount);

        using var batch = RecordBatchReader.Read(bytes);
        Assert.Equal(-1, batch.ProducerId);
        Assert.Equal(TimestampType.CreateTime, batch.TimestampType);
        var r = batch.Records;
        Assert.Equal(4, r.Count);
        Assert.Equal([0L, 1, 2, 3], r.Select(x => x.Offset));
        Assert.All(r, x => Assert.InRange(x.Timestamp, batch.BaseTimestamp, batch.MaxTimestamp));

        Assert.Equal("key-0", Encoding.UTF8.GetString(r[0].Key!.Value.Span));
        Assert.Equal(string.Concat(Enumerable.Repeat("value-0", 40)), Encoding.UTF8.GetString(r[0].Value!.Value.Span));
        Assert.Null(r[1].Key);
        Assert.Equal(string.Concat(Enumerable.Repeat("nokeyvalue", 30)), Encoding.UTF8.GetString(r[1].Value!.Value.Span));
        Assert.Equal("k2", Encoding.UTF8.GetString(r[2].Key!.Value.Span));
        Assert.True(r[2].IsTombstone);
        Assert.Equal("x", Encoding.UTF8.GetString(r[3].Value!.Value.Span));
        Assert.All(r, x =>
        {
            Assert.Equal(2, x.Headers.Count);
            Assert.Equal("h1", x.Headers[0].Key);
            Assert.Equal("x", Encoding.UTF8.GetString(x.Headers[0].Value!.Value.Span));
            Assert.Equal("h2", x.Headers[1].Key);
            Assert.Null(x.Headers[1].Value);
        });

        // Our builder re-encodes the same records; the uncompressed region must be identical to
        // librdkafka's (same varint choices), so only codec bytes may differ.
        using var builder = new RecordBatchBuilder { Compression = codec };
        foreach (var x in r)
            builder.Append(x.Timestamp, x.Key, x.Value, x.Headers.ToArray());
        using var rebuilt = RecordBatchReader.Read(builder.ToArray());
        Assert.Equal(batch.BaseTimestamp, rebuilt.BaseTimestamp);
        Assert.Equal(batch.MaxTimestamp, rebuilt.MaxTimestamp);
        if (codec == CompressionType.None)
            Assert.Equal(Convert.ToHexString(bytes.AsSpan(RecordBatchHeader.AttributesOffset)),
                Convert.ToHexString(builder.ToArray().AsSpan(RecordBatchHeader.AttributesOffset)));
    }
}
