using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;
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
    /// <summary>
    /// The topic's message.timestamp.type. CreateTime: record timestamps are checked against the
    /// window below and <see cref="RecordBatchValidator.ValidateAndRewrite"/> sets the batch's max
    /// timestamp from them. LogAppendTime: the append sets it (see PartitionLog.Append). Either
    /// way a batch whose records carry no timestamp but which claims LogAppendTime is refused.
    /// </summary>
    public TimestampType TimestampType { get; init; } = TimestampType.CreateTime;
    /// <summary>Where decompressed records are held while validated (default <see cref="DecompressionMemory.Default"/>).</summary>
    public ArrayPool<byte>? DecompressionPool { get; init; }
    /// <summary>message.timestamp.before.max.ms: CreateTime at most this far in the past; null = unlimited.</summary>
    public long? TimestampBeforeMaxMs { get; init; }
    /// <summary>message.timestamp.after.max.ms: CreateTime at most this far in the future; null = unlimited.</summary>
    public long? TimestampAfterMaxMs { get; init; }
    /// <summary>Clock for the timestamp checks.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

/// <summary>One record Kafka refuses, by its index in the batch (ProduceResponse record_errors, v8+).</summary>
public readonly record struct RecordValidationError(int BatchIndex, string Message);

/// <summary>
/// Outcome of <see cref="RecordBatchValidator.Validate"/>: a Kafka error code (0 = valid) and why.
/// <see cref="RecordErrors"/> lists every offending record when the refusal is about records
/// (null key on a compacted topic, timestamp out of range), as Kafka's RecordValidationException.
/// </summary>
public readonly record struct RecordBatchValidationResult(short ErrorCode, string? Message, int BatchCount, int RecordCount, int ValidBytes)
{
    public bool IsValid => ErrorCode == ErrorCodes.None;
    public IReadOnlyList<RecordValidationError>? RecordErrors { get; init; }
    /// <summary>Largest record timestamp of the (last) batch, -1 if none: what its header's max timestamp is set to.</summary>
    public long MaxTimestamp { get; init; }
}

/// <summary>
/// Validates produce input before it is appended, as Kafka's UnifiedLog.analyzeAndValidateRecords
/// and LogValidator do. Error codes:
/// CORRUPT_MESSAGE(2) torn/garbled batch framing, bad CRC;
/// UNKNOWN_SERVER_ERROR(-1) compressed data that does not decode (Kafka wraps the codec's
/// IOException in a KafkaException, which maps to no specific error);
/// MESSAGE_TOO_LARGE(10) batch above max.message.bytes or decompressed records above the cap;
/// INVALID_TIMESTAMP(32) CreateTime outside the before/after window, or LogAppendTime set by the producer;
/// UNSUPPORTED_COMPRESSION_TYPE(76) codec id 5-7, or zstd when not allowed;
/// INVALID_RECORD(87) well-formed batch bytes breaking a rule (magic not 2, count mismatch,
/// control batch from a client, base offset not 0 from a client, missing key on a compacted topic,
/// bad offsets, no sequence) and records that do not decode exactly to the declared count and lengths.
/// Record-level refusals (keys, timestamps) name every offending record, not just the first.
/// Never throws for bad input.
/// </summary>
public static class RecordBatchValidator
{
    /// <summary>Kafka lists at most this many record errors in the top-level message.</summary>
    private const int RecordErrorsInMessageMax = 3;

