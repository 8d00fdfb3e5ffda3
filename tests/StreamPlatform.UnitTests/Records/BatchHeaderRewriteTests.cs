using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Protos.Records;
using static StreamPlatform.UnitTests.Records.RecordTestData;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Records;

/// <summary>
/// What the broker rewrites in a produced batch header (Kafka's LogValidator: setMaxTimestamp)
/// and the record-level refusals it reports for every offending record (record_errors).
/// </summary>
public class BatchHeaderRewriteTests
{
    /// <summary>The fixture's four records (timestamps T, T+5, T+7, T+9) under a header claiming <paramref name="maxTimestamp"/>.</summary>
    private static byte[] Fixture(long maxTimestamp, short extraAttributes = 0, CompressionType codec = CompressionType.None)
    {
        var payload = FixtureRecords;
        if (codec != CompressionType.None)
        {
            using var writer = new PooledBufferWriter();
            CompressionCodecs.Compress(codec, FixtureRecords, writer);
            payload = writer.ToArray();
        }
        return Wrap(payload, codec, 4, 3, T, maxTimestamp, extraAttributes: extraAttributes);
    }

    private static bool CrcValid(byte[] batch) => RecordBatchHeader.ComputeCrc(batch) == new RecordBatchHeader(batch).Crc;

    [Theory]
    [InlineData(-1L, CompressionType.None)] // older sarama
    [InlineData(long.MaxValue, CompressionType.None)] // would defeat time retention
    [InlineData(T, CompressionType.Gzip)]
    [InlineData(T + 1000, CompressionType.Zstd)]
    public void Max_timestamp_is_set_from_the_records_and_the_crc_recomputed(long claimed, CompressionType codec)
    {
        var batch = Fixture(claimed, codec: codec);
        var before = (byte[])batch.Clone();
        var result = RecordBatchValidator.ValidateAndRewrite(batch);
        Assert.True(result.IsValid, result.Message);
        Assert.Equal(T + 9, result.MaxTimestamp);
        Assert.Equal(T + 9, new RecordBatchHeader(batch).MaxTimestamp);
        Assert.True(CrcValid(batch));
        // Only the max timestamp and the CRC changed.
        Assert.Equal(before[RecordBatchHeader.AttributesOffset..RecordBatchHeader.MaxTimestampOffset], batch[RecordBatchHeader.AttributesOffset..RecordBatchHeader.MaxTimestampOffset]);
        Assert.Equal(before[RecordBatchHeader.ProducerIdOffset..], batch[RecordBatchHeader.ProducerIdOffset..]);
        // Plain Validate reports the same but leaves the bytes alone.
        var untouched = Fixture(claimed, codec: codec);
        Assert.Equal(T + 9, RecordBatchValidator.Validate(untouched).MaxTimestamp);
        Assert.Equal(claimed, new RecordBatchHeader(untouched).MaxTimestamp);
    }

    [Fact]
    public void A_correct_header_is_not_written()
    {
        var batch = Fixture(T + 9, extraAttributes: 0x80); // an unknown bit Kafka keeps when it does not rewrite
        var before = (byte[])batch.Clone();
        Assert.True(RecordBatchValidator.ValidateAndRewrite(batch).IsValid);
        Assert.Equal(before, batch);
        // When it does rewrite, Kafka rebuilds the attributes: the unknown bit goes.
        var stale = Fixture(-1, extraAttributes: 0x80 | 0x40);
        Assert.True(RecordBatchValidator.ValidateAndRewrite(stale).IsValid);
        Assert.Equal(0x40, new RecordBatchHeader(stale).Attributes);
        Assert.True(CrcValid(stale));
    }

    [Fact]
    public void LogAppendTime_set_by_the_producer_on_a_CreateTime_topic_becomes_CreateTime()
    {
        // Kafka reads every record of such a batch as the batch's max timestamp, checks that, then
        // stores the batch as CreateTime with that max timestamp.
        var batch = Fixture(T + 100, extraAttributes: RecordBatchHeader.TimestampTypeFlag);
        var result = RecordBatchValidator.ValidateAndRewrite(batch);
        Assert.True(result.IsValid, result.Message);
        var header = new RecordBatchHeader(batch);
        Assert.Equal((TimestampType.CreateTime, T + 100), (header.TimestampType, header.MaxTimestamp));
        Assert.True(CrcValid(batch));

        // Without a timestamp to stand for the records, Kafka refuses it record by record.
        var none = Fixture(-1, extraAttributes: RecordBatchHeader.TimestampTypeFlag);
        var refused = RecordBatchValidator.ValidateAndRewrite(none);
        Assert.Equal(ErrorCodes.InvalidTimestamp, refused.ErrorCode);
        Assert.Equal([0, 1, 2, 3], refused.RecordErrors!.Select(e => e.BatchIndex));
    }

