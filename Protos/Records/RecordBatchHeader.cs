using System.Buffers.Binary;

namespace StreamPlatform.Protos.Records;

/// <summary>Compression codec in the low three bits of a record batch's attributes.</summary>
public enum CompressionType : byte
{
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

public enum TimestampType : byte
{
    CreateTime = 0,
    LogAppendTime = 1,
}

/// <summary>
/// The fixed 61-byte header of a Kafka record batch, magic 2, read in place (no copy of the
/// records). Layout (big-endian):
/// <code>
///  0 baseOffset int64        8 batchLength int32 (bytes after this field)
/// 12 partitionLeaderEpoch    16 magic int8           17 crc uint32 (CRC-32C of bytes 21..end)
/// 21 attributes int16        23 lastOffsetDelta int32 27 baseTimestamp int64
/// 35 maxTimestamp int64      43 producerId int64      51 producerEpoch int16
/// 53 baseSequence int32      57 recordsCount int32    61 records...
/// </code>
/// </summary>
public readonly ref struct RecordBatchHeader
{
    public const int BaseOffsetOffset = 0;
    public const int BatchLengthOffset = 8;
    public const int PartitionLeaderEpochOffset = 12;
    public const int MagicOffset = 16;
    public const int CrcOffset = 17;
    public const int AttributesOffset = 21;
    public const int LastOffsetDeltaOffset = 23;
    public const int BaseTimestampOffset = 27;
    public const int MaxTimestampOffset = 35;
    public const int ProducerIdOffset = 43;
    public const int ProducerEpochOffset = 51;
    public const int BaseSequenceOffset = 53;
    public const int RecordsCountOffset = 57;
    public const int Size = 61;
    /// <summary>baseOffset + batchLength: the bytes not counted by batchLength.</summary>
    public const int LogOverhead = 12;
    public const byte CurrentMagic = 2;

    public const short CompressionMask = 0x07;
    public const short TimestampTypeFlag = 0x08;
    public const short TransactionalFlag = 0x10;
    public const short ControlFlag = 0x20;
    public const short DeleteHorizonFlag = 0x40;

    private readonly ReadOnlySpan<byte> _bytes;

    /// <param name="bytes">At least <see cref="Size"/> bytes, starting at the batch's first byte.</param>
    public RecordBatchHeader(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < Size) throw new ArgumentException($"A record batch header needs {Size} bytes, got {bytes.Length}.", nameof(bytes));
        _bytes = bytes;
    }

    public long BaseOffset => BinaryPrimitives.ReadInt64BigEndian(_bytes);
    public int BatchLength => BinaryPrimitives.ReadInt32BigEndian(_bytes[BatchLengthOffset..]);
    /// <summary>Whole size of the batch on the wire: batchLength + 12.</summary>
    public int TotalSize => BatchLength + LogOverhead;
    public int PartitionLeaderEpoch => BinaryPrimitives.ReadInt32BigEndian(_bytes[PartitionLeaderEpochOffset..]);
    public byte Magic => _bytes[MagicOffset];
    public uint Crc => BinaryPrimitives.ReadUInt32BigEndian(_bytes[CrcOffset..]);
    public short Attributes => BinaryPrimitives.ReadInt16BigEndian(_bytes[AttributesOffset..]);
    public int LastOffsetDelta => BinaryPrimitives.ReadInt32BigEndian(_bytes[LastOffsetDeltaOffset..]);
    public long LastOffset => BaseOffset + LastOffsetDelta;
    public long BaseTimestamp => BinaryPrimitives.ReadInt64BigEndian(_bytes[BaseTimestampOffset..]);
    public long MaxTimestamp => BinaryPrimitives.ReadInt64BigEndian(_bytes[MaxTimestampOffset..]);
    public long ProducerId => BinaryPrimitives.ReadInt64BigEndian(_bytes[ProducerIdOffset..]);
    public short ProducerEpoch => BinaryPrimitives.ReadInt16BigEndian(_bytes[ProducerEpochOffset..]);
    public int BaseSequence => BinaryPrimitives.ReadInt32BigEndian(_bytes[BaseSequenceOffset..]);
    public int RecordsCount => BinaryPrimitives.ReadInt32BigEndian(_bytes[RecordsCountOffset..]);

