using System.Buffers;
using System.Text;
using Google.Protobuf;
using Grpc.Core;
using StreamPlatform.Protos.Grpc.Broker;

namespace StreamPlatform.Broker.Services;

/// <summary>
/// A <see cref="ProduceStreamRequest"/> as the broker reads it: the generated parser would copy
/// every partition's records into a fresh byte array (100 KiB - 1 MiB batches land on the Large
/// Object Heap: page faults and gen2 collections); this one copies them once out of the
/// transport's buffers into arrays rented from a pool and wraps them. <see cref="Dispose"/>
/// returns the arrays: call it only when nothing reads the records any more (after the append).
/// </summary>
public sealed class PooledProduceStreamRequest : IDisposable
{
    private readonly ArrayPool<byte> _pool;
    private List<byte[]>? _rented;

    private PooledProduceStreamRequest(ArrayPool<byte> pool) => _pool = pool;

    public long RequestId { get; private set; }
    public ProduceRequest Request { get; } = new();

    /// <summary>The server-side marshaller: parses with <see cref="ArrayPool{T}.Shared"/>; serializing is the generated message's.</summary>
    public static readonly Marshaller<PooledProduceStreamRequest> Marshaller = Marshallers.Create(
        (request, context) =>
        {
            var message = new ProduceStreamRequest { RequestId = request.RequestId, Request = request.Request };
            context.SetPayloadLength(message.CalculateSize());
            message.WriteTo(context.GetBufferWriter());
            context.Complete();
        },
        context => Parse(context.PayloadAsReadOnlySequence(), ArrayPool<byte>.Shared));

    /// <summary>
    /// Parses the protobuf encoding of a <see cref="ProduceStreamRequest"/> (unknown fields
    /// skipped, a repeated sub-message merged as protobuf does). Malformed input throws
    /// <see cref="InvalidDataException"/>, with every array already rented returned.
    /// </summary>
    public static PooledProduceStreamRequest Parse(ReadOnlySequence<byte> payload, ArrayPool<byte> pool)
    {
        var result = new PooledProduceStreamRequest(pool);
        try
        {
            var reader = new SequenceReader<byte>(payload);
            while (!reader.End)
            {
                var (field, wire) = ReadTag(ref reader);
                if (field == 1 && wire == 0) result.RequestId = (long)ReadVarint(ref reader);
                else if (field == 2 && wire == 2) result.ParseProduceRequest(ReadLengthDelimited(ref reader));
                else Skip(ref reader, wire);
            }
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    private void ParseProduceRequest(ReadOnlySequence<byte> payload)
    {
        var reader = new SequenceReader<byte>(payload);
        while (!reader.End)
        {
            var (field, wire) = ReadTag(ref reader);
            switch (field)
            {
                case 1 when wire == 0: Request.Acks = (int)ReadVarint(ref reader); break;
                case 2 when wire == 0: Request.TimeoutMs = (int)ReadVarint(ref reader); break;
                case 3 when wire == 2: Request.TransactionalId = ReadString(ref reader); break;
                case 4 when wire == 2: Request.Partitions.Add(ParsePartition(ReadLengthDelimited(ref reader))); break;
                default: Skip(ref reader, wire); break;
            }
        }
    }

    private PartitionProduce ParsePartition(ReadOnlySequence<byte> payload)
    {
        var partition = new PartitionProduce();
        var reader = new SequenceReader<byte>(payload);
        while (!reader.End)
        {
            var (field, wire) = ReadTag(ref reader);
            switch (field)
            {
                case 1 when wire == 2: partition.Topic = ReadString(ref reader); break;
                case 2 when wire == 0: partition.Partition = (int)ReadVarint(ref reader); break;
                case 3 when wire == 2: partition.Records = Rent(ReadLengthDelimited(ref reader)); break;
                default: Skip(ref reader, wire); break;
            }
        }
        return partition;
    }

    private ByteString Rent(ReadOnlySequence<byte> bytes)
    {
        if (bytes.IsEmpty) return ByteString.Empty;
        var length = (int)bytes.Length;
        var array = _pool.Rent(length);
        (_rented ??= []).Add(array);
        bytes.CopyTo(array);
        return UnsafeByteOperations.UnsafeWrap(new ReadOnlyMemory<byte>(array, 0, length));
    }

    private static (int Field, int Wire) ReadTag(ref SequenceReader<byte> reader)
    {
        var tag = ReadVarint(ref reader);
        var field = (int)(tag >> 3);
        if (field == 0) throw new InvalidDataException("Field number 0.");
        return (field, (int)(tag & 7));
    }

    private static ulong ReadVarint(ref SequenceReader<byte> reader)
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

    private static ReadOnlySequence<byte> ReadLengthDelimited(ref SequenceReader<byte> reader)
    {
        var length = ReadVarint(ref reader);
        if (length > (ulong)reader.Remaining) throw new InvalidDataException("Length-delimited field past the end of the message.");
        var slice = reader.UnreadSequence.Slice(0, (long)length);
        reader.Advance((long)length);
        return slice;
    }

    private static string ReadString(ref SequenceReader<byte> reader)
    {
        var bytes = ReadLengthDelimited(ref reader);
        return bytes.IsSingleSegment ? Encoding.UTF8.GetString(bytes.FirstSpan) : Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static void Skip(ref SequenceReader<byte> reader, int wire)
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

    /// <summary>Returns the rented arrays (once); the records must not be read afterwards.</summary>
    public void Dispose()
    {
        var rented = _rented;
        _rented = null;
        if (rented is null) return;
        foreach (var array in rented) _pool.Return(array);
    }
}

internal static class SequenceReaderExtensions
{
    public static bool TryAdvance(this ref SequenceReader<byte> reader, long count)
    {
        if (reader.Remaining < count) return false;
        reader.Advance(count);
        return true;
    }
}
