using System.Buffers;
using System.Text;
using Google.Protobuf;
using Grpc.Core;
using Brk = StreamPlatform.Protos.Grpc.Broker;

namespace StreamPlatform.Gateway.Routing;

/// <summary>
/// One partition of a broker's Fetch answer; <see cref="Records"/> is a slice of the owning
/// response's pooled buffer. <see cref="AbortedTransactions"/>: the transactions aborted within
/// the records (read_committed), in the broker's order; null when the broker listed none.
/// </summary>
public readonly record struct BrokerFetchResult(
    string Topic, int Partition, int ErrorCode, long HighWatermark, long LastStableOffset, long LogStartOffset, ReadOnlyMemory<byte> Records,
    List<BrokerAbortedTransaction>? AbortedTransactions = null);

/// <summary>One <c>streamplatform.broker.AbortedTransaction</c>: a producer and the first offset of its aborted transaction.</summary>
public readonly record struct BrokerAbortedTransaction(long ProducerId, long FirstOffset);

/// <summary>
/// A broker's <c>streamplatform.broker.FetchResponse</c>, parsed by hand from the gRPC payload:
/// protobuf's generated parser copies each partition's records into a new ByteString (up to
/// 1 MiB each, on the Large Object Heap); here the payload is copied once into a rented buffer
/// and the records are slices of it, which the Kafka response then references. The buffer goes
/// back to the pool on <see cref="Dispose"/>, which the owner calls only after the Kafka
/// response was serialized. Same wire format as the generated type (proto3; unknown fields
/// skipped, fields may repeat: the last value wins, like protobuf; the repeated aborted_transactions
/// accumulate).
/// </summary>
public sealed class BrokerFetchResponse : IDisposable
{
    private readonly ArrayPool<byte>? _pool;
    private byte[]? _buffer;

    private BrokerFetchResponse(ArrayPool<byte>? pool, byte[]? buffer, List<BrokerFetchResult> results)
    {
        _pool = pool;
        _buffer = buffer;
        Results = results;
    }

    public List<BrokerFetchResult> Results { get; }

    /// <summary>Copies <paramref name="payload"/> into a buffer from <paramref name="pool"/> and parses it; malformed input throws <see cref="InvalidDataException"/>.</summary>
    public static BrokerFetchResponse Parse(ReadOnlySequence<byte> payload, ArrayPool<byte> pool)
    {
        if (payload.Length > int.MaxValue) throw new InvalidDataException("Fetch response too large.");
        var length = (int)payload.Length;
        if (length == 0) return new BrokerFetchResponse(null, null, []);
        var buffer = pool.Rent(length);
        try
        {
            payload.CopyTo(buffer);
            var results = ParseResults(buffer.AsMemory(0, length));
            return new BrokerFetchResponse(pool, buffer, results);
        }
        catch
        {
            pool.Return(buffer);
            throw;
        }
    }

    private static List<BrokerFetchResult> ParseResults(ReadOnlyMemory<byte> message)
    {
        var results = new List<BrokerFetchResult>();
        var reader = new ProtoWireReader(message.Span);
        while (!reader.End)
        {
            var (field, wireType) = reader.ReadTag();
            if (field == 1 && wireType == ProtoWireReader.LengthDelimited)
            {
                var length = reader.ReadLengthDelimited().Length;
                results.Add(ParseResult(message.Slice(reader.Position - length, length)));
            }
            else
            {
                reader.Skip(wireType);
            }
        }
        return results;
    }

    private static BrokerFetchResult ParseResult(ReadOnlyMemory<byte> message)
    {
        string topic = "";
        int partition = 0, errorCode = 0;
        long highWatermark = 0, lastStableOffset = 0, logStartOffset = 0;
        var records = ReadOnlyMemory<byte>.Empty;
        List<BrokerAbortedTransaction>? aborted = null;
        var reader = new ProtoWireReader(message.Span);
        while (!reader.End)
        {
            var (field, wireType) = reader.ReadTag();
            switch (field, wireType)
            {
                case (1, ProtoWireReader.LengthDelimited):
                    topic = Encoding.UTF8.GetString(reader.ReadLengthDelimited());
                    break;
                case (2, ProtoWireReader.Varint):
                    partition = (int)reader.ReadVarint(); // int32: the low 32 bits, as protobuf does
                    break;
                case (3, ProtoWireReader.Varint):
                    errorCode = (int)reader.ReadVarint();
                    break;
                case (4, ProtoWireReader.Varint):
                    highWatermark = (long)reader.ReadVarint();
                    break;
                case (5, ProtoWireReader.Varint):
                    lastStableOffset = (long)reader.ReadVarint();
                    break;
                case (6, ProtoWireReader.Varint):
                    logStartOffset = (long)reader.ReadVarint();
                    break;
                case (7, ProtoWireReader.LengthDelimited):
                    var length = reader.ReadLengthDelimited().Length;
                    records = message.Slice(reader.Position - length, length);
                    break;
                case (8, ProtoWireReader.LengthDelimited):
                    (aborted ??= []).Add(ParseAbortedTransaction(reader.ReadLengthDelimited()));
                    break;
                default:
                    reader.Skip(wireType);
                    break;
            }
        }
        return new BrokerFetchResult(topic, partition, errorCode, highWatermark, lastStableOffset, logStartOffset, records, aborted);
    }