    public CompressionType Compression => (CompressionType)(Attributes & CompressionMask);
    public TimestampType TimestampType => (Attributes & TimestampTypeFlag) != 0 ? TimestampType.LogAppendTime : TimestampType.CreateTime;
    public bool IsTransactional => (Attributes & TransactionalFlag) != 0;
    public bool IsControl => (Attributes & ControlFlag) != 0;

    /// <summary>Reads the batch length without a full header (needs 12 bytes).</summary>
    public static bool TryReadTotalSize(ReadOnlySpan<byte> bytes, out int totalSize)
    {
        if (bytes.Length < LogOverhead) { totalSize = 0; return false; }
        var batchLength = BinaryPrimitives.ReadInt32BigEndian(bytes[BatchLengthOffset..]);
        totalSize = batchLength + LogOverhead;
        return true;
    }

    /// <summary>
    /// The offset after the last whole magic-2 batch in <paramref name="batches"/> (what a consumer
    /// that took them fetches next), walking the batches by their declared lengths; null when there
    /// is no whole batch, a length is impossible, or a batch is not magic 2. A torn tail (a batch
    /// cut by a size limit) is ignored, as consumers ignore it.
    /// </summary>
    public static long? NextOffsetAfter(ReadOnlySpan<byte> batches)
    {
        long? next = null;
        var position = 0;
        while (batches.Length - position >= Size)
        {
            var batch = batches[position..];
            var batchLength = BinaryPrimitives.ReadInt32BigEndian(batch[BatchLengthOffset..]);
            // A batch is at least its header; the length is checked before it moves the position.
            if (batchLength < Size - LogOverhead || batch[MagicOffset] != CurrentMagic) return null;
            if (batchLength > batch.Length - LogOverhead) break; // torn tail
            next = BinaryPrimitives.ReadInt64BigEndian(batch) + BinaryPrimitives.ReadInt32BigEndian(batch[LastOffsetDeltaOffset..]) + 1;
            position += batchLength + LogOverhead;
        }
        return next;
    }

    /// <summary>CRC-32C over attributes..end of batch, as Kafka computes it.</summary>
    public static uint ComputeCrc(ReadOnlySpan<byte> batch) => Crc32C.Compute(batch[AttributesOffset..]);

    // Writers for the fields a broker rewrites on append. Records are never touched.
    public static void SetBaseOffset(Span<byte> batch, long baseOffset) => BinaryPrimitives.WriteInt64BigEndian(batch, baseOffset);
    public static void SetPartitionLeaderEpoch(Span<byte> batch, int epoch) => BinaryPrimitives.WriteInt32BigEndian(batch[PartitionLeaderEpochOffset..], epoch);

    /// <summary>
    /// Attributes as Kafka writes them when it rewrites a header (DefaultRecordBatch.computeAttributes):
    /// compression, transactional, control and delete-horizon kept, the timestamp type set, every
    /// other bit (bit 7, the high byte) cleared.
    /// </summary>
    public static short ComposeAttributes(short attributes, TimestampType timestampType)
    {
        var kept = (short)(attributes & (CompressionMask | TransactionalFlag | ControlFlag | DeleteHorizonFlag));
        return timestampType == TimestampType.LogAppendTime ? (short)(kept | TimestampTypeFlag) : kept;
    }

    /// <summary>
    /// Kafka's setMaxTimestamp: sets timestamp type (attributes rebuilt by <see cref="ComposeAttributes"/>)
    /// and max timestamp, then recomputes the CRC (both fields are inside the CRC's range, unlike
    /// base offset and leader epoch). <paramref name="batch"/> holds the whole batch.
    /// </summary>
    public static void SetMaxTimestamp(Span<byte> batch, TimestampType timestampType, long maxTimestampMs)
    {
        var attributes = ComposeAttributes(BinaryPrimitives.ReadInt16BigEndian(batch[AttributesOffset..]), timestampType);
        BinaryPrimitives.WriteInt16BigEndian(batch[AttributesOffset..], attributes);
        BinaryPrimitives.WriteInt64BigEndian(batch[MaxTimestampOffset..], maxTimestampMs);
        var length = BinaryPrimitives.ReadInt32BigEndian(batch[BatchLengthOffset..]) + LogOverhead;
        BinaryPrimitives.WriteUInt32BigEndian(batch[CrcOffset..], ComputeCrc(batch[..length]));
    }

