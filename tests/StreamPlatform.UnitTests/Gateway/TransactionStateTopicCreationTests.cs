using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Protos.Groups;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// __transaction_state is created by the first FindCoordinator with key type 1, as
/// __consumer_offsets is by key type 0 (one mechanism, <see cref="CoordinatorTopics"/>): partitions
/// and replication factor from transaction.state.log.*, Kafka's TransactionStateManager configs,
/// and not while fewer brokers are live. Real controller, two real brokers, real gateway.
/// </summary>
public sealed class TransactionStateTopicCreationTests
{
    private static async Task<FindCoordinatorResponse> FindTransactionCoordinatorAsync(InProcessCluster cluster, short version = 4)
    {
        await using var client = await cluster.ConnectAsync();
        var request = version >= 4
            ? new FindCoordinatorRequest { KeyType = 1, CoordinatorKeys = ["txn-a"] }
            : new FindCoordinatorRequest { KeyType = 1, Key = "txn-a" };
        await client.SendAsync(ApiKey.FindCoordinator, version, 1, request);
        var (_, response) = await client.ReadAsync<FindCoordinatorResponse>(ApiKey.FindCoordinator, version);
        return response;
    }

    [Fact]
    public void The_topic_gets_kafkas_transaction_state_configs_with_min_isr_capped_at_the_replication_factor()
    {
        var topic = CoordinatorTopics.Build(CoordinatorKind.Transaction, new Dictionary<string, string>
        {
            ["transaction.state.log.num.partitions"] = "7",
            ["transaction.state.log.replication.factor"] = "1",
            ["transaction.state.log.min.isr"] = "2",
            ["transaction.state.log.segment.bytes"] = "1048576",
        });
        Assert.Equal(TransactionStateTopic.Name, topic.Name);
        Assert.True(topic.Internal);
        Assert.Equal(7, topic.NumPartitions);
        Assert.Equal(1, topic.ReplicationFactor);
        Assert.Equal(new Dictionary<string, string>
        {
            ["cleanup.policy"] = "compact",
            ["min.insync.replicas"] = "1",
            ["segment.bytes"] = "1048576",
            ["compression.type"] = "uncompressed",
            ["unclean.leader.election.enable"] = "false",
        }, topic.Configs.ToDictionary());
    }

    [Fact]
    public void Without_cluster_values_the_catalog_defaults_apply_to_both_topics()
    {
        var empty = new Dictionary<string, string>();
        var transactions = CoordinatorTopics.Build(CoordinatorKind.Transaction, empty);
        Assert.Equal((50, 3), (transactions.NumPartitions, transactions.ReplicationFactor));
        Assert.Equal("2", transactions.Configs["min.insync.replicas"]);
        Assert.Equal("104857600", transactions.Configs["segment.bytes"]);
        var offsets = CoordinatorTopics.Build(CoordinatorKind.Group, empty);
        Assert.Equal(OffsetsTopic.Name, offsets.Name);
        Assert.Equal((50, 3), (offsets.NumPartitions, offsets.ReplicationFactor));
        Assert.Equal(new Dictionary<string, string> { ["cleanup.policy"] = "compact", ["segment.bytes"] = "104857600" }, offsets.Configs.ToDictionary());
    }

    [Fact]
    public async Task With_fewer_live_brokers_than_the_replication_factor_the_topic_is_not_created()
    {
        await using var cluster = await InProcessCluster.StartAsync("sp-gw-txnstate-rf-", new Dictionary<string, string?>
        {
            ["Controller:BrokerConfigs:transaction.state.log.replication.factor"] = "3",
            ["Controller:BrokerConfigs:transaction.state.log.num.partitions"] = "2",
        });
        var response = await FindTransactionCoordinatorAsync(cluster);
        Assert.Equal((short)ErrorCode.CoordinatorNotAvailable, Assert.Single(response.Coordinators).ErrorCode);
        var metadata = cluster.Gateway.Services.GetRequiredService<MetadataWatcher>().Current;
        Assert.False(metadata.TopicsByName.ContainsKey(TransactionStateTopic.Name));
        // The group topic is a different one: not created by a transaction lookup.
        Assert.False(metadata.TopicsByName.ContainsKey(OffsetsTopic.Name));
    }

    [Fact]
    public async Task With_enough_live_brokers_the_topic_is_created_and_the_coordinator_answered()
    {
        await using var cluster = await InProcessCluster.StartAsync("sp-gw-txnstate-rf-", new Dictionary<string, string?>
        {
            ["Controller:BrokerConfigs:transaction.state.log.replication.factor"] = "2",
            ["Controller:BrokerConfigs:transaction.state.log.num.partitions"] = "3",
            ["Controller:BrokerConfigs:transaction.state.log.min.isr"] = "2",
        });
        var sw = Stopwatch.StartNew();
        FindCoordinatorResponse response;
        // v3: one key, the answer in the top-level fields.
        while ((response = await FindTransactionCoordinatorAsync(cluster, version: 3)).ErrorCode != 0)
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), "no coordinator");
            await Task.Delay(100);
        }
        Assert.Equal(0, response.NodeId); // the one gateway
        Assert.True(response.Port > 0);
        var topic = cluster.Gateway.Services.GetRequiredService<MetadataWatcher>().Current.TopicsByName[TransactionStateTopic.Name];
        Assert.Equal(3, topic.Partitions.Count);
        Assert.All(topic.Partitions, p => Assert.Equal(2, p.Replicas.Count));
        Assert.Equal("compact", topic.Configs["cleanup.policy"]);
        Assert.Equal("2", topic.Configs["min.insync.replicas"]);
    }
}
