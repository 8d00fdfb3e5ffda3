using System.Buffers;
using System.Text;
using Google.Protobuf;
using Grpc.Core;
using StreamPlatform.Protos.Grpc.Broker;

namespace StreamPlatform.Broker.Replication;

/// <summary>
/// A <see cref="ReplicaFetchResponse"/> as the follower reads it: the generated parser would copy
/// every partition's records into a fresh array (up to replica.fetch.max.bytes, on the Large
/// Object Heap, at the replication rate); this one copies them once out of the transport's
/// buffers into arrays rented from a pool and wraps them. <see cref="Dispose"/> returns the
/// arrays: call it once the records were appended (AppendAsFollower copies them to the file).
/// Same field semantics as the generated parser (absent fields keep proto3 defaults, unknown
/// fields are skipped).
/// </summary>
public sealed class PooledReplicaFetchResponse : IDisposable
{
    /// <summary>The Replicate method with this response type, for the follower's calls.</summary>
    public static readonly Method<ReplicaFetchRequest, PooledReplicaFetchResponse> ReplicateMethod = new(
        MethodType.DuplexStreaming,
        ReplicationService.Descriptor.FullName,
        "Replicate",
        Marshallers.Create<ReplicaFetchRequest>(
            (request, context) =>
            {
                context.SetPayloadLength(request.CalculateSize());
                request.WriteTo(context.GetBufferWriter());
                context.Complete();
            },
            context => ReplicaFetchRequest.Parser.ParseFrom(context.PayloadAsReadOnlySequence())),
        Marshallers.Create<PooledReplicaFetchResponse>(
            (response, context) =>
            {
                context.SetPayloadLength(response.Response.CalculateSize());
                response.Response.WriteTo(context.GetBufferWriter());
                context.Complete();
            },
            context => Parse(context.PayloadAsReadOnlySequence(), ArrayPool<byte>.Shared)));

    private readonly ArrayPool<byte> _pool;
    private List<byte[]>? _rented;

    private PooledReplicaFetchResponse(ArrayPool<byte> pool) => _pool = pool;

    public ReplicaFetchResponse Response { get; } = new();

    /// <summary>Parses the protobuf encoding; malformed input throws <see cref="InvalidDataException"/> with every rented array returned.</summary>
    public static PooledReplicaFetchResponse Parse(ReadOnlySequence<byte> payload, ArrayPool<byte> pool)
    {
        var result = new PooledReplicaFetchResponse(pool);
        try
        {
            var reader = new SequenceReader<byte>(payload);
            while (!reader.End)
            {
                var (field, wire) = ReadTag(ref reader);
                if (field == 1 && wire == 2) result.Response.Results.Add(result.ParseResult(ReadLengthDelimited(ref reader)));
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

    private ReplicaFetchPartitionResult ParseResult(ReadOnlySequence<byte> payload)
    {
        var r = new ReplicaFetchPartitionResult();
        var reader = new SequenceReader<byte>(payload);
        while (!reader.End)
        {
            var (field, wire) = ReadTag(ref reader);
            switch (field)
            {
                case 1 when wire == 2: r.Topic = ReadString(ref reader); break;
                // int32 fields: negative values are 10-byte varints of the sign-extended int64.
                case 2 when wire == 0: r.Partition = (int)ReadVarint(ref reader); break;
                case 3 when wire == 0: r.ErrorCode = (int)ReadVarint(ref reader); break;
                case 4 when wire == 0: r.HighWatermark = (long)ReadVarint(ref reader); break;
                case 5 when wire == 0: r.LogStartOffset = (long)ReadVarint(ref reader); break;
                case 6 when wire == 0: r.LogEndOffset = (long)ReadVarint(ref reader); break;
                case 7 when wire == 0: r.DivergingEpoch = (int)ReadVarint(ref reader); break;
                case 8 when wire == 0: r.DivergingEndOffset = (long)ReadVarint(ref reader); break;
                case 9 when wire == 2: r.Records = Rent(ReadLengthDelimited(ref reader)); break;
                default: Skip(ref reader, wire); break;
            }
        }
        return r;
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
            case 1: if (reader.Remaining < 8) throw new InvalidDataException("Truncated fixed64."); reader.Advance(8); break;
            case 2: ReadLengthDelimited(ref reader); break;
            case 5: if (reader.Remaining < 4) throw new InvalidDataException("Truncated fixed32."); reader.Advance(4); break;
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
