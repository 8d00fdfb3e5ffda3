using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Protos.Records;

/// <summary>What the broker's append path checks, mirroring Kafka's produce validation.</summary>
public sealed record RecordBatchValidationOptions
{
    /// <summary>Kafka's max.message.bytes default (1 MiB + 12 log overhead).</summary>
    public const int MaxMessageBytesDefault = 1_048_588;

    /// <summary>Largest batch (whole, incl. 12-byte log overhead) accepted: topic max.message.bytes. Bigger -> MESSAGE_TOO_LARGE.</summary>
    public int MaxMessageBytes { get; init; } = MaxMessageBytesDefault;
    /// <summary>Decode every record (decompressing if need be) and check the declared count matches.</summary>
    public bool VerifyRecords { get; init; } = true;
    /// <summary>Compacted topic: every record needs a key (null key -> INVALID_RECORD).</summary>
    public bool RequireKeys { get; init; }
    /// <summary>
    /// Input from a producer (not replication/recovery): base offset 0, no control batches, recordsCount equals
    /// lastOffsetDelta + 1, record offset deltas are 0..n-1, idempotent batches carry a sequence.
    /// </summary>
    public bool FromClient { get; init; } = true;
    /// <summary>Produce v3+: exactly one batch per partition (more, or none -> INVALID_RECORD).</summary>
    public bool SingleBatchRequired { get; init; } = true;
    /// <summary>False for produce requests below v7, which may not carry zstd (-> UNSUPPORTED_COMPRESSION_TYPE).</summary>
    public bool ZstdAllowed { get; init; } = true;
    /// <summary>Cap on one batch's decompressed records (decompression bombs) -> MESSAGE_TOO_LARGE.</summary>
    public int DecompressedBytesMax { get; init; } = CompressionCodecs.DecompressedBytesMaxDefault;
    /// <summary>message.timestamp.before.max.ms: CreateTime at most this far in the past; null = unlimited.</summary>
    public long? TimestampBeforeMaxMs { get; init; }
    /// <summary>message.timestamp.after.max.ms: CreateTime at most this far in the future; null = unlimited.</summary>
    public long? TimestampAfterMaxMs { get; init; }
    /// <summary>Clock for the timestamp checks.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

/// <summary>Outcome of <see cref="RecordBatchValidator.Validate"/>: a Kafka error code (0 = valid) and why.</summary>
public readonly record struct RecordBatchValidationResult(short ErrorCode, string? Message, int BatchCount, int RecordCount, int ValidBytes)
{
    public bool IsValid => ErrorCode == ErrorCodes.None;
}

/// <summary>
/// Validates produce input before it is appended. Error codes:
/// CORRUPT_MESSAGE(2) torn/garbled bytes, bad CRC, undecodable records or compressed data;
/// MESSAGE_TOO_LARGE(10) batch above max.message.bytes or decompressed records above the cap;
/// INVALID_TIMESTAMP(32) CreateTime outside the before/after window;
/// UNSUPPORTED_COMPRESSION_TYPE(76) codec id 5-7, or zstd when not allowed;
/// INVALID_RECORD(87) well-formed bytes breaking a rule (magic not 2, count mismatch, control
/// batch from a client, base offset not 0 from a client, missing key on a compacted topic,
/// bad offsets, no sequence).
/// Never throws for bad input.
/// </summary>
public static class RecordBatchValidator
{
    public static RecordBatchValidationResult Validate(ReadOnlySpan<byte> batches, RecordBatchValidationOptions? options = null)
    {
        options ??= new RecordBatchValidationOptions();
        var nowMs = options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();
        var batchCount = 0;
        var recordCount = 0;
        // The size limit is checked here rather than by the enumerator so that an oversized
        // batch is MESSAGE_TOO_LARGE, not a format error.
        var enumerator = new RecordBatchEnumerator(batches);
        var validBytes = 0;
        while (true)
        {
            var start = validBytes = enumerator.ValidBytes;
            if (RecordBatchHeader.TryReadTotalSize(batches[start..], out var declared) && declared > options.MaxMessageBytes)
                return Fail(ErrorCodes.MessageTooLarge, $"Batch at byte {start} is {declared} bytes, above max.message.bytes {options.MaxMessageBytes}.");
            if (!enumerator.MoveNext()) break;
            if (batchCount == 1 && options.SingleBatchRequired)
                return Fail(ErrorCodes.InvalidRecord, "Produce requests may carry exactly one record batch per partition.");
            var error = ValidateBatch(enumerator.Current, options, nowMs, out var records);
            if (error is { } e) return Fail(e.Code, $"Batch at byte {start}: {e.Message}");
            batchCount++;
            recordCount += records;
        }
        validBytes = enumerator.ValidBytes;
        if (enumerator.Error != BatchValidationError.None)
        {
            var ex = RecordBatchReader.Describe(enumerator.Error);
            var code = enumerator.Error == BatchValidationError.UnsupportedMagic ? ErrorCodes.InvalidRecord : ex.ErrorCode;
            return Fail(code, $"Batch at byte {enumerator.BatchStart}: {ex.Message}");
        }
        if (batchCount == 0 && options.SingleBatchRequired)
            return Fail(ErrorCodes.InvalidRecord, "Produce request carries no record batch.");
        return new RecordBatchValidationResult(ErrorCodes.None, null, batchCount, recordCount, enumerator.ValidBytes);

        RecordBatchValidationResult Fail(short code, string message) =>
            new(code, message, batchCount, recordCount, validBytes);
    }