    /// <summary>Sets LogAppendTime as max timestamp and timestamp type, then recomputes the CRC.</summary>
    public static void SetLogAppendTime(Span<byte> batch, long timestampMs) => SetMaxTimestamp(batch, TimestampType.LogAppendTime, timestampMs);
}

/// <summary>Why a buffer of record batches was not accepted.</summary>
public enum BatchValidationError
{
    None = 0,
    /// <summary>Fewer bytes than the header or than the declared length: a torn tail.</summary>
    Truncated,
    /// <summary>Declared length is negative, below the header size or above the limit.</summary>
    InvalidLength,
    /// <summary>Magic other than 2 (v0/v1 message sets are not accepted).</summary>
    UnsupportedMagic,
    CrcMismatch,
    /// <summary>lastOffsetDelta / recordsCount inconsistent.</summary>
    InvalidRecordCount,
    UnsupportedCompression,
}

/// <summary>
/// Walks a buffer of concatenated record batches, validating each header and CRC without
/// copying. Used by the broker on append (client input) and on recovery (disk input).
/// </summary>
public ref struct RecordBatchEnumerator
{
    private readonly ReadOnlySpan<byte> _buffer;
    private readonly int _maxBatchBytes;
    private readonly bool _verifyCrc;
    private int _position;

    public RecordBatchEnumerator(ReadOnlySpan<byte> buffer, int maxBatchBytes = int.MaxValue, bool verifyCrc = true)
    {
        _buffer = buffer;
        _maxBatchBytes = maxBatchBytes;
        _verifyCrc = verifyCrc;
        _position = 0;
        Error = BatchValidationError.None;
    }

    /// <summary>Offset in the buffer of the batch returned last (or of the failure).</summary>
    public int BatchStart { get; private set; }
    /// <summary>Bytes validated so far: everything before this is whole, valid batches.</summary>
    public readonly int ValidBytes => _position;
    public BatchValidationError Error { get; private set; }
    public ReadOnlySpan<byte> Current { get; private set; }

    /// <summary>False at the end of the buffer (Error None) or at the first bad batch (Error set).</summary>
    public bool MoveNext()
    {
        BatchStart = _position;
        var rest = _buffer[_position..];
        if (rest.IsEmpty) return false;
        if (rest.Length < RecordBatchHeader.Size) return Fail(BatchValidationError.Truncated);
        if (!RecordBatchHeader.TryReadTotalSize(rest, out var total)) return Fail(BatchValidationError.Truncated);
        if (total < RecordBatchHeader.Size || total > _maxBatchBytes) return Fail(BatchValidationError.InvalidLength);
        if (rest.Length < total) return Fail(BatchValidationError.Truncated);
        var batch = rest[..total];
        var header = new RecordBatchHeader(batch);
        if (header.Magic != RecordBatchHeader.CurrentMagic) return Fail(BatchValidationError.UnsupportedMagic);
        if (_verifyCrc && RecordBatchHeader.ComputeCrc(batch) != header.Crc) return Fail(BatchValidationError.CrcMismatch);
        if (header.LastOffsetDelta < 0 || header.RecordsCount < 0
            // Compaction may leave gaps (delta above count - 1), never fewer offsets than records.
            || (header.RecordsCount > 0 && header.LastOffsetDelta < header.RecordsCount - 1))
            return Fail(BatchValidationError.InvalidRecordCount);
        if ((int)header.Compression > (int)CompressionType.Zstd) return Fail(BatchValidationError.UnsupportedCompression);
        Current = batch;
        _position += total;
        return true;
    }

    private bool Fail(BatchValidationError error)
    {
        Error = error;
        Current = default;
        return false;
    }
}
