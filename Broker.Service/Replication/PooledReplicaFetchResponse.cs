using System.Buffers;
using System.Text;
using Google.Protobuf;
using Grpc.Core;
using StreamPlatform.Protos.Grpc.Broker;
using static StreamPlatform.Broker.Services.ProtobufWireReader;

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

    /// <summary>Returns the rented arrays (once); the records must not be read afterwards.</summary>
    public void Dispose()
    {
        var rented = _rented;
        _rented = null;
        if (rented is null) return;
        foreach (var array in rented) _pool.Return(array);
    }
}
