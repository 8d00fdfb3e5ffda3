using System.Buffers;
using System.Text;

namespace StreamPlatform.Broker.Services;

/// <summary>
/// Protobuf wire-format reading over a <see cref="SequenceReader{T}"/>, shared by the hand-bound
/// message parsers that copy record bytes into pooled buffers (<see cref="PooledProduceStreamRequest"/>
/// on the produce stream, Replication.PooledReplicaFetchResponse on followers). Malformed input
/// throws <see cref="InvalidDataException"/>; lengths are checked against what is left before slicing.
/// </summary>
internal static class ProtobufWireReader
{
    internal static (int Field, int Wire) ReadTag(ref SequenceReader<byte> reader)
    {
        var tag = ReadVarint(ref reader);
        var field = (int)(tag >> 3);
        if (field == 0) throw new InvalidDataException("Field number 0.");
        return (field, (int)(tag & 7));
    }

    internal static ulong ReadVarint(ref SequenceReader<byte> reader)
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (!reader.TryRead(out var b)) throw new InvalidDataException("Truncated varint.");
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return value;
        }
        throw new InvalidDataException("Varint longer than 10 bytes.");
    }

    internal static ReadOnlySequence<byte> ReadLengthDelimited(ref SequenceReader<byte> reader)
    {
        var length = ReadVarint(ref reader);
        if (length > (ulong)reader.Remaining) throw new InvalidDataException("Length-delimited field past the end of the message.");
        var slice = reader.UnreadSequence.Slice(0, (long)length);
        reader.Advance((long)length);
        return slice;
    }

    internal static string ReadString(ref SequenceReader<byte> reader)
    {
        var bytes = ReadLengthDelimited(ref reader);
        return bytes.IsSingleSegment ? Encoding.UTF8.GetString(bytes.FirstSpan) : Encoding.UTF8.GetString(bytes.ToArray());
    }

    internal static void Skip(ref SequenceReader<byte> reader, int wire)
    {
        switch (wire)
        {
            case 0: ReadVarint(ref reader); break;
            case 1: if (!reader.TryAdvance(8)) throw new InvalidDataException("Truncated fixed64."); break;
            case 2: ReadLengthDelimited(ref reader); break;
            case 5: if (!reader.TryAdvance(4)) throw new InvalidDataException("Truncated fixed32."); break;
            default: throw new InvalidDataException($"Unsupported wire type {wire}.");
        }
    }

    private static bool TryAdvance(this ref SequenceReader<byte> reader, long count)
    {
        if (reader.Remaining < count) return false;
        reader.Advance(count);
        return true;
    }
}
