using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using K4os.Compression.LZ4;
using K4os.Compression.LZ4.Streams;
using Snappier;
using StreamPlatform.Protos.Records;
using static StreamPlatform.UnitTests.Records.RecordTestData;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Records;

/// <summary>
/// Compressed records whose codec framing is incomplete or has extra bytes, wrapped in a batch
/// whose CRC-32C is correct (so the mutation reaches the decoder). Each must be refused by the
/// produce validator (Kafka answers UNKNOWN_SERVER_ERROR for data its codec cannot read) and by
/// the reader; before, GZipStream and friends decoded them "fine" and the broker stored batches
/// that made librdkafka consumers spin and kafka-python raise EOFError.
/// </summary>
public class CodecFramingTests
{
    /// <summary>The uncompressed records region of a 4-record batch (what a codec compresses).</summary>
    private static byte[] Records()
    {
        using var builder = new RecordBatchBuilder();
        for (var i = 0; i < 4; i++) builder.Append(T + i, Utf8($"key-{i}"), Utf8(string.Concat(Enumerable.Repeat($"value {i} ", 40))));
        return builder.ToArray()[RecordBatchHeader.Size..];
    }

    private static byte[] Batch(byte[] compressed, CompressionType codec) => Wrap(compressed, codec, 4, 3, T, T + 3);

    private static void AssertRefused(byte[] compressed, CompressionType codec, string because)
    {
        var batch = Batch(compressed, codec);
        var result = RecordBatchValidator.Validate(batch);
        Assert.False(result.IsValid, $"{because}: accepted");
        Assert.Equal(ErrorCodes.UnknownServerError, result.ErrorCode);
        var ex = Assert.Throws<RecordBatchFormatException>(() => RecordBatchReader.Read(batch));
        Assert.Equal(ErrorCodes.CorruptMessage, ex.ErrorCode);
    }

    private static void AssertAccepted(byte[] compressed, CompressionType codec)
    {
        var result = RecordBatchValidator.Validate(Batch(compressed, codec));
        Assert.True(result.IsValid, result.Message);
        Assert.Equal(4, result.RecordCount);
    }

    private static byte[] Gzip(byte[] data)
    {
        var ms = new MemoryStream();
        using (var gzip = new GZipStream(ms, CompressionLevel.Optimal, leaveOpen: true)) gzip.Write(data);
        return ms.ToArray();
    }

    [Fact]
    public void Gzip_whose_trailer_is_cut_off_is_refused()
    {
        var gzip = Gzip(Records());
        AssertAccepted(gzip, CompressionType.Gzip);
        AssertRefused(gzip[..^8], CompressionType.Gzip, "no trailer");
        AssertRefused(gzip[..^4], CompressionType.Gzip, "CRC32 without ISIZE");
        AssertRefused(gzip[..^1], CompressionType.Gzip, "ISIZE cut");
    }

    [Fact]
    public void Gzip_with_a_wrong_trailer_or_extra_bytes_is_refused()
    {
        var gzip = Gzip(Records());
        var badCrc = (byte[])gzip.Clone();
        badCrc[^8] ^= 1;
        AssertRefused(badCrc, CompressionType.Gzip, "CRC32 mismatch");
        var badSize = (byte[])gzip.Clone();
        badSize[^4] ^= 1;
        AssertRefused(badSize, CompressionType.Gzip, "ISIZE mismatch");
        AssertRefused([.. gzip, 1, 2, 3], CompressionType.Gzip, "trailing garbage");
        AssertRefused([.. gzip, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], CompressionType.Gzip, "zero padding");
        AssertRefused([.. gzip, .. Gzip([1])], CompressionType.Gzip, "second member");
        AssertRefused([.. gzip[..(gzip.Length / 2)], .. gzip[^8..]], CompressionType.Gzip, "deflate stream cut in the middle");
        var badMagic = (byte[])gzip.Clone();
        badMagic[1] = 0x8c;
        AssertRefused(badMagic, CompressionType.Gzip, "no magic");
    }

