using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;

namespace StreamPlatform.Gateway.Cluster;

/// <summary>
/// How clients see the cluster: the gateways are the brokers. Each real broker id maps to one
/// gateway deterministically (gateways ordered by node id, index = broker id mod count), so every
/// gateway gives the same answer and partitions led by different brokers spread over gateways.
/// </summary>
public static class GatewayMapping
{
    /// <summary>The live gateways, or just this one while the metadata does not list it yet.</summary>
    public static IReadOnlyList<GatewayInfo> Gateways(ClusterMetadata metadata, GatewayOptions self)
    {
        if (metadata.LiveGateways.Count > 0) return metadata.LiveGateways;
        return [new GatewayInfo { NodeId = self.NodeId, KafkaHost = self.EffectiveAdvertisedHost, KafkaPort = self.KafkaPort, Rack = self.Rack ?? "" }];
    }

    /// <summary>The gateway presented as the leader of a partition led by <paramref name="brokerId"/>; -1 for no leader.</summary>
    public static int GatewayFor(IReadOnlyList<GatewayInfo> gateways, int brokerId)
    {
        if (brokerId < 0 || gateways.Count == 0) return -1;
        return gateways[brokerId % gateways.Count].NodeId;
    }

    /// <summary>Broker ids mapped to gateway ids, duplicates removed, order kept (one gateway: [id]).</summary>
    public static List<int> MapBrokers(IReadOnlyList<GatewayInfo> gateways, IEnumerable<int> brokerIds)
    {
        var result = new List<int>();
        foreach (var id in brokerIds)
        {
            var g = GatewayFor(gateways, id);
            if (g >= 0 && !result.Contains(g)) result.Add(g);
        }
        return result;
    }

    /// <summary>The controller id clients see: a gateway, chosen from the real controller id the same way.</summary>
    public static int ControllerFor(IReadOnlyList<GatewayInfo> gateways, int controllerId)
        => gateways.Count == 0 ? -1 : gateways[Math.Max(controllerId, 0) % gateways.Count].NodeId;
}