    /// <summary>An AbortedTransaction message (1: producer_id, 2: first_offset, both int64 varints); a field given twice keeps its last value, unknown fields are skipped.</summary>
    private static BrokerAbortedTransaction ParseAbortedTransaction(ReadOnlySpan<byte> message)
    {
        long producerId = 0, firstOffset = 0;
        var reader = new ProtoWireReader(message);
        while (!reader.End)
        {
            var (field, wireType) = reader.ReadTag();
            switch (field, wireType)
            {
                case (1, ProtoWireReader.Varint):
                    producerId = (long)reader.ReadVarint();
                    break;
                case (2, ProtoWireReader.Varint):
                    firstOffset = (long)reader.ReadVarint();
                    break;
                default:
                    reader.Skip(wireType);
                    break;
            }
        }
        return new BrokerAbortedTransaction(producerId, firstOffset);
    }

    /// <summary>
    /// For an answer nobody will use (a dropped call): it goes back to the pool when it arrives,
    /// without awaiting it and without an exception for a failed call.
    /// </summary>
    public static void DisposeWhenAnswered(Task<BrokerFetchResponse?> answer)
        => answer.ContinueWith(static t => { if (t.IsCompletedSuccessfully) t.Result?.Dispose(); }, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>Returns the buffer: every <see cref="BrokerFetchResult.Records"/> is invalid afterwards.</summary>
    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref _buffer, null);
        if (buffer is not null) _pool!.Return(buffer);
    }

    /// <summary>
    /// The client side of <c>BrokerService.Fetch</c> answering with this type: the same method
    /// name as the generated one, so the wire does not change.
    /// </summary>
    public static readonly Method<Brk.FetchRequest, BrokerFetchResponse> Method = new(
        MethodType.Unary,
        Brk.BrokerService.Descriptor.FullName,
        "Fetch",
        Marshallers.Create<Brk.FetchRequest>(
            static (request, context) =>
            {
                context.SetPayloadLength(request.CalculateSize());
                request.WriteTo(context.GetBufferWriter());
                context.Complete();
            },
            static context => Brk.FetchRequest.Parser.ParseFrom(context.PayloadAsReadOnlySequence())),
        Marshallers.Create<BrokerFetchResponse>(
            // Only the client side uses this method: responses are never serialized here.
            static (_, _) => throw new NotSupportedException("BrokerFetchResponse is receive-only."),
            static context => Parse(context.PayloadAsReadOnlySequence(), ArrayPool<byte>.Shared)));
}

/// <summary>
/// The protobuf wire format's primitives over one contiguous message, bounds-checked: any
/// truncated or malformed input throws <see cref="InvalidDataException"/>, nothing else.
/// </summary>
public ref struct ProtoWireReader(ReadOnlySpan<byte> buffer)
{
    public const int Varint = 0, Fixed64 = 1, LengthDelimited = 2, StartGroup = 3, EndGroup = 4, Fixed32 = 5;

    private readonly ReadOnlySpan<byte> _buffer = buffer;

    public int Position { get; private set; }
    public readonly bool End => Position >= _buffer.Length;

    public (int Field, int WireType) ReadTag()
    {
        var tag = ReadVarint();
        var field = tag >> 3;
        if (field is 0 or > 536_870_911) throw new InvalidDataException($"Invalid field number {field}.");
        return ((int)field, (int)(tag & 7));
    }

    public ulong ReadVarint()
    {
        ulong value = 0;
        for (var shift = 0; shift < 70; shift += 7)
        {
            if (Position >= _buffer.Length) throw new InvalidDataException("Truncated varint.");
            var b = _buffer[Position++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return value;
        }
        throw new InvalidDataException("Varint longer than 10 bytes.");
    }

    public ReadOnlySpan<byte> ReadLengthDelimited()
    {
        var length = ReadVarint();
        if (length > (ulong)(_buffer.Length - Position)) throw new InvalidDataException("Truncated length-delimited field.");
        var value = _buffer.Slice(Position, (int)length);
        Position += (int)length;
        return value;
    }

    /// <summary>Skips an unknown field's value. Groups (deprecated, unused by proto3) are rejected.</summary>
    public void Skip(int wireType)
    {
        switch (wireType)
        {
            case Varint: ReadVarint(); break;
            case Fixed64: Advance(8); break;
            case LengthDelimited: ReadLengthDelimited(); break;
            case Fixed32: Advance(4); break;
            default: throw new InvalidDataException($"Unsupported wire type {wireType}.");
        }
    }

    private void Advance(int count)
    {
        if (count > _buffer.Length - Position) throw new InvalidDataException("Truncated fixed-size field.");
        Position += count;
    }
}
