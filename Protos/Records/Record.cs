using System.Buffers.Binary;
using System.Text;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Protos.Records;

/// <summary>A record header: UTF-8 key (never null on the wire) and an optional value.</summary>
public readonly record struct RecordHeader(string Key, ReadOnlyMemory<byte>? Value)
{
    /// <summary>
    /// Array form: a null <c>byte[]</c> converted to <c>ReadOnlyMemory&lt;byte&gt;?</c> would become an
    /// empty value; here null stays null (value length -1).
    /// </summary>
    public RecordHeader(string key, byte[]? value)
        : this(key, value is null ? (ReadOnlyMemory<byte>?)null : value)
    {
    }
}

/// <summary>
/// One decoded record of a v2 batch. <see cref="Key"/>, <see cref="Value"/> and header values are
/// slices of the batch bytes (uncompressed) or of the decompressed buffer owned by the
/// <see cref="DecodedRecordBatch"/> they came from; they are valid while that batch is.
/// </summary>
public readonly struct Record
{
    public Record(long offset, int offsetDelta, long timestamp, long timestampDelta, byte attributes,
        ReadOnlyMemory<byte>? key, ReadOnlyMemory<byte>? value, RecordHeader[] headers)
    {
        Offset = offset;
        OffsetDelta = offsetDelta;
        Timestamp = timestamp;
        TimestampDelta = timestampDelta;
        Attributes = attributes;
        Key = key;
        Value = value;
        Headers = headers;
    }

    /// <summary>Absolute offset: batch base offset + <see cref="OffsetDelta"/>.</summary>
    public long Offset { get; }
    public int OffsetDelta { get; }
    /// <summary>Base timestamp + delta, or the batch's max timestamp for LogAppendTime batches (as Kafka reports it).</summary>
    public long Timestamp { get; }
    public long TimestampDelta { get; }
    /// <summary>Record-level attributes; unused by Kafka (always 0) but carried.</summary>
    public byte Attributes { get; }
    /// <summary>Null when the key length is -1.</summary>
    public ReadOnlyMemory<byte>? Key { get; }
    /// <summary>Null for a tombstone (value length -1); empty is a legal non-null value.</summary>
    public ReadOnlyMemory<byte>? Value { get; }
    public IReadOnlyList<RecordHeader> Headers { get; }
    public bool IsTombstone => Value is null;
}

public enum ControlRecordType : short
{
    Abort = 0,
    Commit = 1,
}

/// <summary>
/// A control record of a control batch: key = (version int16, type int16), value = EndTxnMarker
/// (version int16, coordinatorEpoch int32) for ABORT/COMMIT.
/// </summary>
public readonly record struct ControlRecord(short KeyVersion, ControlRecordType Type, short ValueVersion, int CoordinatorEpoch)
{
    public const int KeySizeBytes = 4;
    public const int EndTxnMarkerSizeBytes = 6;

    /// <summary>Parses the key and value of a record from a control batch.</summary>
    public static ControlRecord Parse(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, bool valueIsNull = false)
    {
        if (key.Length < KeySizeBytes)
            throw new RecordBatchFormatException($"Control record key needs {KeySizeBytes} bytes, got {key.Length}.", ErrorCodes.InvalidRecord);
        var keyVersion = BinaryPrimitives.ReadInt16BigEndian(key);
        if (keyVersion < 0)
            throw new RecordBatchFormatException($"Invalid control record key version {keyVersion}.", ErrorCodes.InvalidRecord);
        var type = BinaryPrimitives.ReadInt16BigEndian(key[2..]);
        if (type is not ((short)ControlRecordType.Abort or (short)ControlRecordType.Commit))
            throw new RecordBatchFormatException($"Unknown control record type {type}.", ErrorCodes.InvalidRecord);
        if (valueIsNull || value.Length < EndTxnMarkerSizeBytes)
            throw new RecordBatchFormatException($"End transaction marker needs {EndTxnMarkerSizeBytes} bytes, got {(valueIsNull ? -1 : value.Length)}.", ErrorCodes.InvalidRecord);
        var valueVersion = BinaryPrimitives.ReadInt16BigEndian(value);
        if (valueVersion < 0)
            throw new RecordBatchFormatException($"Invalid end transaction marker version {valueVersion}.", ErrorCodes.InvalidRecord);
        // Later marker versions may append fields; version 0 fields are a prefix of all of them.
        return new ControlRecord(keyVersion, (ControlRecordType)type, valueVersion, BinaryPrimitives.ReadInt32BigEndian(value[2..]));
    }

    public static ControlRecord Parse(in Record record)
    {
        if (record.Key is not { } key)
            throw new RecordBatchFormatException("Control record without a key.", ErrorCodes.InvalidRecord);
        return Parse(key.Span, record.Value is { } v ? v.Span : default, record.Value is null);
    }

    public static void WriteKey(Span<byte> destination, ControlRecordType type, short version = 0)
    {
        BinaryPrimitives.WriteInt16BigEndian(destination, version);
        BinaryPrimitives.WriteInt16BigEndian(destination[2..], (short)type);
    }

    public static void WriteValue(Span<byte> destination, int coordinatorEpoch, short version = 0)
    {
        BinaryPrimitives.WriteInt16BigEndian(destination, version);
        BinaryPrimitives.WriteInt32BigEndian(destination[2..], coordinatorEpoch);
    }
}

