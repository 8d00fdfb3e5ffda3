using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using StreamPlatform.Protos.Records;
using static StreamPlatform.UnitTests.Records.RecordTestData;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Records;

public class RecordBatchCodecTests
{
    public static TheoryData<CompressionType> AllCodecs => new()
    {
        CompressionType.None, CompressionType.Gzip, CompressionType.Snappy, CompressionType.Lz4, CompressionType.Zstd,
    };

    [Fact]
    public void Golden_single_record_batch_has_the_hand_computed_bytes()
    {
        using var builder = new RecordBatchBuilder();
        builder.Append(T, Utf8("k"), Utf8("v"));
        var bytes = builder.ToArray();

        // Hand-laid: record = length 8 (zigzag 0x10), attrs 0, tsDelta 0, offsetDelta 0,
        // keyLen 1 (0x02) 'k', valueLen 1 (0x02) 'v', headers 0. 61 + 9 = 70, batchLength 58.
        // CRC-32C of bytes 21..69 computed independently (bitwise Python) = 0xE99B8DD8.
        var expected = Convert.FromHexString(
            "0000000000000000" + "0000003A" + "FFFFFFFF" + "02" + "E99B8DD8" +
            "0000" + "00000000" + "0000018BCFE56800" + "0000018BCFE56800" +
            "FFFFFFFFFFFFFFFF" + "FFFF" + "FFFFFFFF" + "00000001" +
            "10" + "00" + "00" + "00" + "02" + "6B" + "02" + "76" + "00");
        Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(bytes));
        Assert.Equal(0xE99B8DD8u, Crc32C.Compute(bytes.AsSpan(21)));

        var header = new RecordBatchHeader(bytes);
        Assert.Equal(70, header.TotalSize);
        Assert.Equal(RecordBatchHeader.ComputeCrc(bytes), header.Crc);