    private static (short Code, string Message)? ValidateBatch(ReadOnlySpan<byte> batch, RecordBatchValidationOptions options, long nowMs, out int records)
    {
        records = 0;
        var header = new RecordBatchHeader(batch);
        var compression = header.Compression;
        if (compression == CompressionType.Zstd && !options.ZstdAllowed)
            return (ErrorCodes.UnsupportedCompressionType, "zstd needs produce request v7 or later.");
        if (options.FromClient)
        {
            if (header.IsControl) return (ErrorCodes.InvalidRecord, "Clients may not write control batches.");
            // Producers send 0; the broker assigns offsets. Kafka refuses anything else too.
            if (header.BaseOffset != 0) return (ErrorCodes.InvalidRecord, $"Base offset {header.BaseOffset} from a client; it must be 0.");
            if (header.RecordsCount <= 0) return (ErrorCodes.InvalidRecord, $"Record count {header.RecordsCount} is not positive.");
            if ((long)header.LastOffsetDelta + 1 != header.RecordsCount)
                return (ErrorCodes.InvalidRecord, $"Offset range {header.LastOffsetDelta + 1} differs from record count {header.RecordsCount}.");
            if (header.ProducerId >= 0 && header.BaseSequence < 0)
                return (ErrorCodes.InvalidRecord, $"Idempotent batch (producer {header.ProducerId}) without a base sequence.");
        }
        var checkTimestamps = header.TimestampType == TimestampType.CreateTime
            && (options.TimestampBeforeMaxMs is not null || options.TimestampAfterMaxMs is not null);
        if (!options.VerifyRecords && !options.RequireKeys && !checkTimestamps) return null;

        PooledBufferWriter? decompressed = null;
        try
        {
            var region = batch[RecordBatchHeader.Size..];
            if (compression != CompressionType.None)
            {
                decompressed = CompressionCodecs.DecompressPooled(compression, region, options.DecompressedBytesMax);
                region = decompressed.WrittenSpan;
            }
            var count = header.RecordsCount;
            if (count < 0 || count > region.Length / RecordParser.RecordBytesMin)
                return (ErrorCodes.InvalidRecord, $"Record count {count} impossible in {region.Length} bytes of records.");
            var cursor = new SpanCursor(region);
            for (var i = 0; i < count; i++)
            {
                if (cursor.Remaining == 0)
                    return (ErrorCodes.InvalidRecord, $"Batch declares {count} records but holds {i}.");
                var raw = RecordParser.ParseOne(ref cursor);
                if (options.FromClient && raw.OffsetDelta != i)
                    return (ErrorCodes.InvalidRecord, $"Record {i} has offset delta {raw.OffsetDelta}, expected {i}.");
                if (options.RequireKeys && raw.KeyLength < 0)
                    return (ErrorCodes.InvalidRecord, $"Record {i} has no key; compacted topics need one.");
                if (checkTimestamps)
                {
                    var ts = header.BaseTimestamp + raw.TimestampDelta;
                    if (options.TimestampBeforeMaxMs is { } before && nowMs - ts > before)
                        return (ErrorCodes.InvalidTimestamp, $"Record {i} timestamp {ts} is more than {before} ms before now ({nowMs}).");
                    if (options.TimestampAfterMaxMs is { } after && ts - nowMs > after)
                        return (ErrorCodes.InvalidTimestamp, $"Record {i} timestamp {ts} is more than {after} ms after now ({nowMs}).");
                }
            }
            if (cursor.Remaining != 0)
                return (ErrorCodes.InvalidRecord, $"{cursor.Remaining} bytes follow the {count} declared records.");
            records = count;
            return null;
        }
        catch (RecordBatchFormatException ex)
        {
            return (ex.ErrorCode, ex.Message);
        }
        finally
        {
            decompressed?.Dispose();
        }
    }
}
