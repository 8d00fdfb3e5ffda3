using System.Buffers.Binary;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Protos.Kafka;

/// <summary>
/// Whole request/response frames: a 4-byte big-endian size, the header (whose version follows
/// from the API key and version, see <see cref="KafkaApis"/>), then the body.
/// </summary>
public static class KafkaFrames
{
    /// <summary>Bytes of the size prefix in front of every frame.</summary>
    public const int SizePrefixBytes = 4;

    /// <summary>
    /// Reads a request header from a frame (without its size prefix). The header's own version
    /// depends on the API key and version in its first four bytes, so they are peeked first.
    /// </summary>
    public static RequestHeader ReadRequestHeader(ref KafkaReader reader)
    {
        if (reader.Remaining < 4)
        {
            throw new KafkaProtocolException($"Request frame of {reader.Remaining} byte(s) is too short for a header.");
        }

        var start = reader.Buffer.Span[reader.Position..];
        var apiKey = BinaryPrimitives.ReadInt16BigEndian(start);
        var apiVersion = BinaryPrimitives.ReadInt16BigEndian(start[2..]);
        var header = new RequestHeader();
        header.Read(ref reader, KafkaApis.RequestHeaderVersion(apiKey, apiVersion));
        return header;
    }

    /// <summary>Size of a whole response frame, size prefix included.</summary>
    public static int ComputeResponseFrameSize(ApiKey apiKey, short apiVersion, IKafkaResponse body) =>
        SizePrefixBytes + ResponseHeaderSize(apiKey, apiVersion) + body.ComputeSize(apiVersion);

    /// <summary>Writes size prefix, response header and body; the writer must hold <see cref="ComputeResponseFrameSize"/> bytes.</summary>
    public static void WriteResponseFrame(ref KafkaWriter writer, ApiKey apiKey, short apiVersion, int correlationId, IKafkaResponse body)
    {
        var bodySize = body.ComputeSize(apiVersion);
        writer.WriteInt32(ResponseHeaderSize(apiKey, apiVersion) + bodySize);
        writer.WriteInt32(correlationId);
        if (KafkaApis.ResponseHeaderVersion(apiKey, apiVersion) >= 1)
        {
            writer.WriteUnsignedVarint(0); // empty tagged-field section
        }

        var before = writer.Position;
        body.Write(ref writer, apiVersion);
        if (writer.Position - before != bodySize)
        {
            throw new InvalidOperationException($"{body.GetType().Name} v{apiVersion} wrote {writer.Position - before} bytes but computed {bodySize}.");
        }
    }

    /// <summary>A response frame in a new array (convenience for tests and rare paths).</summary>
    public static byte[] EncodeResponseFrame(ApiKey apiKey, short apiVersion, int correlationId, IKafkaResponse body)
    {
        var frame = new byte[ComputeResponseFrameSize(apiKey, apiVersion, body)];
        var writer = new KafkaWriter(frame);
        WriteResponseFrame(ref writer, apiKey, apiVersion, correlationId, body);
        return frame;
    }

    /// <summary>Size of a whole request frame, size prefix included (client side: tests, tools).</summary>
    public static int ComputeRequestFrameSize(RequestHeader header, IKafkaRequest body) =>
        SizePrefixBytes + header.ComputeSize(RequestHeaderVersion(header)) + body.ComputeSize(header.RequestApiVersion);

    /// <summary>Writes size prefix, request header and body.</summary>
    public static void WriteRequestFrame(ref KafkaWriter writer, RequestHeader header, IKafkaRequest body)
    {
        var headerVersion = RequestHeaderVersion(header);
        writer.WriteInt32(header.ComputeSize(headerVersion) + body.ComputeSize(header.RequestApiVersion));
        header.Write(ref writer, headerVersion);
        body.Write(ref writer, header.RequestApiVersion);
    }

    /// <summary>A request frame in a new array.</summary>
    public static byte[] EncodeRequestFrame(RequestHeader header, IKafkaRequest body)
    {
        var frame = new byte[ComputeRequestFrameSize(header, body)];
        var writer = new KafkaWriter(frame);
        WriteRequestFrame(ref writer, header, body);
        return frame;
    }

    private static short RequestHeaderVersion(RequestHeader header) =>
        KafkaApis.RequestHeaderVersion(header.RequestApiKey, header.RequestApiVersion);

    private static int ResponseHeaderSize(ApiKey apiKey, short apiVersion) =>
        KafkaApis.ResponseHeaderVersion(apiKey, apiVersion) >= 1 ? 5 : 4;
}
