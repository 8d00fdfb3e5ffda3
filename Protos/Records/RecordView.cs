using System.Text;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Protos.Records;

/// <summary>
/// One record as spans into the records region: no allocation at all (not even header arrays).
/// For hot loops over many records (compaction key maps, index building). Valid only while the
/// bytes it points into are.
/// </summary>
public readonly ref struct RecordView
{
    private readonly ReadOnlySpan<byte> _headers;

    internal RecordView(ReadOnlySpan<byte> records, RawRecord raw, long baseOffset, long timestamp)
    {
        Offset = baseOffset + raw.OffsetDelta;
        OffsetDelta = raw.OffsetDelta;
        Timestamp = timestamp;
        TimestampDelta = raw.TimestampDelta;
        Attributes = raw.Attributes;
        KeyIsNull = raw.KeyLength < 0;
        Key = KeyIsNull ? default : records.Slice(raw.KeyStart, raw.KeyLength);
        ValueIsNull = raw.ValueLength < 0;
        Value = ValueIsNull ? default : records.Slice(raw.ValueStart, raw.ValueLength);
        HeaderCount = raw.HeaderCount;
        _headers = records[raw.HeadersStart..raw.End];
    }

    public long Offset { get; }
    public int OffsetDelta { get; }
    public long Timestamp { get; }
    public long TimestampDelta { get; }
    public byte Attributes { get; }
    public ReadOnlySpan<byte> Key { get; }
    public bool KeyIsNull { get; }
    public ReadOnlySpan<byte> Value { get; }
    /// <summary>True for a tombstone.</summary>
    public bool ValueIsNull { get; }
    public int HeaderCount { get; }

    public HeaderEnumerator GetHeaders() => new(_headers, HeaderCount);

    /// <summary>Walks the headers of an already validated record.</summary>
    public ref struct HeaderEnumerator
    {
        private SpanCursor _cursor;
        private readonly ReadOnlySpan<byte> _bytes;
        private int _left;

        internal HeaderEnumerator(ReadOnlySpan<byte> bytes, int count)
        {
            _bytes = bytes;
            _cursor = new SpanCursor(bytes);
            _left = count;
        }

        public ReadOnlySpan<byte> Key { get; private set; }
        public ReadOnlySpan<byte> Value { get; private set; }
        public bool ValueIsNull { get; private set; }
        public readonly string KeyString => Encoding.UTF8.GetString(Key);
        public HeaderEnumerator GetEnumerator() => this;
        public readonly HeaderEnumerator Current => this;

        public bool MoveNext()
        {
            if (_left-- <= 0) return false;
            var hk = _cursor.ReadVarint();
            Key = _bytes.Slice(_cursor.Skip(hk), hk);
            var hv = _cursor.ReadVarint();
            ValueIsNull = hv < 0;
            Value = ValueIsNull ? default : _bytes.Slice(_cursor.Skip(hv), hv);
            return true;
        }
    }
}

/// <summary>
/// Streams the records of one batch as <see cref="RecordView"/>s; each is fully checked before it
/// is returned (bad bytes throw <see cref="RecordBatchFormatException"/>), and after the last one
/// leftover bytes are an error, exactly as in <see cref="RecordBatchReader.Read"/>.
/// Obtain from <see cref="RecordBatchReader.EnumerateRecords"/>.
/// </summary>
public ref struct RecordViewEnumerator
{
    private readonly ReadOnlySpan<byte> _records;
    private readonly int _count;
    private readonly long _baseOffset;
    private readonly long _baseTimestamp;
    private readonly long? _logAppendTime;
    private SpanCursor _cursor;
    private int _index;

    internal RecordViewEnumerator(ReadOnlySpan<byte> records, int count, long baseOffset, long baseTimestamp, long? logAppendTime)
    {
        if (count < 0 || count > records.Length / RecordParser.RecordBytesMin)
            throw new RecordBatchFormatException($"Record count {count} impossible in {records.Length} bytes of records.", ErrorCodes.InvalidRecord);
        _records = records;
        _count = count;
        _baseOffset = baseOffset;
        _baseTimestamp = baseTimestamp;
        _logAppendTime = logAppendTime;
        _cursor = new SpanCursor(records);
        _index = 0;
        Current = default;
    }

    public RecordView Current { get; private set; }
    public readonly RecordViewEnumerator GetEnumerator() => this;

    public bool MoveNext()
    {
        if (_index == _count)
        {
            if (_cursor.Remaining != 0)
                throw new RecordBatchFormatException($"Record batch has {_cursor.Remaining} bytes after its {_count} declared records.", ErrorCodes.InvalidRecord);
            Current = default;
            return false;
        }
        if (_cursor.Remaining == 0)
            throw new RecordBatchFormatException($"Record batch declares {_count} records but holds {_index}.", ErrorCodes.InvalidRecord);
        var raw = RecordParser.ParseOne(ref _cursor);
        _index++;
        Current = new RecordView(_records, raw, _baseOffset, _logAppendTime ?? _baseTimestamp + raw.TimestampDelta);
        return true;
    }
}
