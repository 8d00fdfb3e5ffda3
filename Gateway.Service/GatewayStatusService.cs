using Grpc.Core;
using Microsoft.Extensions.Options;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Gateway;

namespace StreamPlatform.Gateway;

/// <summary>
/// The operator-facing GatewayService (GetStatus): the gateway's own accounting, and the
/// broker-level replication state (real replicas, ISR, offline replicas per partition; under
/// replicated and offline counts) that Kafka's Metadata cannot show through the gateway mapping.
/// </summary>
public sealed class GatewayStatusService(IOptions<GatewayOptions> options, GatewayMetrics metrics, MetadataWatcher watcher,
    StreamPlatform.Gateway.Kafka.RequestMemoryBudget requestBudget)
    : GatewayService.GatewayServiceBase
{
    /// <summary>Most partitions one GetStatus lists: bounds the answer (filter by topic for more).</summary>
    public const int PartitionsMax = 10_000;

    public override Task<GatewayStatus> GetStatus(GetStatusRequest request, ServerCallContext context)
    {
        var o = options.Value;
        var metadata = watcher.Current;
        var status = new GatewayStatus
        {
            NodeId = o.NodeId,
            KafkaEndpoint = $"{o.EffectiveAdvertisedHost}:{o.KafkaPort}",
            OpenConnections = metrics.OpenConnections,
            RequestsTotal = metrics.RequestsTotal,
            MetadataEpoch = metadata.Epoch,
            RequestBytesHeld = requestBudget.InUseBytes,
            RequestBytesCapacity = requestBudget.CapacityBytes,
            ResponseBytesQueued = metrics.QueuedResponseBytes,
            MutedConnections = metrics.MutedConnections,
        };
        foreach (var topic in metadata.Snapshot.Topics)
        {
            var listed = request.IncludePartitions && (request.Topic.Length == 0 || request.Topic == topic.Name);
            foreach (var p in topic.Partitions)
            {
                var leader = metadata.LeaderOf(p);
                if (leader is null) status.OfflinePartitions++;
                if (p.Isr.Count < p.Replicas.Count) status.UnderReplicatedPartitions++;
                if (!listed) continue;
                if (status.Partitions.Count >= PartitionsMax)
                {
                    status.PartitionsTruncated = true;
                    continue;
                }
                status.Partitions.Add(Describe(metadata, topic, p, leader));
            }
        }
        return Task.FromResult(status);
    }

    private static PartitionReplicas Describe(ClusterMetadata metadata, TopicInfo topic, PartitionInfo p, BrokerInfo? leader)
    {
        var result = new PartitionReplicas
        {
            Topic = topic.Name, Partition = p.Partition, Leader = leader?.BrokerId ?? -1, LeaderEpoch = p.LeaderEpoch,
        };
        result.Replicas.AddRange(p.Replicas);
        result.Isr.AddRange(p.Isr);
        result.OfflineReplicas.AddRange(p.Replicas.Where(r => !metadata.BrokersById.TryGetValue(r, out var b) || b.Fenced));
        return result;
    }
}
