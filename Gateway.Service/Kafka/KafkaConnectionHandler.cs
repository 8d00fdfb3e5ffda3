using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Apis;

namespace StreamPlatform.Gateway.Kafka;

/// <summary>
/// Kestrel entry point for the Kafka listener: admits the connection under the connection limits
/// (<see cref="ConnectionLimiter"/>), then runs one <see cref="KafkaConnection"/> per socket.
/// The listener is PLAINTEXT, so its connections are authenticated from the start.
/// </summary>
public sealed class KafkaConnectionHandler(
    ApiRegistry registry,
    IOptions<GatewayOptions> options,
    GatewayMetrics metrics,
    RequestMemoryBudget budget,
    ConnectionLimiter limiter,
    TimeProvider time,
    ILogger<KafkaConnectionHandler> logger) : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        var address = (connection.RemoteEndPoint as IPEndPoint)?.Address;
        if (address is { IsIPv4MappedToIPv6: true }) address = address.MapToIPv4();
        if (limiter.TryAdmit(address) is { } refused)
        {
            logger.LogInformation("Kafka connection {ConnectionId} from {Remote} refused: {Reason} reached",
                connection.ConnectionId, connection.RemoteEndPoint, refused);
            metrics.ConnectionRejected(refused);
            connection.Abort(new ConnectionAbortedException(refused));
            return;
        }
        metrics.ConnectionOpened();
        logger.LogDebug("Kafka connection {ConnectionId} from {Remote}", connection.ConnectionId, connection.RemoteEndPoint);
        try
        {
            var kafka = new KafkaConnection(connection.Transport, registry, options.Value, metrics, logger, connection.ConnectionId, budget,
                time, authenticated: true, clientHost: ClientAddress.Format(connection.RemoteEndPoint));
            await kafka.RunAsync(connection.ConnectionClosed).ConfigureAwait(false);
        }
        finally
        {
            metrics.ConnectionClosed();
            limiter.Release(address);
        }
    }
}
