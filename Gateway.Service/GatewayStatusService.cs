using Grpc.Core;
using Microsoft.Extensions.Options;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Gateway;

namespace StreamPlatform.Gateway;

/// <summary>The operator-facing GatewayService (GetStatus).</summary>
public sealed class GatewayStatusService(IOptions<GatewayOptions> options, GatewayMetrics metrics, MetadataWatcher watcher,
    StreamPlatform.Gateway.Kafka.RequestMemoryBudget requestBudget)
    : GatewayService.GatewayServiceBase
{
    public override Task<GatewayStatus> GetStatus(GetStatusRequest request, ServerCallContext context)
    {
        var o = options.Value;
        return Task.FromResult(new GatewayStatus
        {
            NodeId = o.NodeId,
            KafkaEndpoint = $"{o.EffectiveAdvertisedHost}:{o.KafkaPort}",
            OpenConnections = metrics.OpenConnections,
            RequestsTotal = metrics.RequestsTotal,
            MetadataEpoch = watcher.Current.Epoch,
            RequestBytesHeld = requestBudget.InUseBytes,
            RequestBytesCapacity = requestBudget.CapacityBytes,
            ResponseBytesQueued = metrics.QueuedResponseBytes,
            MutedConnections = metrics.MutedConnections,
        });
    }
}
