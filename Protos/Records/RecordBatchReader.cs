using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Protos.Records;

/// <summary>Limits and checks applied while decoding.</summary>
public sealed record RecordBatchReaderOptions
{
    public static readonly RecordBatchReaderOptions Default = new();

    /// <summary>Cap on one batch's decompressed records region (decompression bombs); bigger -> MESSAGE_TOO_LARGE.</summary>
    public int DecompressedBytesMax { get; init; } = CompressionCodecs.DecompressedBytesMaxDefault;
    /// <summary>
    /// Cap on records materialized per batch: each decoded <see cref="Record"/> costs ~90 bytes, so
    /// 64 MiB of minimal 7-byte records would otherwise become ~900 MB of objects. Kafka clients
    /// send at most tens of thousands per batch (librdkafka batch.num.messages 10000). Bigger ->
    /// MESSAGE_TOO_LARGE.
    /// </summary>
    public int RecordsCountMax { get; init; } = RecordsCountMaxDefault;
    public const int RecordsCountMaxDefault = 1 << 20;
    /// <summary>Check the CRC-32C before decoding (off only where the caller already did).</summary>
    public bool VerifyCrc { get; init; } = true;
}

/// <summary>
/// A decoded v2 batch: header fields plus its records. Owns the pooled decompression buffer of a
/// compressed batch; record keys/values/headers slice into it (or into the input bytes when
/// uncompressed) and are invalid after <see cref="Dispose"/>.
/// </summary>
public sealed class DecodedRecordBatch : IDisposable
{
    private PooledBufferWriter? _decompressed;

    internal DecodedRecordBatch(ReadOnlySpan<byte> batch, Record[] records, PooledBufferWriter? decompressed)
    {
        var header = new RecordBatchHeader(batch);
        BaseOffset = header.BaseOffset;
        BatchLength = header.BatchLength;
        PartitionLeaderEpoch = header.PartitionLeaderEpoch;
        Crc = header.Crc;
        Attributes = header.Attributes;
        LastOffsetDelta = header.LastOffsetDelta;
        BaseTimestamp = header.BaseTimestamp;
        MaxTimestamp = header.MaxTimestamp;
        ProducerId = header.ProducerId;
        ProducerEpoch = header.ProducerEpoch;
        BaseSequence = header.BaseSequence;
        Records = records;
        _decompressed = decompressed;
    }

    public long BaseOffset { get; }
    public int BatchLength { get; }
    public int TotalSize => BatchLength + RecordBatchHeader.LogOverhead;
    public int PartitionLeaderEpoch { get; }
    public uint Crc { get; }
    public short Attributes { get; }
    public int LastOffsetDelta { get; }
    public long LastOffset => BaseOffset + LastOffsetDelta;
    public long BaseTimestamp { get; }
    public long MaxTimestamp { get; }
    public long ProducerId { get; }
    public short ProducerEpoch { get; }
    public int BaseSequence { get; }
    public CompressionType Compression => (CompressionType)(Attributes & RecordBatchHeader.CompressionMask);
    public TimestampType TimestampType => (Attributes & RecordBatchHeader.TimestampTypeFlag) != 0 ? TimestampType.LogAppendTime : TimestampType.CreateTime;
    public bool IsTransactional => (Attributes & RecordBatchHeader.TransactionalFlag) != 0;
    public bool IsControl => (Attributes & RecordBatchHeader.ControlFlag) != 0;
    public IReadOnlyList<Record> Records { get; }

    /// <summary>The control records of a control batch (ABORT/COMMIT markers).</summary>
    public IReadOnlyList<ControlRecord> ControlRecords()
    {
        if (!IsControl) throw new InvalidOperationException("Not a control batch.");
        var list = new ControlRecord[Records.Count];
        for (var i = 0; i < list.Length; i++) list[i] = ControlRecord.Parse(Records[i]);
        return list;
    }

    public void Dispose()
    {
        _decompressed?.Dispose();
        _decompressed = null;
    }
}

/// <summary>
/// Decodes record batches v2. Bad bytes of any kind throw <see cref="RecordBatchFormatException"/>
/// carrying the Kafka error code; nothing else escapes for malformed input.
/// </summary>
public static class RecordBatchReader
{
    /// <summary>Decodes exactly one batch (<paramref name="batch"/> may extend past it; the rest is ignored).</summary>
    public static DecodedRecordBatch Read(ReadOnlyMemory<byte> batch, RecordBatchReaderOptions? options = null)
    {
        options ??= RecordBatchReaderOptions.Default;
        var span = batch.Span;
        var enumerator = new RecordBatchEnumerator(span, verifyCrc: options.VerifyCrc);
        if (!enumerator.MoveNext())
            throw Describe(enumerator.Error == BatchValidationError.None ? BatchValidationError.Truncated : enumerator.Error);
        var size = enumerator.Current.Length;
        return Decode(batch[..size], options);
    }