        using var decoded = RecordBatchReader.Read(bytes);
        var record = Assert.Single(decoded.Records);
        Assert.Equal("k", Encoding.UTF8.GetString(record.Key!.Value.Span));
        Assert.Equal("v", Encoding.UTF8.GetString(record.Value!.Value.Span));
        Assert.Equal(T, record.Timestamp);
        Assert.Equal(0, record.Offset);
        Assert.Empty(record.Headers);
    }

    [Fact]
    public void Uncompressed_keys_and_values_are_slices_of_the_input()
    {
        var bytes = Wrap(FixtureRecords, CompressionType.None, 4, 3, T, T + 9);
        using var decoded = RecordBatchReader.Read(bytes);
        AssertFixtureRecords(decoded);
        Assert.True(MemoryMarshal.TryGetArray(decoded.Records[0].Key!.Value, out var segment));
        Assert.Same(bytes, segment.Array);
        Assert.Equal(61 + 5, segment.Offset); // length, attrs, tsDelta, offsetDelta, keyLen
    }

    [Fact]
    public void Python_encoded_records_match_the_builder_output()
    {
        using var builder = new RecordBatchBuilder();
        builder.Append(T, Utf8("key-0"), Utf8("value-0"), [new("h1", Utf8("x")), new("h2", null)])
            .Append(T + 5, null, Utf8("v1"))
            .Append(T + 7, Utf8("k2"), null)
            .Append(T + 9, Utf8("k3"), Array.Empty<byte>());
        var built = builder.ToArray();
        Assert.Equal(Convert.ToHexString(Wrap(FixtureRecords, CompressionType.None, 4, 3, T, T + 9)), Convert.ToHexString(built));
    }

    [Theory]
    [MemberData(nameof(AllCodecs))]
    public void Round_trip_with_headers_null_keys_tombstones_and_empty_values(CompressionType codec)
    {
        var big = Utf8(string.Concat(Enumerable.Repeat("compressible payload ", 20_000))); // ~400 KB, several codec blocks
        using var builder = new RecordBatchBuilder
        {
            BaseOffset = 1000, PartitionLeaderEpoch = 7, Compression = codec, IsTransactional = true,
            ProducerId = 42, ProducerEpoch = 3, BaseSequence = 17,
        };
        builder.Append(T, Utf8("a"), Utf8("1"), [new("trace", Utf8("abc")), new("empty", Array.Empty<byte>()), new("none", null), new("ünï", Utf8("x"))])
            .Append(T - 10, null, Utf8("null key"))
            .Append(T + 20, Utf8("gone"), null)
            .Append(T + 3, Utf8("e"), Array.Empty<byte>())
            .Append(T + 4, Array.Empty<byte>(), big);
        var bytes = builder.ToArray();

        var header = new RecordBatchHeader(bytes);
        Assert.Equal(codec, header.Compression);
        Assert.True(header.IsTransactional);
        Assert.False(header.IsControl);
        Assert.Equal(4, header.LastOffsetDelta);
        Assert.Equal(5, header.RecordsCount);
        Assert.Equal(T, header.BaseTimestamp);
        Assert.Equal(T + 20, header.MaxTimestamp);
        Assert.Equal(RecordBatchHeader.ComputeCrc(bytes), header.Crc);
        if (codec != CompressionType.None) Assert.True(bytes.Length < big.Length / 10);

        using var decoded = RecordBatchReader.Read(bytes);
        Assert.Equal(1000, decoded.BaseOffset);
        Assert.Equal(7, decoded.PartitionLeaderEpoch);
        Assert.Equal(42, decoded.ProducerId);
        Assert.Equal(3, decoded.ProducerEpoch);
        Assert.Equal(17, decoded.BaseSequence);
        Assert.Equal(1004, decoded.LastOffset);
        var r = decoded.Records;
        Assert.Equal(5, r.Count);
        Assert.Equal([1000L, 1001, 1002, 1003, 1004], r.Select(x => x.Offset));
        Assert.Equal([T, T - 10, T + 20, T + 3, T + 4], r.Select(x => x.Timestamp));
        Assert.Equal(4, r[0].Headers.Count);
        Assert.Equal("abc", Encoding.UTF8.GetString(r[0].Headers[0].Value!.Value.Span));
        Assert.Equal(0, r[0].Headers[1].Value!.Value.Length);
        Assert.Null(r[0].Headers[2].Value);
        Assert.Equal("ünï", r[0].Headers[3].Key);
        Assert.Null(r[1].Key);
        Assert.True(r[2].IsTombstone);
        Assert.Equal(0, r[3].Value!.Value.Length);
        Assert.Equal(0, r[4].Key!.Value.Length);
        Assert.True(r[4].Value!.Value.Span.SequenceEqual(big));

        // Base offset 1000 is log data, not producer input.
        var result = RecordBatchValidator.Validate(bytes, new() { FromClient = false });
        Assert.True(result.IsValid, result.Message);
        Assert.Equal(5, result.RecordCount);
        Assert.Equal(ErrorCodes.InvalidRecord, RecordBatchValidator.Validate(bytes).ErrorCode);
        RecordBatchHeader.SetBaseOffset(bytes, 0);
        Assert.True(RecordBatchValidator.Validate(bytes).IsValid);
    }

    [Fact]
    public void Null_arrays_stay_null_for_keys_values_and_header_values()
    {
        byte[]? none = null;
        using var builder = new RecordBatchBuilder();
        builder.Append(T, none, none, [new RecordHeader("h", none), new RecordHeader("e", Array.Empty<byte>())]);
        using var decoded = RecordBatchReader.Read(builder.ToArray());
        var r = Assert.Single(decoded.Records);
        Assert.Null(r.Key);
        Assert.True(r.IsTombstone);
        Assert.Null(r.Headers[0].Value);
        Assert.Equal(0, r.Headers[1].Value!.Value.Length);
    }

    [Fact]
    public void Explicit_offset_deltas_leave_gaps_like_compaction()
    {
        using var builder = new RecordBatchBuilder { BaseOffset = 10 };
        builder.Append(T, Utf8("a"), Utf8("1"), offsetDelta: 0).Append(T, Utf8("b"), Utf8("2"), offsetDelta: 5);
        Assert.Throws<ArgumentOutOfRangeException>(() => builder.Append(T, Utf8("c"), Utf8("3"), offsetDelta: 5));
        using var decoded = RecordBatchReader.Read(builder.ToArray());
        Assert.Equal([10L, 15], decoded.Records.Select(r => r.Offset));
        Assert.Equal(15, decoded.LastOffset);
        // A producer may not send gaps; replication/compaction input may.
        var bytes = builder.ToArray();
        RecordBatchHeader.SetBaseOffset(bytes, 0);
        var result = RecordBatchValidator.Validate(bytes);
        Assert.Equal(ErrorCodes.InvalidRecord, result.ErrorCode);
        Assert.Contains("Offset range", result.Message);
        Assert.True(RecordBatchValidator.Validate(bytes, new() { FromClient = false }).IsValid);
    }

    [Fact]
    public void Raw_snappy_block_written_by_hand_decodes()
    {
        // Literal-only snappy: uncompressed length varint, then a literal tag (60 << 2: one
        // length byte follows holding n - 1), then the bytes. No Snappier on the encoding side.
        var payload = FixtureRecords;
        var snappy = new List<byte> { (byte)payload.Length, 60 << 2, (byte)(payload.Length - 1) };
        snappy.AddRange(payload);
        var bytes = Wrap(snappy.ToArray(), CompressionType.Snappy, 4, 3, T, T + 9);
        using var decoded = RecordBatchReader.Read(bytes);
        AssertFixtureRecords(decoded);
    }

    [Fact]
    public void Xerial_framed_snappy_with_several_blocks_decodes()
    {
        // snappy-java stream: magic, version 1, compatible 1, then [int32 length][raw block]...
        var payload = FixtureRecords;
        var stream = new List<byte> { 0x82, (byte)'S', (byte)'N', (byte)'A', (byte)'P', (byte)'P', (byte)'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1 };
        foreach (var chunk in new[] { payload[..20], payload[20..] })
        {
            var block = new List<byte> { (byte)chunk.Length, (byte)((chunk.Length - 1) << 2) };
            block.AddRange(chunk);
            var length = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(length, block.Count);
            stream.AddRange(length);
            stream.AddRange(block);
        }
        using var decoded = RecordBatchReader.Read(Wrap(stream.ToArray(), CompressionType.Snappy, 4, 3, T, T + 9));
        AssertFixtureRecords(decoded);
    }

    [Fact]
    public void Snappy_encodes_raw_and_xerial_helper_round_trips()
    {
        var data = Utf8(string.Concat(Enumerable.Repeat("snappy block data ", 5000))); // > one 32 KiB xerial block
        using var raw = new PooledBufferWriter();
        CompressionCodecs.Compress(CompressionType.Snappy, data, raw);
        Assert.NotEqual(0x82, raw.WrittenSpan[0]); // raw snappy starts with the length varint
        using var xerial = new PooledBufferWriter();
        CompressionCodecs.CompressSnappyXerial(data, xerial);
        Assert.Equal(0x82, xerial.WrittenSpan[0]);
        foreach (var compressed in new[] { raw.ToArray(), xerial.ToArray() })
        {
            using var output = new PooledBufferWriter();
            Assert.Equal(data.Length, CompressionCodecs.Decompress(CompressionType.Snappy, compressed, output));
            Assert.True(output.WrittenSpan.SequenceEqual(data));
        }
    }

    // Produced by the reference command-line tools from FixtureRecords:
    //   zstd -c < records.bin (stdin: frame without content size, FHD 0x04, XXH64 checksum)
    //   lz4 -c < records.bin  (LZ4 frame, independent blocks, content checksum)
    //   gzip -n -c records.bin
    [Theory]
    [InlineData(CompressionType.Zstd, "KLUv/QRYuQEANgAAAAprZXktMA52YWx1ZS0wBARoMQJ4BGgyARAACgIBBHYxABAADgQEazIBABAAEgYEazMAAHZQgP4=")]
    [InlineData(CompressionType.Lz4, "BCJNGGRApzcAAIA2AAAACmtleS0wDnZhbHVlLTAEBGgxAngEaDIBEAAKAgEEdjEAEAAOBARrMgEAEAASBgRrMwAAAAAAAIvAMQ4=")]
    [InlineData(CompressionType.Gzip, "H4sIAAAAAAAAAzNjYGDgyk6t1DXgK0vMKU3VNWBhyTBkqmDJMGIUYOBiYmQpM2QQYOBjYck2YgQyhNhYso0ZGAB4pZfdNwAAAA==")]
    public void Reference_tool_frames_decode(CompressionType codec, string base64)
    {
        var payload = Convert.FromBase64String(base64);
        if (codec == CompressionType.Zstd) Assert.Equal(0x04, payload[4]); // no Frame_Content_Size
        using var decoded = RecordBatchReader.Read(Wrap(payload, codec, 4, 3, T, T + 9));
        AssertFixtureRecords(decoded);
    }

    [Fact]
    public void Zstd_streamed_without_content_size_decodes()
    {
        var data = Utf8(string.Concat(Enumerable.Repeat("zstd streaming ", 10_000)));
        var ms = new MemoryStream();
        using (var z = new ZstdSharp.CompressionStream(ms, 3, leaveOpen: true)) z.Write(data);
        var frame = ms.ToArray();
        Assert.Equal(0, frame[4] & 0xC0); // FCS flag 0
        Assert.Equal(0, frame[4] & 0x20); // not single-segment -> no content size at all
        using var output = new PooledBufferWriter();
        CompressionCodecs.Decompress(CompressionType.Zstd, frame, output);
        Assert.True(output.WrittenSpan.SequenceEqual(data));
    }

    [Fact]
    public void Control_batch_round_trips_its_marker()
    {
        using var writer = new PooledBufferWriter();
        RecordBatchBuilder.BuildControlBatch(writer, ControlRecordType.Commit, producerId: 99, producerEpoch: 4,
            coordinatorEpoch: 12, timestampMs: T, baseOffset: 500, partitionLeaderEpoch: 3);
        var bytes = writer.ToArray();
        var header = new RecordBatchHeader(bytes);
        Assert.True(header.IsControl);
        Assert.True(header.IsTransactional);
        Assert.Equal(-1, header.BaseSequence);

        using var decoded = RecordBatchReader.Read(bytes);
        var marker = Assert.Single(decoded.ControlRecords());
        Assert.Equal(new ControlRecord(0, ControlRecordType.Commit, 0, 12), marker);
        Assert.Equal(99, decoded.ProducerId);
        Assert.Equal(500, Assert.Single(decoded.Records).Offset);
        // Key bytes as Kafka lays them: version 0, type 1.
        Assert.Equal("00000001", Convert.ToHexString(decoded.Records[0].Key!.Value.Span));
        Assert.Equal("00000000000C", Convert.ToHexString(decoded.Records[0].Value!.Value.Span));

        Assert.Equal(ErrorCodes.InvalidRecord, RecordBatchValidator.Validate(bytes).ErrorCode);
        Assert.True(RecordBatchValidator.Validate(bytes, new() { FromClient = false }).IsValid);
    }

    [Theory]
    [InlineData("0000", "00000000000C")]           // key too short
    [InlineData("00000002", "00000000000C")]       // unknown type
    [InlineData("FFFF0000", "00000000000C")]       // negative key version
    [InlineData("00000000", "0000000000")]         // marker too short
    [InlineData("00000000", "FFFF0000000C")]       // negative marker version
    public void Malformed_control_records_are_invalid_record(string key, string value)
    {
        var ex = Assert.Throws<RecordBatchFormatException>(() => ControlRecord.Parse(Convert.FromHexString(key), Convert.FromHexString(value)));
        Assert.Equal(ErrorCodes.InvalidRecord, ex.ErrorCode);
    }

    [Fact]
    public void Abort_marker_parses()
    {
        var marker = ControlRecord.Parse(Convert.FromHexString("00000000"), Convert.FromHexString("000000000005"));
        Assert.Equal(ControlRecordType.Abort, marker.Type);
        Assert.Equal(5, marker.CoordinatorEpoch);
    }

    [Fact]
    public void Log_append_time_rewrite_keeps_crc_valid_and_sets_record_timestamps()
    {
        using var builder = new RecordBatchBuilder { Compression = CompressionType.Lz4 };
        builder.Append(T, Utf8("a"), Utf8("1")).Append(T + 1, Utf8("b"), Utf8("2"));
        var bytes = builder.ToArray();
        RecordBatchHeader.SetBaseOffset(bytes, 77);
        RecordBatchHeader.SetPartitionLeaderEpoch(bytes, 5);
        var log = new RecordBatchValidationOptions { FromClient = false };
        Assert.True(RecordBatchValidator.Validate(bytes, log).IsValid); // offset and epoch are outside the CRC
        RecordBatchHeader.SetLogAppendTime(bytes, T + 1000);
        Assert.True(RecordBatchValidator.Validate(bytes, log).IsValid);
        using var decoded = RecordBatchReader.Read(bytes);
        Assert.Equal(TimestampType.LogAppendTime, decoded.TimestampType);
        Assert.All(decoded.Records, r => Assert.Equal(T + 1000, r.Timestamp));
        Assert.Equal([77L, 78], decoded.Records.Select(r => r.Offset));
        Assert.Equal(5, decoded.PartitionLeaderEpoch);
    }

    [Fact]
    public void ReadAll_decodes_concatenated_batches()
    {
        using var writer = new PooledBufferWriter();
        foreach (var (codec, offset) in new[] { (CompressionType.None, 0L), (CompressionType.Zstd, 1L), (CompressionType.Gzip, 2L) })
        {
            using var b = new RecordBatchBuilder { BaseOffset = offset, Compression = codec };
            b.Append(T + offset, Utf8($"k{offset}"), Utf8($"v{offset}"));
            b.Build(writer);
        }
        var batches = RecordBatchReader.ReadAll(writer.WrittenMemory);
        try
        {
            Assert.Equal(3, batches.Count);
            Assert.Equal(["v0", "v1", "v2"], batches.Select(b => Encoding.UTF8.GetString(b.Records[0].Value!.Value.Span)));
        }
        finally
        {
            foreach (var b in batches) b.Dispose();
        }
    }

    [Fact]
    public void Builder_reset_reuses_settings_for_a_new_batch()
    {
        using var builder = new RecordBatchBuilder { Compression = CompressionType.Snappy, ProducerId = 5, BaseSequence = 0, ProducerEpoch = 0 };
        builder.Append(T, Utf8("a"), Utf8("1"));
        var first = builder.ToArray();
        builder.Reset();
        Assert.Throws<InvalidOperationException>(() => builder.ToArray());
        builder.Append(T + 50, Utf8("b"), Utf8("2"));
        using var decoded = RecordBatchReader.Read(builder.ToArray());
        Assert.Equal(T + 50, decoded.BaseTimestamp);
        Assert.Equal(0, decoded.LastOffsetDelta);
        Assert.NotEqual(first, builder.ToArray());
    }
}
