using System.Buffers.Binary;
using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Protos.Records;
using static StreamPlatform.UnitTests.Records.RecordTestData;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Records;

public class RecordBatchValidatorTests
{
    private static byte[] Batch(CompressionType codec = CompressionType.None, bool nullKey = false, long timestamp = T)
    {
        using var builder = new RecordBatchBuilder { Compression = codec };
        builder.Append(timestamp, Utf8("a"), Utf8("1"))
            .Append(timestamp, nullKey ? null : Utf8("b"), Utf8("2"));
        return builder.ToArray();
    }

    [Fact]
    public void Valid_batch_passes_with_counts()
    {
        var bytes = Batch();
        var result = RecordBatchValidator.Validate(bytes);
        Assert.True(result.IsValid, result.Message);
        Assert.Equal(ErrorCodes.None, result.ErrorCode);
        Assert.Equal(1, result.BatchCount);
        Assert.Equal(2, result.RecordCount);
        Assert.Equal(bytes.Length, result.ValidBytes);
    }

    [Fact]
    public void Flipped_crc_covered_byte_is_corrupt_message()
    {
        var bytes = Batch();
        bytes[^2] ^= 0x40;
        var result = RecordBatchValidator.Validate(bytes);
        Assert.Equal(ErrorCodes.CorruptMessage, result.ErrorCode);
        Assert.Contains("CRC", result.Message);
        Assert.Equal(0, result.ValidBytes);
    }

    [Fact]
    public void Truncated_batch_is_corrupt_message()
    {
        var bytes = Batch();
        Assert.Equal(ErrorCodes.CorruptMessage, RecordBatchValidator.Validate(bytes.AsSpan(0, bytes.Length - 1)).ErrorCode);
        Assert.Equal(ErrorCodes.CorruptMessage, RecordBatchValidator.Validate(bytes.AsSpan(0, 30)).ErrorCode);
    }

    [Fact]
    public void Batch_above_max_message_bytes_is_message_too_large()
    {
        var bytes = Batch();
        var result = RecordBatchValidator.Validate(bytes, new() { MaxMessageBytes = bytes.Length - 1 });
        Assert.Equal(ErrorCodes.MessageTooLarge, result.ErrorCode);
        Assert.True(RecordBatchValidator.Validate(bytes, new() { MaxMessageBytes = bytes.Length }).IsValid);
    }

    [Theory]
    [InlineData(CompressionType.None)]
    [InlineData(CompressionType.Zstd)]
    public void Null_key_on_compacted_topic_is_invalid_record(CompressionType codec)
    {
        var compacted = new RecordBatchValidationOptions { RequireKeys = true };
        Assert.Equal(ErrorCodes.InvalidRecord, RecordBatchValidator.Validate(Batch(codec, nullKey: true), compacted).ErrorCode);
        Assert.True(RecordBatchValidator.Validate(Batch(codec), compacted).IsValid);
        Assert.True(RecordBatchValidator.Validate(Batch(codec, nullKey: true)).IsValid);
    }

    [Fact]
    public void Zstd_before_produce_v7_is_unsupported_compression()
    {
        var result = RecordBatchValidator.Validate(Batch(CompressionType.Zstd), new() { ZstdAllowed = false });
        Assert.Equal(ErrorCodes.UnsupportedCompressionType, result.ErrorCode);
    }

    [Fact]
    public void Unknown_codec_id_is_unsupported_compression()
    {
        var bytes = Batch();
        bytes[22] |= 0x06; // compression bits = 6
        FixCrc(bytes);
        Assert.Equal(ErrorCodes.UnsupportedCompressionType, RecordBatchValidator.Validate(bytes).ErrorCode);
        var ex = Assert.Throws<RecordBatchFormatException>(() => RecordBatchReader.Read(bytes));
        Assert.Equal(ErrorCodes.UnsupportedCompressionType, ex.ErrorCode);
    }

