using StreamPlatform.Protos.Grpc;

namespace StreamPlatform.Broker.Replication;

/// <summary>
/// A partition's replication state as the controller committed it (metadata, or an
/// AlterPartition answer): Kafka's LeaderAndIsr plus the replica set.
/// </summary>
public sealed record PartitionState(int LeaderId, int LeaderEpoch, int PartitionEpoch, IReadOnlyList<int> Replicas, IReadOnlyList<int> Isr)
{
    public static PartitionState From(PartitionInfo info) => new(info.Leader, info.LeaderEpoch, info.PartitionEpoch, [.. info.Replicas], [.. info.Isr]);
}
