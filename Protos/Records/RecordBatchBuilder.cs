using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace StreamPlatform.Protos.Records;

/// <summary>
/// Builds one v2 record batch: records are encoded into a pooled buffer as they are appended,
/// then <see cref="Build"/> compresses that region (if asked), writes the 61-byte header and
/// the CRC-32C straight into the caller's <see cref="IBufferWriter{T}"/>.
/// Used by tests, benchmarks and the broker (control batches, compaction rewrites).
/// Not thread-safe; reusable after <see cref="Reset"/>.
/// </summary>
public sealed class RecordBatchBuilder : IDisposable
{
    /// <summary>What Kafka clients put in partitionLeaderEpoch; the broker overwrites it on append.</summary>
    public const int NoPartitionLeaderEpoch = -1;
    public const long NoProducerId = -1;
    public const short NoProducerEpoch = -1;
    public const int NoSequence = -1;

    private readonly PooledBufferWriter _records = new(1024);
    private long _baseTimestamp;
    private long _maxTimestamp = -1;
    private int _lastOffsetDelta = -1;

    public long BaseOffset { get; set; }
    public int PartitionLeaderEpoch { get; set; } = NoPartitionLeaderEpoch;
    public CompressionType Compression { get; set; } = CompressionType.None;
    public TimestampType TimestampType { get; set; } = TimestampType.CreateTime;
    /// <summary>Max timestamp written for LogAppendTime batches (defaults to the largest record timestamp).</summary>
    public long? LogAppendTimeMs { get; set; }
    public bool IsTransactional { get; set; }
    public bool IsControl { get; set; }
    public long ProducerId { get; set; } = NoProducerId;
    public short ProducerEpoch { get; set; } = NoProducerEpoch;
    public int BaseSequence { get; set; } = NoSequence;
    public int RecordCount { get; private set; }
    /// <summary>Bytes of the uncompressed records region so far.</summary>
    public int RecordsBytes => _records.WrittenCount;

    /// <summary>Appends a record; null key/value are written as length -1 (null value = tombstone).</summary>
    /// <param name="offsetDelta">Null: previous + 1. Explicit deltas must increase (compaction leaves gaps).</param>
    public RecordBatchBuilder Append(long timestampMs, ReadOnlyMemory<byte>? key, ReadOnlyMemory<byte>? value,
        IReadOnlyList<RecordHeader>? headers = null, int? offsetDelta = null)
        => Append(timestampMs, key is { } k ? k.Span : default, key is null, value is { } v ? v.Span : default, value is null, headers, offsetDelta);

    /// <summary>
    /// Array form. Exists because a null <c>byte[]</c> passed where a <c>ReadOnlyMemory&lt;byte&gt;?</c> is
    /// expected silently becomes an empty (non-null) memory; here null stays null (key -1 / tombstone).
    /// </summary>
    public RecordBatchBuilder Append(long timestampMs, byte[]? key, byte[]? value,
        IReadOnlyList<RecordHeader>? headers = null, int? offsetDelta = null)
        => Append(timestampMs, key, key is null, value, value is null, headers, offsetDelta);