    [Fact]
    public void Timestamps_outside_the_window_are_invalid_timestamp()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(T));
        var options = new RecordBatchValidationOptions { TimeProvider = clock, TimestampBeforeMaxMs = 3_600_000, TimestampAfterMaxMs = 3_600_000 };
        Assert.True(RecordBatchValidator.Validate(Batch(timestamp: T - 3_600_000), options).IsValid);
        Assert.Equal(ErrorCodes.InvalidTimestamp, RecordBatchValidator.Validate(Batch(timestamp: T - 3_600_001), options).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidTimestamp, RecordBatchValidator.Validate(Batch(CompressionType.Gzip, timestamp: T + 3_600_001), options).ErrorCode);
        clock.Advance(TimeSpan.FromHours(2));
        Assert.Equal(ErrorCodes.InvalidTimestamp, RecordBatchValidator.Validate(Batch(timestamp: T), options).ErrorCode);
        // No window configured: anything goes (Kafka's defaults are unlimited before 4.0).
        Assert.True(RecordBatchValidator.Validate(Batch(timestamp: 0), new() { TimeProvider = clock }).IsValid);
    }

    [Fact]
    public void Two_batches_in_one_produce_partition_are_invalid_record()
    {
        var two = Batch().Concat(Batch(CompressionType.Snappy)).ToArray();
        var result = RecordBatchValidator.Validate(two);
        Assert.Equal(ErrorCodes.InvalidRecord, result.ErrorCode);
        var relaxed = RecordBatchValidator.Validate(two, new() { SingleBatchRequired = false });
        Assert.True(relaxed.IsValid, relaxed.Message);
        Assert.Equal(2, relaxed.BatchCount);
        Assert.Equal(4, relaxed.RecordCount);
    }

    [Fact]
    public void Empty_produce_input_is_invalid_record()
    {
        Assert.Equal(ErrorCodes.InvalidRecord, RecordBatchValidator.Validate([]).ErrorCode);
        Assert.True(RecordBatchValidator.Validate([], new() { SingleBatchRequired = false }).IsValid);
    }

    [Fact]
    public void Declared_count_above_records_present_is_invalid_record()
    {
        var bytes = Wrap(FixtureRecords, CompressionType.None, count: 5, lastOffsetDelta: 4, T, T + 9);
        Assert.Equal(ErrorCodes.InvalidRecord, RecordBatchValidator.Validate(bytes).ErrorCode);
        var ex = Assert.Throws<RecordBatchFormatException>(() => RecordBatchReader.Read(bytes));
        Assert.Equal(ErrorCodes.InvalidRecord, ex.ErrorCode);
    }

    [Fact]
    public void Records_beyond_the_declared_count_are_invalid_record()
    {
        var bytes = Wrap(FixtureRecords, CompressionType.None, count: 3, lastOffsetDelta: 2, T, T + 9);
        Assert.Equal(ErrorCodes.InvalidRecord, RecordBatchValidator.Validate(bytes).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidRecord, Assert.Throws<RecordBatchFormatException>(() => RecordBatchReader.Read(bytes)).ErrorCode);
        // Without decoding records the header alone looks fine.
        Assert.True(RecordBatchValidator.Validate(bytes, new() { VerifyRecords = false }).IsValid);
    }

    [Fact]
    public void Offset_range_not_matching_count_from_a_client_is_invalid_record()
    {
        var bytes = Wrap(FixtureRecords, CompressionType.None, count: 4, lastOffsetDelta: 9, T, T + 9);
        Assert.Equal(ErrorCodes.InvalidRecord, RecordBatchValidator.Validate(bytes).ErrorCode);
    }

    [Fact]
    public void Nonzero_base_offset_from_a_client_is_invalid_record()
    {
        var bytes = Batch();
        RecordBatchHeader.SetBaseOffset(bytes, 5);
        var result = RecordBatchValidator.Validate(bytes);
        Assert.Equal(ErrorCodes.InvalidRecord, result.ErrorCode);
        Assert.Contains("Base offset", result.Message);
        Assert.True(RecordBatchValidator.Validate(bytes, new() { FromClient = false }).IsValid);
    }

    [Fact]
    public void Old_magic_is_invalid_record()
    {
        var bytes = Batch();
        bytes[16] = 1;
        Assert.Equal(ErrorCodes.InvalidRecord, RecordBatchValidator.Validate(bytes).ErrorCode);
        Assert.Throws<RecordBatchFormatException>(() => RecordBatchReader.Read(bytes));
    }

    [Fact]
    public void Idempotent_batch_without_sequence_is_invalid_record()
    {
        var bytes = Wrap(FixtureRecords, CompressionType.None, 4, 3, T, T + 9, producerId: 7, baseSequence: -1);
        Assert.Equal(ErrorCodes.InvalidRecord, RecordBatchValidator.Validate(bytes).ErrorCode);
        var ok = Wrap(FixtureRecords, CompressionType.None, 4, 3, T, T + 9, producerId: 7, baseSequence: 0);
        Assert.True(RecordBatchValidator.Validate(ok).IsValid);
    }

    [Fact]
    public void Record_length_disagreeing_with_its_fields_is_invalid_record()
    {
        var records = (byte[])FixtureRecords.Clone();
        records[0] = 0x38; // first record claims 28 bytes, its fields take 27
        var bytes = Wrap(records, CompressionType.None, 4, 3, T, T + 9);
        // Kafka's DefaultRecord.readFrom: "Invalid record size" is an InvalidRecordException.
        Assert.Equal(ErrorCodes.InvalidRecord, RecordBatchValidator.Validate(bytes).ErrorCode);
        Assert.Equal(ErrorCodes.CorruptMessage, Assert.Throws<RecordBatchFormatException>(() => RecordBatchReader.Read(bytes)).ErrorCode);
    }

    [Fact]
    public void Overlong_varint_is_invalid_record()
    {
        // Record: length 12, attrs 0, then a 6-byte varint where a timestamp delta is fine but the
        // offset delta (int32) allows at most 5.
        byte[] records = [0x18, 0x00, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00];
        var bytes = Wrap(records, CompressionType.None, 1, 0, T, T);
        var ex = Assert.Throws<RecordBatchFormatException>(() => RecordBatchReader.Read(bytes));
        Assert.Contains("Varint", ex.Message);
        // Kafka: the varint's IllegalArgumentException becomes "Found invalid record structure" (InvalidRecordException).
        Assert.Equal(ErrorCodes.InvalidRecord, RecordBatchValidator.Validate(bytes).ErrorCode);
    }
}