    [Fact]
    public void Gzip_with_optional_header_fields_decodes()
    {
        // FEXTRA, FNAME, FCOMMENT and FHCRC, as RFC 1952 allows (GZipStream writes none of them).
        var plain = Gzip(Records());
        var deflateAndTrailer = plain[10..];
        var header = new List<byte> { 0x1f, 0x8b, 8, 0x02 | 0x04 | 0x08 | 0x10, 0, 0, 0, 0, 0, 255, 3, 0, (byte)'x', (byte)'y', (byte)'z' };
        header.AddRange("name\0comment\0"u8.ToArray());
        var crc = (ushort)Crc32.HashToUInt32(header.ToArray());
        header.Add((byte)crc);
        header.Add((byte)(crc >> 8));
        AssertAccepted([.. header, .. deflateAndTrailer], CompressionType.Gzip);
        var wrongHeaderCrc = header.ToArray();
        wrongHeaderCrc[^1] ^= 1;
        AssertRefused([.. wrongHeaderCrc, .. deflateAndTrailer], CompressionType.Gzip, "header CRC");
    }

    private static byte[] Lz4(byte[] data, bool blockChecksum = false, bool contentChecksum = false, bool chained = false)
    {
        var ms = new MemoryStream();
        var settings = new LZ4EncoderSettings { ChainBlocks = chained, BlockChecksum = blockChecksum, ContentChecksum = contentChecksum, BlockSize = 64 * 1024 };
        using (var lz4 = LZ4Stream.Encode(ms, settings, leaveOpen: true)) lz4.Write(data);
        return ms.ToArray();
    }

    /// <summary>The frame with a content size field (K4os does not write one; librdkafka does).</summary>
    private static byte[] WithContentSize(byte[] frame, long size)
    {
        var descriptor = new byte[10];
        descriptor[0] = (byte)(frame[4] | 0x08);
        descriptor[1] = frame[5];
        BinaryPrimitives.WriteInt64LittleEndian(descriptor.AsSpan(2), size);
        var headerChecksum = (byte)(XxHash32.HashToUInt32(descriptor) >> 8);
        return [.. frame[..4], .. descriptor, headerChecksum, .. frame[7..]];
    }

    [Fact]
    public void Lz4_checksums_are_verified_when_present()
    {
        var records = Records();
        var both = Lz4(records, blockChecksum: true, contentChecksum: true);
        AssertAccepted(both, CompressionType.Lz4);
        var badContent = (byte[])both.Clone();
        badContent[^1] ^= 1;
        AssertRefused(badContent, CompressionType.Lz4, "content checksum");
        // The block checksum sits right before the end mark and the content checksum.
        var badBlock = (byte[])both.Clone();
        badBlock[^9] ^= 1;
        AssertRefused(badBlock, CompressionType.Lz4, "block checksum");
        var badHeader = (byte[])both.Clone();
        badHeader[6] ^= 1;
        AssertRefused(badHeader, CompressionType.Lz4, "header checksum");
    }

    [Fact]
    public void Lz4_frames_cut_off_linked_or_followed_by_bytes_are_refused()
    {
        var records = Records();
        var frame = Lz4(records);
        AssertAccepted(frame, CompressionType.Lz4);
        AssertRefused(frame[..^4], CompressionType.Lz4, "no end mark");
        AssertRefused(frame[..^6], CompressionType.Lz4, "block cut");
        AssertRefused([.. frame, 7], CompressionType.Lz4, "trailing byte");
        AssertRefused([.. frame, .. frame], CompressionType.Lz4, "second frame");
        // Kafka's Lz4BlockInputStream refuses dependent blocks.
        AssertRefused(Lz4(records, chained: true), CompressionType.Lz4, "linked blocks");
        AssertAccepted(WithContentSize(frame, records.Length), CompressionType.Lz4);
        AssertRefused(WithContentSize(frame, records.Length + 1), CompressionType.Lz4, "content size mismatch");
    }

