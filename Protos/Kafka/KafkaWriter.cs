using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace StreamPlatform.Protos.Kafka;

/// <summary>
/// Writes Kafka protocol primitives into a span sized by the message's <c>ComputeSize</c>. Writing
/// never allocates. The static <c>SizeOf*</c> helpers give the exact encoded size of each
/// primitive, also without allocating, so size computation and writing agree byte for byte.
/// A null passed for a non-nullable string, bytes or array is written as empty, so a caller's
/// mistake produces a valid frame instead of a crash.
/// </summary>
public ref struct KafkaWriter
{
    private readonly Span<byte> _span;
    private int _position;

    public KafkaWriter(Span<byte> buffer)
    {
        _span = buffer;
        _position = 0;
    }

    /// <summary>Bytes written so far.</summary>
    public readonly int Position => _position;

    /// <summary>Space left in the buffer.</summary>
    public readonly int Remaining => _span.Length - _position;

    /// <summary>The bytes written so far.</summary>
    public readonly ReadOnlySpan<byte> Written => _span[.._position];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Span<byte> Take(int count)
    {
        if ((uint)count > (uint)(_span.Length - _position))
        {
            throw new KafkaProtocolException(
                $"Kafka writer buffer too small: needed {count} byte(s) at offset {_position}, {Remaining} remain (was it sized by ComputeSize?).");
        }

        var slice = _span.Slice(_position, count);
        _position += count;
        return slice;
    }

    public void WriteInt8(sbyte value) => Take(1)[0] = (byte)value;

    public void WriteInt16(short value) => BinaryPrimitives.WriteInt16BigEndian(Take(2), value);

    public void WriteUInt16(ushort value) => BinaryPrimitives.WriteUInt16BigEndian(Take(2), value);

    public void WriteInt32(int value) => BinaryPrimitives.WriteInt32BigEndian(Take(4), value);

    public void WriteInt64(long value) => BinaryPrimitives.WriteInt64BigEndian(Take(8), value);

    public void WriteFloat64(double value) => BinaryPrimitives.WriteDoubleBigEndian(Take(8), value);

    public void WriteBool(bool value) => Take(1)[0] = value ? (byte)1 : (byte)0;

    /// <summary>16 bytes, big-endian, as Kafka writes UUIDs.</summary>
    public void WriteUuid(Guid value) => value.TryWriteBytes(Take(16), bigEndian: true, out _);

    public void WriteUnsignedVarint(uint value)
    {
        while (value >= 0x80)
        {
            Take(1)[0] = (byte)(value | 0x80);
            value >>= 7;
        }

        Take(1)[0] = (byte)value;
    }

    public void WriteUnsignedVarlong(ulong value)
    {
        while (value >= 0x80)
        {
            Take(1)[0] = (byte)(value | 0x80);
            value >>= 7;
        }

        Take(1)[0] = (byte)value;
    }

    /// <summary>Zigzag-encoded signed varint.</summary>
    public void WriteVarint(int value) => WriteUnsignedVarint((uint)((value << 1) ^ (value >> 31)));

    /// <summary>Zigzag-encoded signed varlong.</summary>
    public void WriteVarlong(long value) => WriteUnsignedVarlong((ulong)((value << 1) ^ (value >> 63)));

    private void WriteLength(int length, bool compact, bool shortLength)
    {
        if (compact)
        {
            WriteUnsignedVarint((uint)(length + 1));
        }
        else if (shortLength)
        {
            WriteInt16((short)length);
        }
        else
        {
            WriteInt32(length);
        }
    }

    /// <summary>A non-nullable string (null is written as "").</summary>
    public void WriteString(string? value, bool compact) => WriteStringCore(value ?? string.Empty, compact);

    /// <summary>A nullable string: null is length -1 (compact: 0).</summary>
    public void WriteNullableString(string? value, bool compact)
    {
        if (value is null)
        {
            WriteLength(-1, compact, shortLength: true);
            return;
        }

        WriteStringCore(value, compact);
    }

    private void WriteStringCore(string value, bool compact)
    {
        var length = Encoding.UTF8.GetByteCount(value);
        if (!compact && length > short.MaxValue)
        {
            throw new KafkaProtocolException($"String of {length} UTF-8 bytes does not fit an int16 length.");
        }

        WriteLength(length, compact, shortLength: true);
        Encoding.UTF8.GetBytes(value, Take(length));
    }

    /// <summary>Non-nullable bytes.</summary>
    public void WriteBytes(ReadOnlySpan<byte> value, bool compact)
    {
        WriteLength(value.Length, compact, shortLength: false);
        value.CopyTo(Take(value.Length));
    }

    /// <summary>Nullable bytes: null is length -1 (compact: 0).</summary>
    public void WriteNullableBytes(ReadOnlyMemory<byte>? value, bool compact)
    {
        if (value is null)
        {
            WriteLength(-1, compact, shortLength: false);
            return;
        }

        WriteBytes(value.Value.Span, compact);
    }

    /// <summary>An array's element count; -1 writes null.</summary>
    public void WriteArrayLength(int count, bool compact) => WriteLength(count, compact, shortLength: false);

    /// <summary>Raw bytes with no length prefix.</summary>
    public void WriteRaw(ReadOnlySpan<byte> value) => value.CopyTo(Take(value.Length));

    /// <summary>A tagged field's tag and size; its value follows.</summary>
    public void WriteTaggedFieldHeader(int tag, int size)
    {
        WriteUnsignedVarint((uint)tag);
        WriteUnsignedVarint((uint)size);
    }

    /// <summary>
    /// Writes the unknown tagged fields whose tag is in [<paramref name="fromTag"/>,
    /// <paramref name="toTagExclusive"/>), in list order: generated code calls this between its
    /// known tags so the section stays in ascending tag order.
    /// </summary>
    public void WriteUnknownTaggedFields(List<TaggedField>? fields, long fromTag, long toTagExclusive)
    {
        if (fields is null)
        {
            return;
        }

        foreach (var field in fields)
        {
            if (field.Tag >= fromTag && field.Tag < toTagExclusive)
            {
                WriteTaggedFieldHeader(field.Tag, field.Data.Length);
                WriteRaw(field.Data.Span);
            }
        }
    }

    // ---- sizes (never allocate) ----

    public static int SizeOfUnsignedVarint(uint value) => value switch
    {
        < 1u << 7 => 1,
        < 1u << 14 => 2,
        < 1u << 21 => 3,
        < 1u << 28 => 4,
        _ => 5,
    };

    public static int SizeOfUnsignedVarlong(ulong value)
    {
        var size = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            size++;
        }

        return size;
    }

    public static int SizeOfVarint(int value) => SizeOfUnsignedVarint((uint)((value << 1) ^ (value >> 31)));

    public static int SizeOfVarlong(long value) => SizeOfUnsignedVarlong((ulong)((value << 1) ^ (value >> 63)));

    private static int SizeOfLength(int length, bool compact, bool shortLength) =>
        compact ? SizeOfUnsignedVarint((uint)(length + 1)) : shortLength ? 2 : 4;

    /// <summary>Encoded size of a non-nullable string (null counts as "").</summary>
    public static int SizeOfString(string? value, bool compact)
    {
        var length = value is null ? 0 : Encoding.UTF8.GetByteCount(value);
        return SizeOfLength(length, compact, shortLength: true) + length;
    }

    public static int SizeOfNullableString(string? value, bool compact) =>
        value is null ? SizeOfLength(-1, compact, shortLength: true) : SizeOfString(value, compact);

    public static int SizeOfBytes(int length, bool compact) => SizeOfLength(length, compact, shortLength: false) + length;

    public static int SizeOfNullableBytes(ReadOnlyMemory<byte>? value, bool compact) =>
        value is null ? SizeOfLength(-1, compact, shortLength: false) : SizeOfBytes(value.Value.Length, compact);

    public static int SizeOfArrayLength(int count, bool compact) => SizeOfLength(count, compact, shortLength: false);

    public static int SizeOfTaggedFieldHeader(int tag, int size) =>
        SizeOfUnsignedVarint((uint)tag) + SizeOfUnsignedVarint((uint)size);

    /// <summary>Encoded size of every unknown tagged field (headers and data).</summary>
    public static int SizeOfUnknownTaggedFields(List<TaggedField>? fields)
    {
        if (fields is null)
        {
            return 0;
        }

        var size = 0;
        foreach (var field in fields)
        {
            size += SizeOfTaggedFieldHeader(field.Tag, field.Data.Length) + field.Data.Length;
        }

        return size;
    }
}