    /// <summary>Span form, for callers whose keys/values are not in Memory (no copies either way).</summary>
    public RecordBatchBuilder Append(long timestampMs, ReadOnlySpan<byte> key, bool keyIsNull, ReadOnlySpan<byte> value, bool valueIsNull,
        IReadOnlyList<RecordHeader>? headers = null, int? offsetDelta = null)
    {
        var delta = offsetDelta ?? _lastOffsetDelta + 1;
        if (delta <= _lastOffsetDelta) throw new ArgumentOutOfRangeException(nameof(offsetDelta), $"Offset delta {delta} not above previous {_lastOffsetDelta}.");
        if (RecordCount == 0) _baseTimestamp = timestampMs;
        var timestampDelta = timestampMs - _baseTimestamp;
        var keyLength = keyIsNull ? -1 : key.Length;
        var valueLength = valueIsNull ? -1 : value.Length;
        var headerCount = headers?.Count ?? 0;

        long body = 1 + Varint.SizeOfVarlong(timestampDelta) + Varint.SizeOfVarint(delta)
            + Varint.SizeOfVarint(keyLength) + Math.Max(keyLength, 0)
            + Varint.SizeOfVarint(valueLength) + Math.Max(valueLength, 0)
            + Varint.SizeOfVarint(headerCount);
        for (var i = 0; i < headerCount; i++)
        {
            var h = headers![i];
            ArgumentNullException.ThrowIfNull(h.Key, "headers[].Key");
            var hk = Encoding.UTF8.GetByteCount(h.Key);
            var hv = h.Value is { } hval ? hval.Length : -1;
            body += Varint.SizeOfVarint(hk) + hk + Varint.SizeOfVarint(hv) + Math.Max(hv, 0);
        }
        if (body > int.MaxValue - Varint.VarintBytesMax - _records.WrittenCount - RecordBatchHeader.Size)
            throw new InvalidOperationException("Record batch would exceed 2 GiB.");

        var size = (int)body + Varint.SizeOfVarint((int)body);
        var span = _records.GetSpan(size);
        var p = Varint.WriteVarint(span, (int)body);
        span[p++] = 0; // record attributes: unused by Kafka, always 0
        p += Varint.WriteVarlong(span[p..], timestampDelta);
        p += Varint.WriteVarint(span[p..], delta);
        p += Varint.WriteVarint(span[p..], keyLength);
        if (!keyIsNull) { key.CopyTo(span[p..]); p += key.Length; }
        p += Varint.WriteVarint(span[p..], valueLength);
        if (!valueIsNull) { value.CopyTo(span[p..]); p += value.Length; }
        p += Varint.WriteVarint(span[p..], headerCount);
        for (var i = 0; i < headerCount; i++)
        {
            var h = headers![i];
            var hk = Encoding.UTF8.GetByteCount(h.Key);
            p += Varint.WriteVarint(span[p..], hk);
            p += Encoding.UTF8.GetBytes(h.Key, span[p..]);
            if (h.Value is { } hval)
            {
                p += Varint.WriteVarint(span[p..], hval.Length);
                hval.Span.CopyTo(span[p..]);
                p += hval.Length;
            }
            else
            {
                p += Varint.WriteVarint(span[p..], -1);
            }
        }
        if (p != size) throw new InvalidOperationException($"Record encoding size mismatch ({p} != {size}).");
        _records.Advance(size);
        RecordCount++;
        _lastOffsetDelta = delta;
        _maxTimestamp = RecordCount == 1 ? timestampMs : Math.Max(_maxTimestamp, timestampMs);
        return this;
    }

    /// <summary>Appends an ABORT/COMMIT marker record (for control batches).</summary>
    public RecordBatchBuilder AppendControl(long timestampMs, ControlRecordType type, int coordinatorEpoch)
    {
        Span<byte> key = stackalloc byte[ControlRecord.KeySizeBytes];
        Span<byte> value = stackalloc byte[ControlRecord.EndTxnMarkerSizeBytes];
        ControlRecord.WriteKey(key, type);
        ControlRecord.WriteValue(value, coordinatorEpoch);
        return Append(timestampMs, key, false, value, false);
    }

