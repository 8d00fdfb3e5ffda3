using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Apis;

namespace StreamPlatform.Gateway.Kafka;

/// <summary>Kestrel entry point for the Kafka listener: one <see cref="KafkaConnection"/> per socket.</summary>
public sealed class KafkaConnectionHandler(
    ApiRegistry registry,
    IOptions<GatewayOptions> options,
    GatewayMetrics metrics,
    RequestMemoryBudget budget,
    ILogger<KafkaConnectionHandler> logger) : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        metrics.ConnectionOpened();
        logger.LogDebug("Kafka connection {ConnectionId} from {Remote}", connection.ConnectionId, connection.RemoteEndPoint);
        try
        {
            var kafka = new KafkaConnection(connection.Transport, registry, options.Value, metrics, logger, connection.ConnectionId, budget,
                ClientAddress.Format(connection.RemoteEndPoint));
            await kafka.RunAsync(connection.ConnectionClosed).ConfigureAwait(false);
        }
        finally
        {
            metrics.ConnectionClosed();
        }
    }
}
