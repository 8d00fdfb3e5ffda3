using System.Buffers.Binary;
using StreamPlatform.Gateway.Apis;
using StreamPlatform.Protos.Kafka;

namespace StreamPlatform.Gateway.Kafka;

/// <summary>
/// What a connection's writer sends next: a response, or an instruction to close. The response
/// is serialized by the writer straight into the transport's buffer when its turn comes (one copy
/// of a Fetch's records, from the brokers' pooled answers into the socket's buffer, instead of a
/// serialized copy first), so the resources it references (<see cref="RequestContext.DisposeAfterResponse"/>)
/// stay alive until then and are released by <see cref="Release"/>: after the write, or when the
/// response is dropped.
/// </summary>
internal sealed class Outgoing
{
    private readonly IKafkaResponse? _response;
    private readonly int _correlationId;
    private readonly short _headerVersion;
    private readonly short _version;
    private readonly int _bodySize;
    private RequestContext? _context;

    private Outgoing(IKafkaResponse? response, int correlationId, short headerVersion, short version, RequestContext? context, bool close)
    {
        _response = response;
        _correlationId = correlationId;
        _headerVersion = headerVersion;
        _version = version;
        _context = context;
        Close = close;
        if (response is null) return;
        _bodySize = response.ComputeSize(version);
        Length = FrameReader.SizePrefixBytes + HeaderSize + _bodySize;
    }

    public static readonly Outgoing CloseConnection = new(null, 0, 0, 0, null, close: true);

    /// <summary>
    /// <paramref name="response"/> to be sent with a header of <paramref name="headerVersion"/>;
    /// its size is computed now (it counts against the connection's unsent bytes from now on).
    /// <paramref name="context"/>: whose response resources <see cref="Release"/> disposes.
    /// </summary>
    public static Outgoing For(int correlationId, short headerVersion, IKafkaResponse response, short version, RequestContext? context = null)
        => new(response, correlationId, headerVersion, version, context, close: false);

    public bool Close { get; }

    /// <summary>Bytes on the wire: size prefix + response header (v0: correlation id; v1: + empty tagged fields) + body; 0 to close.</summary>
    public int Length { get; }

    private int HeaderSize => _headerVersion >= 1 ? 5 : 4;

    /// <summary>Writes the whole frame into the first <see cref="Length"/> bytes of <paramref name="destination"/>.</summary>
    public void WriteTo(Span<byte> destination)
    {
        if (_response is null) throw new InvalidOperationException("Nothing to write: this closes the connection.");
        if (destination.Length < Length) throw new ArgumentException($"The frame needs {Length} bytes, got {destination.Length}.", nameof(destination));
        BinaryPrimitives.WriteInt32BigEndian(destination, HeaderSize + _bodySize);
        BinaryPrimitives.WriteInt32BigEndian(destination[4..], _correlationId);
        if (_headerVersion >= 1) destination[8] = 0; // no tagged fields
        var writer = new KafkaWriter(destination.Slice(FrameReader.SizePrefixBytes + HeaderSize, _bodySize));
        _response.Write(ref writer, _version);
    }

    /// <summary>Disposes what the response referenced (once): after it was written, or when it never will be.</summary>
    public void Release() => Interlocked.Exchange(ref _context, null)?.DisposeResponseResources();
}
