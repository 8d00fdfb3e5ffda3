using System.Buffers.Binary;

namespace StreamPlatform.Protos.Records;

/// <summary>
/// Kafka's record-level integers: zig-zag varint (int32, at most 5 bytes) and varlong (int64, at
/// most 10 bytes), unsigned LEB128 after zig-zag so small negative numbers stay small.
/// </summary>
public static class Varint
{
    public const int VarintBytesMax = 5;
    public const int VarlongBytesMax = 10;

    public static int SizeOfVarint(int value) => SizeOfUnsigned((uint)((value << 1) ^ (value >> 31)));
    public static int SizeOfVarlong(long value) => SizeOfUnsigned((ulong)((value << 1) ^ (value >> 63)));

    private static int SizeOfUnsigned(ulong v)
    {
        var size = 1;
        while (v >= 0x80) { v >>= 7; size++; }
        return size;
    }

    /// <summary>Writes a zig-zag varint; the span must hold <see cref="SizeOfVarint"/> bytes.</summary>
    public static int WriteVarint(Span<byte> destination, int value) => WriteUnsigned(destination, (uint)((value << 1) ^ (value >> 31)));
    public static int WriteVarlong(Span<byte> destination, long value) => WriteUnsigned(destination, (ulong)((value << 1) ^ (value >> 63)));

    private static int WriteUnsigned(Span<byte> destination, ulong v)
    {
        var i = 0;
        while (v >= 0x80)
        {
            destination[i++] = (byte)(v | 0x80);
            v >>= 7;
        }
        destination[i++] = (byte)v;
        return i;
    }
}

/// <summary>
/// Bounds-checked cursor over record bytes. Every read that would run past the end, or a varint
/// longer than its maximum, throws <see cref="RecordBatchFormatException"/> (never
/// IndexOutOfRangeException), because these bytes come from clients and disks.
/// </summary>
internal ref struct SpanCursor
{
    private readonly ReadOnlySpan<byte> _bytes;

    public SpanCursor(ReadOnlySpan<byte> bytes)
    {
        _bytes = bytes;
        Position = 0;
    }

    public int Position { get; private set; }
    public readonly int Remaining => _bytes.Length - Position;

    public sbyte ReadInt8()
    {
        Need(1);
        return (sbyte)_bytes[Position++];
    }

    public short ReadInt16()
    {
        Need(2);
        var v = BinaryPrimitives.ReadInt16BigEndian(_bytes[Position..]);
        Position += 2;
        return v;
    }

    public int ReadInt32()
    {
        Need(4);
        var v = BinaryPrimitives.ReadInt32BigEndian(_bytes[Position..]);
        Position += 4;
        return v;
    }

    public int ReadVarint()
    {
        uint raw = 0;
        for (var i = 0; i < Varint.VarintBytesMax; i++)
        {
            Need(1);
            var b = _bytes[Position++];
            raw |= (uint)(b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0) return (int)(raw >> 1) ^ -(int)(raw & 1);
        }
        throw new RecordBatchFormatException($"Varint longer than {Varint.VarintBytesMax} bytes at position {Position}.");
    }

    public long ReadVarlong()
    {
        ulong raw = 0;
        for (var i = 0; i < Varint.VarlongBytesMax; i++)
        {
            Need(1);
            var b = _bytes[Position++];
            raw |= (ulong)(b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0) return (long)(raw >> 1) ^ -(long)(raw & 1);
        }
        throw new RecordBatchFormatException($"Varlong longer than {Varint.VarlongBytesMax} bytes at position {Position}.");
    }

    /// <summary>Returns the start of the next <paramref name="length"/> bytes and skips them.</summary>
    public int Skip(int length)
    {
        if (length < 0) throw new RecordBatchFormatException($"Negative length {length} at position {Position}.");
        Need(length);
        var start = Position;
        Position += length;
        return start;
    }

    private readonly void Need(int count)
    {
        if (count > _bytes.Length - Position)
            throw new RecordBatchFormatException($"Record data truncated: need {count} bytes at position {Position}, {_bytes.Length - Position} left.");
    }
}
