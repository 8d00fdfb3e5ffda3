using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using StreamPlatform.Protos.Groups;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// __consumer_offsets is created by the first FindCoordinator with offsets.topic.replication.factor
/// replicas, and, as in Kafka, not while fewer brokers are live (COORDINATOR_NOT_AVAILABLE; the
/// client retries). Real controller, two real brokers, real gateway.
/// </summary>
public sealed class OffsetsTopicCreationTests
{
    private static async Task<FindCoordinatorResponse> FindCoordinatorAsync(InProcessCluster cluster)
    {
        await using var client = await cluster.ConnectAsync();
        await client.SendAsync(ApiKey.FindCoordinator, 4, 1, new FindCoordinatorRequest { KeyType = 0, CoordinatorKeys = ["group-a"] });
        var (_, response) = await client.ReadAsync<FindCoordinatorResponse>(ApiKey.FindCoordinator, 4);
        return response;
    }

    [Fact]
    public async Task With_fewer_live_brokers_than_the_replication_factor_the_topic_is_not_created()
    {
        await using var cluster = await InProcessCluster.StartAsync("sp-gw-offsets-rf-", new Dictionary<string, string?>
        {
            ["Controller:BrokerConfigs:offsets.topic.replication.factor"] = "3",
            ["Controller:BrokerConfigs:offsets.topic.num.partitions"] = "2",
        });
        var response = await FindCoordinatorAsync(cluster);
        Assert.Equal((short)ErrorCode.CoordinatorNotAvailable, Assert.Single(response.Coordinators).ErrorCode);
        var metadata = cluster.Gateway.Services.GetRequiredService<MetadataWatcher>().Current;
        Assert.False(metadata.TopicsByName.ContainsKey(OffsetsTopic.Name));
    }

    [Fact]
    public async Task With_enough_live_brokers_the_topic_gets_the_configured_replication_factor()
    {
        await using var cluster = await InProcessCluster.StartAsync("sp-gw-offsets-rf-", new Dictionary<string, string?>
        {
            ["Controller:BrokerConfigs:offsets.topic.replication.factor"] = "2",
            ["Controller:BrokerConfigs:offsets.topic.num.partitions"] = "2",
        });
        var sw = Stopwatch.StartNew();
        while ((await FindCoordinatorAsync(cluster)).Coordinators.Single().ErrorCode != 0)
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), "no coordinator");
            await Task.Delay(100);
        }
        var topic = cluster.Gateway.Services.GetRequiredService<MetadataWatcher>().Current.TopicsByName[OffsetsTopic.Name];
        Assert.Equal(2, topic.Partitions.Count);
        Assert.All(topic.Partitions, p => Assert.Equal(2, p.Replicas.Count));
    }
}