    /// <summary>Writes the finished batch to <paramref name="output"/>; returns its size in bytes.</summary>
    public int Build(IBufferWriter<byte> output)
    {
        if (RecordCount == 0) throw new InvalidOperationException("A record batch needs at least one record.");
        PooledBufferWriter? compressed = null;
        try
        {
            ReadOnlySpan<byte> payload = _records.WrittenSpan;
            if (Compression != CompressionType.None)
            {
                compressed = new PooledBufferWriter(Math.Max(payload.Length / 2, 64));
                CompressionCodecs.Compress(Compression, payload, compressed);
                payload = compressed.WrittenSpan;
            }
            var total = checked(RecordBatchHeader.Size + payload.Length);
            var batch = output.GetSpan(total)[..total];
            short attributes = (short)Compression;
            if (TimestampType == TimestampType.LogAppendTime) attributes |= RecordBatchHeader.TimestampTypeFlag;
            if (IsTransactional) attributes |= RecordBatchHeader.TransactionalFlag;
            if (IsControl) attributes |= RecordBatchHeader.ControlFlag;
            var maxTimestamp = TimestampType == TimestampType.LogAppendTime ? LogAppendTimeMs ?? _maxTimestamp : _maxTimestamp;

            BinaryPrimitives.WriteInt64BigEndian(batch, BaseOffset);
            BinaryPrimitives.WriteInt32BigEndian(batch[RecordBatchHeader.BatchLengthOffset..], total - RecordBatchHeader.LogOverhead);
            BinaryPrimitives.WriteInt32BigEndian(batch[RecordBatchHeader.PartitionLeaderEpochOffset..], PartitionLeaderEpoch);
            batch[RecordBatchHeader.MagicOffset] = RecordBatchHeader.CurrentMagic;
            BinaryPrimitives.WriteInt16BigEndian(batch[RecordBatchHeader.AttributesOffset..], attributes);
            BinaryPrimitives.WriteInt32BigEndian(batch[RecordBatchHeader.LastOffsetDeltaOffset..], _lastOffsetDelta);
            BinaryPrimitives.WriteInt64BigEndian(batch[RecordBatchHeader.BaseTimestampOffset..], _baseTimestamp);
            BinaryPrimitives.WriteInt64BigEndian(batch[RecordBatchHeader.MaxTimestampOffset..], maxTimestamp);
            BinaryPrimitives.WriteInt64BigEndian(batch[RecordBatchHeader.ProducerIdOffset..], ProducerId);
            BinaryPrimitives.WriteInt16BigEndian(batch[RecordBatchHeader.ProducerEpochOffset..], ProducerEpoch);
            BinaryPrimitives.WriteInt32BigEndian(batch[RecordBatchHeader.BaseSequenceOffset..], BaseSequence);
            BinaryPrimitives.WriteInt32BigEndian(batch[RecordBatchHeader.RecordsCountOffset..], RecordCount);
            payload.CopyTo(batch[RecordBatchHeader.Size..]);
            BinaryPrimitives.WriteUInt32BigEndian(batch[RecordBatchHeader.CrcOffset..], RecordBatchHeader.ComputeCrc(batch));
            output.Advance(total);
            return total;
        }
        finally
        {
            compressed?.Dispose();
        }
    }

    /// <summary>Builds into a new pooled buffer the caller disposes.</summary>
    public PooledBufferWriter BuildPooled()
    {
        var writer = new PooledBufferWriter(RecordBatchHeader.Size + _records.WrittenCount);
        try
        {
            Build(writer);
            return writer;
        }
        catch
        {
            writer.Dispose();
            throw;
        }
    }

    /// <summary>Builds into a fresh array (tests and one-off callers).</summary>
    public byte[] ToArray()
    {
        using var writer = BuildPooled();
        return writer.ToArray();
    }

    /// <summary>Forgets the records (header settings stay) so the builder can make another batch.</summary>
    public void Reset()
    {
        _records.Clear();
        RecordCount = 0;
        _lastOffsetDelta = -1;
        _maxTimestamp = -1;
        _baseTimestamp = 0;
    }

    /// <summary>
    /// A transaction marker batch as the broker writes it for EndTxn/WriteTxnMarkers: control and
    /// transactional flags, one ABORT/COMMIT record, no sequence.
    /// </summary>
    public static int BuildControlBatch(IBufferWriter<byte> output, ControlRecordType type, long producerId, short producerEpoch,
        int coordinatorEpoch, long timestampMs, long baseOffset = 0, int partitionLeaderEpoch = NoPartitionLeaderEpoch)
    {
        using var builder = new RecordBatchBuilder
        {
            BaseOffset = baseOffset,
            PartitionLeaderEpoch = partitionLeaderEpoch,
            IsControl = true,
            IsTransactional = true,
            ProducerId = producerId,
            ProducerEpoch = producerEpoch,
        };
        builder.AppendControl(timestampMs, type, coordinatorEpoch);
        return builder.Build(output);
    }

    public void Dispose() => _records.Dispose();
}