    [Fact]
    public void Snappy_with_extra_or_missing_bytes_is_refused()
    {
        var records = Records();
        var raw = Snappy.CompressToArray(records);
        AssertAccepted(raw, CompressionType.Snappy);
        AssertRefused([.. raw, 1, 2, 3], CompressionType.Snappy, "raw: trailing garbage");
        AssertRefused([.. raw, 0], CompressionType.Snappy, "raw: trailing zero");
        AssertRefused(raw[..^1], CompressionType.Snappy, "raw: cut");

        using var xerialWriter = new PooledBufferWriter();
        CompressionCodecs.CompressSnappyXerial(records, xerialWriter);
        var xerial = xerialWriter.ToArray();
        AssertAccepted(xerial, CompressionType.Snappy);
        AssertRefused([.. xerial, 0, 0, 0], CompressionType.Snappy, "xerial: partial block length");
        AssertRefused([.. xerial, 0, 0, 0, 9, 1], CompressionType.Snappy, "xerial: block cut");
        AssertRefused(xerial[..^1], CompressionType.Snappy, "xerial: last block cut");
        AssertRefused([.. xerial, 0, 0, 0, 2, 5, 0], CompressionType.Snappy, "xerial: block with trailing byte");
    }

    [Fact]
    public void Zstd_cut_off_or_followed_by_garbage_is_refused()
    {
        var records = Records();
        using var writer = new PooledBufferWriter();
        CompressionCodecs.Compress(CompressionType.Zstd, records, writer);
        var zstd = writer.ToArray();
        AssertAccepted(zstd, CompressionType.Zstd);
        AssertRefused(zstd[..^1], CompressionType.Zstd, "cut");
        AssertRefused(zstd[..(zstd.Length / 2)], CompressionType.Zstd, "cut in half");
        AssertRefused([.. zstd, 1, 2, 3, 4, 5, 6, 7, 8], CompressionType.Zstd, "garbage");
    }

    [Theory]
    [InlineData(CompressionType.None)]
    [InlineData(CompressionType.Gzip)]
    [InlineData(CompressionType.Snappy)]
    [InlineData(CompressionType.Lz4)]
    [InlineData(CompressionType.Zstd)]
    public void Records_not_decoding_exactly_to_the_declared_count_are_invalid_record(CompressionType codec)
    {
        var records = FixtureRecords;
        byte[] Compress(byte[] data)
        {
            using var writer = new PooledBufferWriter();
            CompressionCodecs.Compress(codec, data, writer);
            return writer.ToArray();
        }
        // One record too few, one too many, a byte left over, a record length one too long.
        Assert.Equal(ErrorCodes.InvalidRecord, RecordBatchValidator.Validate(Wrap(Compress(records), codec, 5, 4, T, T)).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidRecord, RecordBatchValidator.Validate(Wrap(Compress(records), codec, 3, 2, T, T)).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidRecord, RecordBatchValidator.Validate(Wrap(Compress([.. records, 0]), codec, 4, 3, T, T)).ErrorCode);
        var longer = (byte[])records.Clone();
        longer[0] = 0x38; // first record claims 28 bytes, its fields take 27
        Assert.Equal(ErrorCodes.InvalidRecord, RecordBatchValidator.Validate(Wrap(Compress(longer), codec, 4, 3, T, T)).ErrorCode);
        Assert.True(RecordBatchValidator.Validate(Wrap(Compress(records), codec, 4, 3, T, T)).IsValid);
    }

    [Fact]
    public void Lz4_block_larger_than_the_frame_maximum_is_refused()
    {
        // Hand-made frame: 64 KiB blocks (id 4), one stored block claiming 64 KiB + 1.
        var frame = new List<byte>();
        frame.AddRange(BitConverter.GetBytes(0x184D2204u));
        byte flags = 0x60, descriptor = 0x40;
        frame.Add(flags);
        frame.Add(descriptor);
        frame.Add((byte)(XxHash32.HashToUInt32([flags, descriptor]) >> 8));
        var size = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(size, 0x80000000u | (64 * 1024 + 1));
        frame.AddRange(size);
        frame.AddRange(new byte[64 * 1024 + 1]);
        frame.AddRange(new byte[4]);
        AssertRefused(frame.ToArray(), CompressionType.Lz4, "oversized block");
    }
}