    [Fact]
    public void LogAppendTime_set_by_the_producer_on_a_LogAppendTime_topic_is_invalid_timestamp()
    {
        var options = new RecordBatchValidationOptions { TimestampType = TimestampType.LogAppendTime };
        var batch = Fixture(T + 9, extraAttributes: RecordBatchHeader.TimestampTypeFlag);
        var result = RecordBatchValidator.ValidateAndRewrite(batch, options);
        Assert.Equal(ErrorCodes.InvalidTimestamp, result.ErrorCode);
        Assert.Equal(4, result.RecordErrors!.Count);
        Assert.Contains("Producer should not set timestamp type to LogAppendTime", result.RecordErrors[0].Message);
        // A CreateTime batch on a LogAppendTime topic is fine; the append stamps it, not the validator.
        var plain = Fixture(-1);
        Assert.True(RecordBatchValidator.ValidateAndRewrite(plain, options).IsValid);
        Assert.Equal(-1, new RecordBatchHeader(plain).MaxTimestamp);
    }

    [Fact]
    public void Every_keyless_record_on_a_compacted_topic_is_listed()
    {
        using var builder = new RecordBatchBuilder { Compression = CompressionType.Lz4 };
        builder.Append(T, Utf8("k0"), Utf8("v")).Append(T, null, Utf8("v")).Append(T, Utf8("k2"), Utf8("v"))
            .Append(T, null, Utf8("v")).Append(T, null, Utf8("v"));
        var batch = builder.ToArray();
        var before = (byte[])batch.Clone();
        var result = RecordBatchValidator.ValidateAndRewrite(batch, new() { RequireKeys = true });
        Assert.Equal(ErrorCodes.InvalidRecord, result.ErrorCode);
        Assert.Equal([1, 3, 4], result.RecordErrors!.Select(e => e.BatchIndex));
        Assert.All(result.RecordErrors!, e => Assert.Equal("Compacted topic cannot accept message without key.", e.Message));
        Assert.Equal(
            "One or more records have been rejected due to 3 record errors in total, and only showing the first three errors at most: "
            + "[RecordError(batchIndex=1, message='Compacted topic cannot accept message without key.'), "
            + "RecordError(batchIndex=3, message='Compacted topic cannot accept message without key.'), "
            + "RecordError(batchIndex=4, message='Compacted topic cannot accept message without key.')]",
            result.Message);
        Assert.Equal(before, batch); // refused input is not rewritten
    }

    [Fact]
    public void Timestamps_out_of_range_are_listed_and_make_it_invalid_timestamp()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(T + 10));
        var options = new RecordBatchValidationOptions { TimeProvider = clock, TimestampBeforeMaxMs = 4, TimestampAfterMaxMs = 0, RequireKeys = true };
        // Records at T, T+5, T+7, T+9 (record 1 has a null key): now - 4 = T+6 excludes T and T+5.
        var result = RecordBatchValidator.Validate(Fixture(T + 9), options);
        Assert.Equal(ErrorCodes.InvalidTimestamp, result.ErrorCode);
        Assert.Equal("One or more records have been rejected due to invalid timestamp", result.Message);
        // Record 1 fails on its key (checked first), record 0 on its timestamp.
        Assert.Equal([0, 1], result.RecordErrors!.Select(e => e.BatchIndex));
        Assert.Equal($"Timestamp {T} of message with offset 0 is out of range. The timestamp should be within [{T + 6}, {T + 10}]", result.RecordErrors![0].Message);
        // A record without a timestamp (-1) is not checked.
        var noTimestamp = Wrap(FixtureRecords, CompressionType.None, 4, 3, baseTimestamp: -1, maxTimestamp: -1);
        var partly = RecordBatchValidator.Validate(noTimestamp, options with { RequireKeys = false });
        Assert.Equal([1, 2, 3], partly.RecordErrors!.Select(e => e.BatchIndex)); // 4, 6 and 8 are ancient; record 0's is -1
    }
}