    /// <summary>Validates without changing anything.</summary>
    public static RecordBatchValidationResult Validate(ReadOnlySpan<byte> batches, RecordBatchValidationOptions? options = null)
        // Never written through: rewrite is false.
        => Run(MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(batches), batches.Length), options ?? new RecordBatchValidationOptions(), rewrite: false);

    /// <summary>
    /// Validates, then sets each valid CreateTime batch's header as Kafka's LogValidator does, in
    /// place: max timestamp = the largest record timestamp (a client may have sent -1 or anything),
    /// timestamp type CreateTime, and the CRC recomputed when those bytes changed (they lie inside
    /// it). Nothing is written when the header already says so (the usual case) or when the
    /// input is refused. LogAppendTime batches are stamped by the append instead.
    /// </summary>
    public static RecordBatchValidationResult ValidateAndRewrite(Span<byte> batches, RecordBatchValidationOptions? options = null)
        => Run(batches, options ?? new RecordBatchValidationOptions(), rewrite: true);

    private static RecordBatchValidationResult Run(Span<byte> batches, RecordBatchValidationOptions options, bool rewrite)
    {
        var nowMs = options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();
        var batchCount = 0;
        var recordCount = 0;
        var maxTimestamp = -1L;
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
            var batch = batches.Slice(start, enumerator.Current.Length);
            var outcome = ValidateBatch(batch, options, nowMs);
            if (outcome.Code != ErrorCodes.None)
            {
                var message = outcome.RecordErrors is null ? $"Batch at byte {start}: {outcome.Message}" : outcome.Message ?? "";
                return Fail(outcome.Code, message) with { RecordErrors = outcome.RecordErrors };
            }
            if (rewrite && outcome.Verified && options.TimestampType == TimestampType.CreateTime)
                SetCreateTime(batch, outcome.MaxTimestamp);
            maxTimestamp = outcome.MaxTimestamp;
            batchCount++;
            recordCount += outcome.Records;
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
        return new RecordBatchValidationResult(ErrorCodes.None, null, batchCount, recordCount, enumerator.ValidBytes) { MaxTimestamp = maxTimestamp };

        RecordBatchValidationResult Fail(short code, string message) =>
            new(code, message, batchCount, recordCount, validBytes);
    }

    /// <summary>Kafka's DefaultRecordBatch.setMaxTimestamp: rewrites only when something changes.</summary>
    private static void SetCreateTime(Span<byte> batch, long maxTimestamp)
    {
        var header = new RecordBatchHeader(batch);
        if (header.TimestampType == TimestampType.CreateTime && header.MaxTimestamp == maxTimestamp) return;
        RecordBatchHeader.SetMaxTimestamp(batch, TimestampType.CreateTime, maxTimestamp);
    }

    private readonly record struct BatchOutcome(short Code, string? Message, int Records, long MaxTimestamp, bool Verified, List<RecordValidationError>? RecordErrors)
    {
        public static BatchOutcome Error(short code, string message) => new(code, message, 0, -1, false, null);
    }

    private static BatchOutcome ValidateBatch(ReadOnlySpan<byte> batch, RecordBatchValidationOptions options, long nowMs)
    {
        var header = new RecordBatchHeader(batch);
        var compression = header.Compression;
        if (compression == CompressionType.Zstd && !options.ZstdAllowed)
            return BatchOutcome.Error(ErrorCodes.UnsupportedCompressionType, "zstd needs produce request v7 or later.");
        if (options.FromClient)
        {
            // Producers send 0; the broker assigns offsets. Kafka refuses anything else too.
            if (header.BaseOffset != 0) return BatchOutcome.Error(ErrorCodes.InvalidRecord, $"Base offset {header.BaseOffset} from a client; it must be 0.");
            if (header.RecordsCount <= 0) return BatchOutcome.Error(ErrorCodes.InvalidRecord, $"Record count {header.RecordsCount} is not positive.");
            if ((long)header.LastOffsetDelta + 1 != header.RecordsCount)
                return BatchOutcome.Error(ErrorCodes.InvalidRecord, $"Offset range {header.LastOffsetDelta + 1} differs from record count {header.RecordsCount}.");
            if (header.IsControl) return BatchOutcome.Error(ErrorCodes.InvalidRecord, "Clients may not write control batches.");
            if (header.ProducerId >= 0 && header.BaseSequence < 0)
                return BatchOutcome.Error(ErrorCodes.InvalidRecord, $"Idempotent batch (producer {header.ProducerId}) without a base sequence.");
        }
        if (!options.VerifyRecords && !options.RequireKeys && options.TimestampBeforeMaxMs is null && options.TimestampAfterMaxMs is null)
            return new BatchOutcome(ErrorCodes.None, null, header.RecordsCount, header.MaxTimestamp, false, null);

        PooledBufferWriter? decompressed = null;
        try
        {
            var region = batch[RecordBatchHeader.Size..];
            if (compression != CompressionType.None)
            {
                try
                {
                    decompressed = CompressionCodecs.DecompressPooled(compression, region, options.DecompressedBytesMax, options.DecompressionPool ?? DecompressionMemory.Default);
                }
                catch (RecordBatchFormatException ex) when (ex.ErrorCode == ErrorCodes.CorruptMessage)
                {
                    // Kafka: the codec's IOException becomes a KafkaException, answered UNKNOWN_SERVER_ERROR.
                    return BatchOutcome.Error(ErrorCodes.UnknownServerError, ex.Message);
                }
                region = decompressed.WrittenSpan;
            }
            return WalkRecords(header, region, options, nowMs);
        }
        catch (RecordBatchFormatException ex)
        {
            return BatchOutcome.Error(ex.ErrorCode, ex.Message);
        }
        finally
        {
            decompressed?.Dispose();
        }
    }

    /// <summary>
    /// Every record of the batch, as LogValidator iterates them: structure errors stop at once
    /// (INVALID_RECORD, Kafka's InvalidRecordException), key and timestamp errors are collected for
    /// all records and reported together.
    /// </summary>
    private static BatchOutcome WalkRecords(RecordBatchHeader header, ReadOnlySpan<byte> region, RecordBatchValidationOptions options, long nowMs)
    {
        var count = header.RecordsCount;
        if (count < 0 || count > region.Length / RecordParser.RecordBytesMin)
            return BatchOutcome.Error(ErrorCodes.InvalidRecord, $"Record count {count} impossible in {region.Length} bytes of records.");
        var logAppendTime = header.TimestampType == TimestampType.LogAppendTime;
        var createTime = options.TimestampType == TimestampType.CreateTime;
        var before = options.TimestampBeforeMaxMs ?? long.MaxValue;
        var after = options.TimestampAfterMaxMs ?? long.MaxValue;
        var cursor = new SpanCursor(region);
        var maxTimestamp = -1L;
        List<RecordValidationError>? errors = null;
        var timestampError = false;
        for (var i = 0; i < count; i++)
        {
            if (cursor.Remaining == 0)
                return BatchOutcome.Error(ErrorCodes.InvalidRecord, $"Batch declares {count} records but holds {i}.");
            RawRecord raw;
            try
            {
                raw = RecordParser.ParseOne(ref cursor);
            }
            catch (RecordBatchFormatException ex)
            {
                // Kafka: "Invalid record size" / "Found invalid record structure", both InvalidRecordException.
                return BatchOutcome.Error(ErrorCodes.InvalidRecord, $"Record {i}: {ex.Message}");
            }
            if (options.FromClient && raw.OffsetDelta != i)
                return BatchOutcome.Error(ErrorCodes.InvalidRecord, $"Record {i} has offset delta {raw.OffsetDelta}, expected {i}.");
            // A LogAppendTime batch's records all read as its max timestamp (DefaultRecord).
            var timestamp = logAppendTime ? header.MaxTimestamp : header.BaseTimestamp + raw.TimestampDelta;
            if (options.RequireKeys && raw.KeyLength < 0)
            {
                (errors ??= []).Add(new RecordValidationError(i, "Compacted topic cannot accept message without key."));
                continue;
            }
            if (createTime && timestamp != -1)
            {
                // Int128: a hostile timestamp near long.MinValue must not wrap the difference.
                var ageMs = (Int128)nowMs - timestamp;
                if (ageMs > before || -ageMs > after)
                {
                    timestampError = true;
                    (errors ??= []).Add(new RecordValidationError(i,
                        $"Timestamp {timestamp} of message with offset {raw.OffsetDelta} is out of range. The timestamp should be within [{Bound(nowMs, -(Int128)before)}, {Bound(nowMs, after)}]"));
                    continue;
                }
            }
            else if (logAppendTime)
            {
                timestampError = true;
                (errors ??= []).Add(new RecordValidationError(i, "Invalid timestamp type in message. Producer should not set timestamp type to LogAppendTime."));
                continue;
            }
            if (timestamp > maxTimestamp) maxTimestamp = timestamp;
        }
        if (cursor.Remaining != 0)
            return BatchOutcome.Error(ErrorCodes.InvalidRecord, $"{cursor.Remaining} bytes follow the {count} declared records.");
        if (errors is not null)
        {
            // Kafka's processRecordErrors: any timestamp error makes it INVALID_TIMESTAMP.
            if (timestampError)
                return new BatchOutcome(ErrorCodes.InvalidTimestamp, "One or more records have been rejected due to invalid timestamp", 0, -1, false, errors);
            var message = new StringBuilder($"One or more records have been rejected due to {errors.Count} record errors in total, and only showing the first three errors at most: [");
            for (var e = 0; e < Math.Min(errors.Count, RecordErrorsInMessageMax); e++)
                message.Append(e == 0 ? "" : ", ").Append("RecordError(batchIndex=").Append(errors[e].BatchIndex).Append(", message='").Append(errors[e].Message).Append("')");
            return new BatchOutcome(ErrorCodes.InvalidRecord, message.Append(']').ToString(), 0, -1, false, errors);
        }
        return new BatchOutcome(ErrorCodes.None, null, count, maxTimestamp, true, null);
    }

    private static long Bound(long nowMs, Int128 offsetMs)
    {
        var value = (Int128)nowMs + offsetMs;
        return value > long.MaxValue ? long.MaxValue : value < long.MinValue ? long.MinValue : (long)value;
    }
}
