using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Unicode;

namespace StreamPlatform.Protos.Kafka;

/// <summary>
/// Reads Kafka protocol primitives from one fully buffered frame. Every length is checked against
/// the bytes that remain before anything is allocated, and every kind of malformed or short input
/// throws <see cref="KafkaProtocolException"/> — never another exception type — so a hostile
/// client can cost the gateway at most one connection. Byte and record fields are returned as
/// slices of the frame (zero copy); keep the frame's memory alive while they are in use.
/// </summary>
public ref struct KafkaReader
{
    private readonly ReadOnlyMemory<byte> _memory;
    private readonly ReadOnlySpan<byte> _span;
    private int _position;

    public KafkaReader(ReadOnlyMemory<byte> buffer)
    {
        _memory = buffer;
        _span = buffer.Span;
        _position = 0;
    }

    /// <summary>Bytes consumed so far.</summary>
    public readonly int Position => _position;

    /// <summary>Bytes not yet consumed.</summary>
    public readonly int Remaining => _span.Length - _position;

    /// <summary>The whole frame this reader reads.</summary>
    public readonly ReadOnlyMemory<byte> Buffer => _memory;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ReadOnlySpan<byte> Take(int count)
    {
        // count is never negative here: callers validate lengths first.
        if ((uint)count > (uint)(_span.Length - _position))
        {
            throw Short(count);
        }

        var slice = _span.Slice(_position, count);
        _position += count;
        return slice;
    }

    private readonly KafkaProtocolException Short(int needed) =>
        new($"Truncated Kafka message: needed {needed} byte(s) at offset {_position}, {Remaining} remain.");

    public sbyte ReadInt8() => (sbyte)Take(1)[0];

    public short ReadInt16() => BinaryPrimitives.ReadInt16BigEndian(Take(2));

    public ushort ReadUInt16() => BinaryPrimitives.ReadUInt16BigEndian(Take(2));

    public int ReadInt32() => BinaryPrimitives.ReadInt32BigEndian(Take(4));

    public long ReadInt64() => BinaryPrimitives.ReadInt64BigEndian(Take(8));

    public double ReadFloat64() => BinaryPrimitives.ReadDoubleBigEndian(Take(8));

    public bool ReadBool() => Take(1)[0] != 0;

    /// <summary>A UUID: 16 bytes, big-endian (most significant byte first), as Kafka writes it.</summary>
    public Guid ReadUuid() => new(Take(16), bigEndian: true);

    /// <summary>Unsigned LEB128 varint of at most 5 bytes (a 32-bit value).</summary>
    public uint ReadUnsignedVarint()
    {
        uint result = 0;
        for (var i = 0; i < 5; i++)
        {
            if (_position >= _span.Length)
            {
                throw Short(1);
            }

            uint b = _span[_position++];
            if (i == 4 && b > 0x0F)
            {
                throw new KafkaProtocolException($"Malformed varint at offset {_position - 1}: more than 32 bits.");
            }

            result |= (b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0)
            {
                return result;
            }
        }

        throw new KafkaProtocolException($"Malformed varint ending at offset {_position}: longer than 5 bytes.");
    }

    /// <summary>Unsigned LEB128 varint of at most 10 bytes (a 64-bit value).</summary>
    public ulong ReadUnsignedVarlong()
    {
        ulong result = 0;
        for (var i = 0; i < 10; i++)
        {
            if (_position >= _span.Length)
            {
                throw Short(1);
            }

            ulong b = _span[_position++];
            if (i == 9 && b > 0x01)
            {
                throw new KafkaProtocolException($"Malformed varlong at offset {_position - 1}: more than 64 bits.");
            }

            result |= (b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0)
            {
                return result;
            }
        }

        throw new KafkaProtocolException($"Malformed varlong ending at offset {_position}: longer than 10 bytes.");
    }

    /// <summary>Zigzag-encoded signed varint (record format).</summary>
    public int ReadVarint()
    {
        var raw = ReadUnsignedVarint();
        return (int)(raw >> 1) ^ -(int)(raw & 1);
    }

    /// <summary>Zigzag-encoded signed varlong (record format).</summary>
    public long ReadVarlong()
    {
        var raw = ReadUnsignedVarlong();
        return (long)(raw >> 1) ^ -(long)(raw & 1);
    }

    /// <summary>
    /// Reads a length prefix: int16/int32 (classic, -1 = null) or unsigned varint of length + 1
    /// (compact, 0 = null). Returns -1 for null. The length is checked against the remaining bytes.
    /// </summary>
    private int ReadLength(bool compact, bool shortLength, string what)
    {
        int length;
        if (compact)
        {
            var raw = ReadUnsignedVarint();
            length = raw == 0 ? -1 : raw - 1 > int.MaxValue ? throw new KafkaProtocolException($"{what} length {raw - 1} is out of range.") : (int)(raw - 1);
        }
        else
        {
            length = shortLength ? ReadInt16() : ReadInt32();
            if (length < -1)
            {
                throw new KafkaProtocolException($"{what} has negative length {length}.");
            }
        }

        if (length > Remaining)
        {
            throw new KafkaProtocolException($"{what} length {length} exceeds the {Remaining} byte(s) remaining.");
        }

        return length;
    }

    /// <summary>A non-null string; a null on the wire is malformed.</summary>
    public string ReadString(bool compact)
    {
        return ReadNullableString(compact) ?? throw new KafkaProtocolException("Non-nullable string was null.");
    }

    /// <summary>A string (int16 length, or compact), null when the length is -1 (compact: 0).</summary>
    public string? ReadNullableString(bool compact)
    {
        var length = ReadLength(compact, shortLength: true, "String");
        if (length < 0)
        {
            return null;
        }

        var bytes = Take(length);
        if (!Utf8.IsValid(bytes))
        {
            throw new KafkaProtocolException($"String at offset {_position - length} is not valid UTF-8.");
        }

        return length == 0 ? string.Empty : Encoding.UTF8.GetString(bytes);
    }

    /// <summary>Non-null bytes as a slice of the frame (no copy); a null on the wire is malformed.</summary>
    public ReadOnlyMemory<byte> ReadBytes(bool compact)
    {
        return ReadNullableBytes(compact) ?? throw new KafkaProtocolException("Non-nullable bytes were null.");
    }

    /// <summary>Bytes (int32 length, or compact) as a slice of the frame (no copy), or null.</summary>
    public ReadOnlyMemory<byte>? ReadNullableBytes(bool compact)
    {
        var length = ReadLength(compact, shortLength: false, "Bytes");
        if (length < 0)
        {
            return null;
        }

        var slice = _memory.Slice(_position, length);
        _position += length;
        return slice;
    }

    /// <summary>
    /// An array's element count (int32, or compact), -1 for null. Every element takes at least
    /// one byte, so a count larger than the remaining bytes is malformed: this bounds what a
    /// caller pre-allocates by the frame size.
    /// </summary>
    public int ReadArrayLength(bool compact) => ReadLength(compact, shortLength: false, "Array");

    /// <summary>The next <paramref name="length"/> raw bytes as a slice of the frame.</summary>
    public ReadOnlyMemory<byte> ReadRawMemory(int length)
    {
        if (length < 0 || length > Remaining)
        {
            throw Short(length);
        }

        var slice = _memory.Slice(_position, length);
        _position += length;
        return slice;
    }

    /// <summary>Skips <paramref name="length"/> bytes.</summary>
    public void Skip(int length) => Take(length);

    /// <summary>Start of a tagged-field section: the number of fields that follow.</summary>
    public int ReadTaggedFieldCount()
    {
        var count = ReadUnsignedVarint();
        // Each tagged field takes at least two bytes (tag and size).
        if (count > (uint)Remaining)
        {
            throw new KafkaProtocolException($"Tagged field count {count} exceeds the {Remaining} byte(s) remaining.");
        }

        return (int)count;
    }

    /// <summary>One tagged field's tag and the slice holding its value.</summary>
    public TaggedField ReadTaggedField()
    {
        var tag = ReadUnsignedVarint();
        if (tag > int.MaxValue)
        {
            throw new KafkaProtocolException($"Tagged field tag {tag} is out of range.");
        }

        var size = ReadUnsignedVarint();
        if (size > (uint)Remaining)
        {
            throw new KafkaProtocolException($"Tagged field {tag} size {size} exceeds the {Remaining} byte(s) remaining.");
        }

        return new TaggedField((int)tag, ReadRawMemory((int)size));
    }

    /// <summary>
    /// Reads a whole tagged-field section keeping every field (for structures with no known
    /// tagged fields). Returns the existing list (possibly null) with any fields appended.
    /// </summary>
    public List<TaggedField>? ReadUnknownTaggedFields(List<TaggedField>? into)
    {
        var count = ReadTaggedFieldCount();
        for (var i = 0; i < count; i++)
        {
            (into ??= new List<TaggedField>()).Add(ReadTaggedField());
        }

        return into;
    }

    /// <summary>Throws unless the whole frame was consumed (strict decoding of a body).</summary>
    public readonly void EnsureEnd()
    {
        if (Remaining != 0)
        {
            throw new KafkaProtocolException($"{Remaining} unexpected trailing byte(s) at offset {_position}.");
        }
    }
}
