using System.Buffers.Binary;
using System.Net.Sockets;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.IntegrationTests.Infrastructure;

/// <summary>
/// A bare Kafka protocol connection built on our codec, for what client libraries will not
/// send: unsupported versions, corrupt batches, malformed frames.
/// </summary>
public sealed class RawKafkaConnection : IAsyncDisposable
{
    private static readonly TimeSpan IoTimeout = TimeSpan.FromSeconds(30);
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private int _correlationId;

    private RawKafkaConnection(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    public static async Task<RawKafkaConnection> ConnectAsync(string bootstrap)
    {
        var parts = bootstrap.Split(',')[0].Split(':');
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(parts[0], int.Parse(parts[1]));
        return new RawKafkaConnection(tcp);
    }

    public async Task<TResponse> SendAsync<TResponse>(IKafkaRequest request, short version)
        where TResponse : IKafkaResponse, new()
    {
        var correlationId = await WriteRequestAsync(request, version);
        var frame = await ReadFrameAsync() ?? throw new IOException("The gateway closed the connection instead of answering.");
        return Decode<TResponse>(frame, request.ApiKeyValue, version, correlationId);
    }

    public static TResponse Decode<TResponse>(byte[] frame, short apiKey, short version, int expectedCorrelationId)
        where TResponse : IKafkaResponse, new()
    {
        var reader = new KafkaReader(frame);
        var header = new ResponseHeader();
        header.Read(ref reader, KafkaApis.ResponseHeaderVersion(apiKey, version));
        Assert.Equal(expectedCorrelationId, header.CorrelationId);
        var response = new TResponse();
        response.Read(ref reader, version);
        return response;
    }

    /// <summary>Writes one request and returns its correlation id.</summary>
    public async Task<int> WriteRequestAsync(IKafkaRequest request, short version)
    {
        var header = new RequestHeader
        {
            RequestApiKey = request.ApiKeyValue,
            RequestApiVersion = version,
            CorrelationId = ++_correlationId,
            ClientId = "raw-test",
        };
        var headerVersion = KafkaApis.RequestHeaderVersion(request.ApiKeyValue, version);
        var size = header.ComputeSize(headerVersion) + request.ComputeSize(version);
        var buffer = new byte[4 + size];
        BinaryPrimitives.WriteInt32BigEndian(buffer, size);
        Write(buffer.AsSpan(4), header, headerVersion, request, version);
        await WriteRawAsync(buffer);
        return header.CorrelationId;
    }

    private static void Write(Span<byte> target, RequestHeader header, short headerVersion, IKafkaRequest request, short version)
    {
        var writer = new KafkaWriter(target);
        header.Write(ref writer, headerVersion);
        request.Write(ref writer, version);
    }

    public async Task WriteRawAsync(byte[] bytes)
    {
        using var cts = new CancellationTokenSource(IoTimeout);
        await _stream.WriteAsync(bytes, cts.Token);
        await _stream.FlushAsync(cts.Token);
    }

    /// <summary>The next response frame (without its size prefix), or null when the peer closed.</summary>
    public async Task<byte[]?> ReadFrameAsync()
    {
        using var cts = new CancellationTokenSource(IoTimeout);
        var sizeBytes = new byte[4];
        if (!await ReadExactlyOrEndAsync(sizeBytes, cts.Token)) return null;
        var size = BinaryPrimitives.ReadInt32BigEndian(sizeBytes);
        Assert.InRange(size, 4, 64 * 1024 * 1024);
        var frame = new byte[size];
        if (!await ReadExactlyOrEndAsync(frame, cts.Token)) throw new IOException("Connection closed mid-frame.");
        return frame;
    }

    /// <summary>True when the gateway closes the connection (EOF or reset) within the timeout.</summary>
    public async Task<bool> IsClosedByPeerAsync()
    {
        try
        {
            return await ReadFrameAsync() is null;
        }
        catch (IOException)
        {
            return true;
        }
    }

    private async Task<bool> ReadExactlyOrEndAsync(byte[] buffer, CancellationToken cancellationToken)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await _stream.ReadAsync(buffer.AsMemory(read), cancellationToken);
            if (n == 0)
            {
                if (read == 0) return false;
                throw new IOException("Connection closed mid-frame.");
            }
            read += n;
        }
        return true;
    }

    public ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }
}
