using StreamPlatform.Gateway;
using StreamPlatform.Gateway.Kafka;
using StreamPlatform.Protos.Grpc.Gateway;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>GetStatus shows the broker-level replication state that Metadata's gateway mapping hides.</summary>
public sealed class GatewayStatusReplicasTests
{
    [Fact]
    public async Task Status_lists_real_replicas_isr_and_offline_replicas_and_counts_under_replicated_and_offline_partitions()
    {
        await using var kit = new GatewayTestKit();
        kit.Watcher.Apply(GatewayTestKit.Snapshot());
        var service = new GatewayStatusService(Microsoft.Extensions.Options.Options.Create(kit.Options), kit.Metrics, kit.Watcher, new RequestMemoryBudget(1024));

        var summary = await service.GetStatus(new GetStatusRequest(), null!);
        // orders-1 (ISR [2] of [2, 1]) and orders-2 (ISR [3] of [3, 1]) are under-replicated;
        // orders-2 is offline (its leader, broker 3, is fenced).
        Assert.Equal(2, summary.UnderReplicatedPartitions);
        Assert.Equal(1, summary.OfflinePartitions);
        Assert.Empty(summary.Partitions);

        var detail = await service.GetStatus(new GetStatusRequest { IncludePartitions = true, Topic = "orders" }, null!);
        Assert.Equal(3, detail.Partitions.Count);
        var p0 = detail.Partitions[0];
        Assert.Equal(("orders", 0, 1, 4), (p0.Topic, p0.Partition, p0.Leader, p0.LeaderEpoch));
        Assert.Equal([1, 2], p0.Replicas);
        Assert.Equal([1, 2], p0.Isr);
        Assert.Empty(p0.OfflineReplicas);
        var p2 = detail.Partitions[2];
        Assert.Equal(-1, p2.Leader);
        Assert.Equal([3, 1], p2.Replicas);
        Assert.Equal([3], p2.OfflineReplicas);
        Assert.False(detail.PartitionsTruncated);

        var other = await service.GetStatus(new GetStatusRequest { IncludePartitions = true, Topic = "other" }, null!);
        Assert.Empty(other.Partitions);
    }
}