/// <summary>Positions of one record's fields inside the records region (no copies, no allocation).</summary>
internal readonly struct RawRecord
{
    public byte Attributes { get; init; }
    public long TimestampDelta { get; init; }
    public int OffsetDelta { get; init; }
    public int KeyStart { get; init; }
    /// <summary>-1 for a null key.</summary>
    public int KeyLength { get; init; }
    public int ValueStart { get; init; }
    /// <summary>-1 for a null value.</summary>
    public int ValueLength { get; init; }
    public int HeaderCount { get; init; }
    public int HeadersStart { get; init; }
    public int End { get; init; }
}

/// <summary>
/// Walks the records region of a v2 batch (after the 61-byte header, decompressed if need be).
/// Record layout: length varint, attributes int8, timestampDelta varlong, offsetDelta varint,
/// keyLength varint, key, valueLength varint, value, headerCount varint,
/// headers (keyLength varint, key, valueLength varint, value).
/// </summary>
internal static class RecordParser
{
    /// <summary>Smallest record on the wire: 7 one-byte fields (length..headerCount).</summary>
    public const int RecordBytesMin = 7;
    /// <summary>Smallest header: key length 0 and value length -1, one byte each.</summary>
    public const int HeaderBytesMin = 2;

    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    public static RawRecord ParseOne(ref SpanCursor cursor)
    {
        var start = cursor.Position;
        var length = cursor.ReadVarint();
        var bodyStart = cursor.Position;
        if (length < RecordBytesMin - 1 || length > cursor.Remaining)
            throw new RecordBatchFormatException($"Invalid record length {length} at position {start} ({cursor.Remaining} bytes left).");
        var end = bodyStart + length;
        var attributes = (byte)cursor.ReadInt8();
        var timestampDelta = cursor.ReadVarlong();
        var offsetDelta = cursor.ReadVarint();
        var keyLength = cursor.ReadVarint();
        if (keyLength < -1) throw new RecordBatchFormatException($"Invalid key length {keyLength} at position {start}.");
        var keyStart = keyLength >= 0 ? cursor.Skip(keyLength) : cursor.Position;
        var valueLength = cursor.ReadVarint();
        if (valueLength < -1) throw new RecordBatchFormatException($"Invalid value length {valueLength} at position {start}.");
        var valueStart = valueLength >= 0 ? cursor.Skip(valueLength) : cursor.Position;
        var headerCount = cursor.ReadVarint();
        if (headerCount < 0 || headerCount > (end - cursor.Position) / HeaderBytesMin)
            throw new RecordBatchFormatException($"Invalid header count {headerCount} at position {start}.");
        var headersStart = cursor.Position;
        for (var i = 0; i < headerCount; i++)
        {
            var hk = cursor.ReadVarint();
            if (hk < 0) throw new RecordBatchFormatException($"Invalid header key length {hk} at position {start}.");
            cursor.Skip(hk);
            var hv = cursor.ReadVarint();
            if (hv < -1) throw new RecordBatchFormatException($"Invalid header value length {hv} at position {start}.");
            if (hv > 0) cursor.Skip(hv);
        }
        if (cursor.Position != end)
            throw new RecordBatchFormatException($"Record at position {start} declares {length} bytes but its fields take {cursor.Position - bodyStart}.");
        return new RawRecord
        {
            Attributes = attributes, TimestampDelta = timestampDelta, OffsetDelta = offsetDelta,
            KeyStart = keyStart, KeyLength = keyLength, ValueStart = valueStart, ValueLength = valueLength,
            HeaderCount = headerCount, HeadersStart = headersStart, End = end,
        };
    }

    /// <summary>Header entries of an already validated record, values as slices of <paramref name="records"/>.</summary>
    public static RecordHeader[] ReadHeaders(ReadOnlyMemory<byte> records, in RawRecord raw)
    {
        if (raw.HeaderCount == 0) return [];
        var headers = new RecordHeader[raw.HeaderCount];
        var cursor = new SpanCursor(records.Span[raw.HeadersStart..raw.End]);
        for (var i = 0; i < headers.Length; i++)
        {
            var hk = cursor.ReadVarint();
            var keyStart = cursor.Skip(hk);
            // Kafka decodes header keys leniently (invalid UTF-8 becomes U+FFFD); so do we.
            var key = Utf8.GetString(records.Span.Slice(raw.HeadersStart + keyStart, hk));
            var hv = cursor.ReadVarint();
            ReadOnlyMemory<byte>? value = hv < 0 ? (ReadOnlyMemory<byte>?)null : records.Slice(raw.HeadersStart + cursor.Skip(hv), hv);
            headers[i] = new RecordHeader(key, value);
        }
        return headers;
    }
}
