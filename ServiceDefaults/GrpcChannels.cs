using System.Net;
using Grpc.Net.Client;

namespace StreamPlatform.ServiceDefaults;

/// <summary>
/// gRPC channels between our own services. They deliberately bypass the standard resilience
/// handler: metadata watches and replication are long-lived streams with their own deadlines
/// and reconnect loops, and Produce must never be retried blindly (a retry could duplicate
/// records). Callers set a deadline on every call.
/// </summary>
public static class GrpcChannels
{
    /// <summary>HTTP/2 receive window per connection between our services (Kestrel side; see AddServiceDefaults).</summary>
    public const int Http2ConnectionWindowBytes = 16 * 1024 * 1024;
    /// <summary>HTTP/2 receive window per stream, both as server (Kestrel) and client (a fetch answer of several MiB arrives without WINDOW_UPDATE stops).</summary>
    public const int Http2StreamWindowBytes = 8 * 1024 * 1024;

    /// <summary>The send and receive limit of <see cref="Create"/>'s channels unless told otherwise.</summary>
    public const int MessageBytesMaxDefault = 64 * 1024 * 1024;

    public static GrpcChannel Create(Uri address, int maxMessageBytes = MessageBytesMaxDefault)
    {
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            // Detect a dead peer on an idle stream quickly: brokers are killed with -9 in tests.
            KeepAlivePingDelay = TimeSpan.FromSeconds(10),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            ConnectTimeout = TimeSpan.FromSeconds(5),
            AutomaticDecompression = DecompressionMethods.None,
            InitialHttp2StreamWindowSize = Http2StreamWindowBytes,
        };
        return GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = handler,
            MaxReceiveMessageSize = maxMessageBytes,
            MaxSendMessageSize = maxMessageBytes,
            // No channel-level retry policy: see the class comment.
            MaxRetryAttempts = 0,
        });
    }
}
