using System.Buffers;
using System.Text;
using Google.Protobuf;
using Grpc.Core;
using StreamPlatform.Protos.Grpc.Broker;
using static StreamPlatform.Broker.Services.ProtobufWireReader;

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
                case 5 when wire == 0: Request.ApiVersion = (int)ReadVarint(ref reader); break;
                case 6 when wire == 2: Request.Traceparent = ReadString(ref reader); break;
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

    /// <summary>Returns the rented arrays (once); the records must not be read afterwards.</summary>
    public void Dispose()
    {
        var rented = _rented;
        _rented = null;
        if (rented is null) return;
        foreach (var array in rented) _pool.Return(array);
    }
}