    /// <summary>Decodes every batch of a buffer of concatenated batches (a fetch response, a segment slice).</summary>
    public static List<DecodedRecordBatch> ReadAll(ReadOnlyMemory<byte> batches, RecordBatchReaderOptions? options = null)
    {
        options ??= RecordBatchReaderOptions.Default;
        var result = new List<DecodedRecordBatch>();
        try
        {
            var position = 0;
            while (position < batches.Length)
            {
                var decoded = Read(batches[position..], options);
                result.Add(decoded);
                position += decoded.TotalSize;
            }
            return result;
        }
        catch
        {
            foreach (var b in result) b.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Streams the records of one batch without materializing them. For a compressed batch the
    /// records are decompressed (bounded) into <paramref name="decompressed"/>, which the caller
    /// must dispose after enumerating; it is null for uncompressed batches (views slice the input).
    /// </summary>
    public static RecordViewEnumerator EnumerateRecords(ReadOnlySpan<byte> batch, out PooledBufferWriter? decompressed, RecordBatchReaderOptions? options = null)
    {
        options ??= RecordBatchReaderOptions.Default;
        var enumerator = new RecordBatchEnumerator(batch, verifyCrc: options.VerifyCrc);
        if (!enumerator.MoveNext())
            throw Describe(enumerator.Error == BatchValidationError.None ? BatchValidationError.Truncated : enumerator.Error);
        var whole = enumerator.Current;
        var header = new RecordBatchHeader(whole);
        var region = whole[RecordBatchHeader.Size..];
        decompressed = null;
        if (header.Compression != CompressionType.None)
        {
            decompressed = CompressionCodecs.DecompressPooled(header.Compression, region, options.DecompressedBytesMax);
            region = decompressed.WrittenSpan;
        }
        try
        {
            long? logAppendTime = header.TimestampType == TimestampType.LogAppendTime ? header.MaxTimestamp : null;
            return new RecordViewEnumerator(region, header.RecordsCount, header.BaseOffset, header.BaseTimestamp, logAppendTime);
        }
        catch
        {
            decompressed?.Dispose();
            decompressed = null;
            throw;
        }
    }

    internal static RecordBatchFormatException Describe(BatchValidationError error) => error switch
    {
        BatchValidationError.Truncated => new("Record batch truncated."),
        BatchValidationError.InvalidLength => new("Record batch length invalid or above the limit."),
        BatchValidationError.UnsupportedMagic => new("Record batch magic is not 2."),
        BatchValidationError.CrcMismatch => new("Record batch CRC-32C mismatch."),
        BatchValidationError.InvalidRecordCount => new("Record batch record count and offset delta disagree.", ErrorCodes.InvalidRecord),
        BatchValidationError.UnsupportedCompression => new("Record batch compression type unknown.", ErrorCodes.UnsupportedCompressionType),
        _ => new($"Record batch invalid: {error}."),
    };

    private static DecodedRecordBatch Decode(ReadOnlyMemory<byte> batch, RecordBatchReaderOptions options)
    {
        var header = new RecordBatchHeader(batch.Span);
        var count = header.RecordsCount;
        var compression = header.Compression;
        var body = batch[RecordBatchHeader.Size..];
        // Checked before decompressing: the header's count is enough to refuse.
        if (count > options.RecordsCountMax)
            throw new RecordBatchFormatException($"Record batch declares {count} records, above the limit of {options.RecordsCountMax}.", ErrorCodes.MessageTooLarge);
        PooledBufferWriter? decompressed = null;
        try
        {
            ReadOnlyMemory<byte> records = body;
            if (compression != CompressionType.None)
            {
                decompressed = CompressionCodecs.DecompressPooled(compression, body.Span, options.DecompressedBytesMax);
                records = decompressed.WrittenMemory;
            }
            var baseOffset = header.BaseOffset;
            var baseTimestamp = header.BaseTimestamp;
            long? logAppendTime = header.TimestampType == TimestampType.LogAppendTime ? header.MaxTimestamp : null;
            var result = Parse(records, count, baseOffset, baseTimestamp, logAppendTime);
            return new DecodedRecordBatch(batch.Span, result, decompressed);
        }
        catch
        {
            decompressed?.Dispose();
            throw;
        }
    }

    private static Record[] Parse(ReadOnlyMemory<byte> records, int count, long baseOffset, long baseTimestamp, long? logAppendTime)
    {
        // Bound the count by the bytes present before allocating anything sized by it.
        if (count < 0 || count > records.Length / RecordParser.RecordBytesMin)
            throw new RecordBatchFormatException($"Record count {count} impossible in {records.Length} bytes of records.", ErrorCodes.InvalidRecord);
        var result = new Record[count];
        var cursor = new SpanCursor(records.Span);
        for (var i = 0; i < count; i++)
        {
            if (cursor.Remaining == 0)
                throw new RecordBatchFormatException($"Record batch declares {count} records but holds {i}.", ErrorCodes.InvalidRecord);
            var raw = RecordParser.ParseOne(ref cursor);
            result[i] = new Record(
                baseOffset + raw.OffsetDelta,
                raw.OffsetDelta,
                logAppendTime ?? baseTimestamp + raw.TimestampDelta,
                raw.TimestampDelta,
                raw.Attributes,
                raw.KeyLength < 0 ? (ReadOnlyMemory<byte>?)null : records.Slice(raw.KeyStart, raw.KeyLength),
                raw.ValueLength < 0 ? (ReadOnlyMemory<byte>?)null : records.Slice(raw.ValueStart, raw.ValueLength),
                RecordParser.ReadHeaders(records, raw));
        }
        if (cursor.Remaining != 0)
            throw new RecordBatchFormatException($"Record batch has {cursor.Remaining} bytes after its {count} declared records.", ErrorCodes.InvalidRecord);
        return result;
    }
}
