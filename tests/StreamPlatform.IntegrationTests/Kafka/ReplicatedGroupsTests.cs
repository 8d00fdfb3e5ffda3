using Confluent.Kafka;
using Grpc.Net.Client;
using StreamPlatform.IntegrationTests.Infrastructure;
using StreamPlatform.Protos.Groups;
using StreamPlatform.Protos.Grpc.Gateway;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Kafka;

/// <summary>
/// Replication seen from consumer groups and operators, each on its own 3-broker cluster (the
/// tests kill brokers): __consumer_offsets has replication factor 3 (the AppHost passes
/// min(3, brokers)), a commit is answered once replicated, so the coordinator's broker dying by
/// kill -9 loses no committed offset; and the real broker-level ISR (GetStatus) shrinks when a
/// broker dies and grows back after it returns.
/// </summary>
public sealed class ReplicatedGroupsTests(ITestOutputHelper output)
{
    private const int OffsetsPartitions = 6; // TestCluster's offsets.topic.num.partitions
    private static readonly TimeSpan FailoverMax = TimeSpan.FromSeconds(60);

    private static async Task<PartitionReplicas> PartitionAsync(GatewayService.GatewayServiceClient status, string topic, int partition)
    {
        var s = await status.GetStatusAsync(new GetStatusRequest { IncludePartitions = true, Topic = topic });
        return s.Partitions.Single(p => p.Partition == partition);
    }

    private static async Task<List<PartitionReplicas>> PartitionsAsync(GatewayService.GatewayServiceClient status, string topic)
        => (await status.GetStatusAsync(new GetStatusRequest { IncludePartitions = true, Topic = topic })).Partitions.ToList();

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + FailoverMax;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not within {FailoverMax.TotalSeconds} s: {what}");
            await Task.Delay(250);
        }
    }

    [Fact]
    public async Task Committed_offsets_survive_a_kill_9_of_the_coordinators_broker()
    {
        await using var cluster = await TestCluster.StartAsync();
        using var attach = cluster.AttachOutput(output);
        var bootstrap = cluster.BootstrapServers;
        using var channel = GrpcChannel.ForAddress(cluster.Orchestrator.Gateways.Single().GrpcEndpoint);
        var status = new GatewayService.GatewayServiceClient(channel);
        var topic = KafkaHelpers.UniqueTopic("group-failover");
        await KafkaHelpers.CreateTopicAsync(bootstrap, topic, 6, replicationFactor: 3);
        var group = "failover-" + Guid.NewGuid().ToString("N");
        var committed = Enumerable.Range(0, 6).Select(p => new TopicPartitionOffset(topic, p, 100 + 7 * p)).ToList();
        var config = KafkaHelpers.ConsumerConfig(bootstrap);
        config.GroupId = group;

        using (var consumer = new ConsumerBuilder<byte[], byte[]>(config).Build())
        {
            // The first FindCoordinator creates __consumer_offsets: retried like a client would.
            await WaitUntilAsync(() =>
            {
                try
                {
                    consumer.Commit(committed);
                    return Task.FromResult(true);
                }
                catch (KafkaException ex)
                {
                    output.WriteLine($"commit: {ex.Error.Code}");
                    return Task.FromResult(false);
                }
            }, "the first commit");
        }

        var offsetsPartition = OffsetsTopic.PartitionFor(group, OffsetsPartitions);
        var before = await PartitionAsync(status, OffsetsTopic.Name, offsetsPartition);
        output.WriteLine($"__consumer_offsets-{offsetsPartition}: leader {before.Leader}, replicas [{string.Join(",", before.Replicas)}], isr [{string.Join(",", before.Isr)}]");
        Assert.Equal(3, before.Replicas.Count);
        Assert.InRange(before.Leader, 1, 3);

        await cluster.Orchestrator.KillServiceAsync($"broker-{before.Leader}");
        // A new leader from the ISR; the coordinator moves with it and loads the group from its log.
        await WaitUntilAsync(async () =>
        {
            var p = await PartitionAsync(status, OffsetsTopic.Name, offsetsPartition);
            return p.Leader >= 0 && p.Leader != before.Leader;
        }, "a new leader of the group's offsets partition");

        using var after = new ConsumerBuilder<byte[], byte[]>(config).Build();
        List<TopicPartitionOffset>? read = null;
        await WaitUntilAsync(() =>
        {
            try
            {
                read = after.Committed(committed.Select(c => c.TopicPartition), TimeSpan.FromSeconds(10));
                return Task.FromResult(read.All(r => r.Offset.Value >= 0));
            }
            catch (KafkaException ex)
            {
                output.WriteLine($"committed: {ex.Error.Code}");
                return Task.FromResult(false);
            }
        }, "the committed offsets from the new coordinator");
        Assert.Equal(committed.Select(c => (c.Partition.Value, c.Offset.Value)),
            read!.OrderBy(r => r.Partition.Value).Select(r => (r.Partition.Value, r.Offset.Value)));
    }

    [Fact]
    public async Task The_real_isr_shrinks_when_a_broker_dies_and_grows_back_after_its_restart()
    {
        await using var cluster = await TestCluster.StartAsync();
        using var attach = cluster.AttachOutput(output);
        var bootstrap = cluster.BootstrapServers;
        using var channel = GrpcChannel.ForAddress(cluster.Orchestrator.Gateways.Single().GrpcEndpoint);
        var status = new GatewayService.GatewayServiceClient(channel);
        var topic = KafkaHelpers.UniqueTopic("isr-visible");
        await KafkaHelpers.CreateTopicAsync(bootstrap, topic, 3, replicationFactor: 3);
        using (var producer = new ProducerBuilder<byte[], byte[]>(KafkaHelpers.ProducerConfig(bootstrap)).Build())
        {
            for (var i = 0; i < 30; i++) await producer.ProduceAsync(new TopicPartition(topic, i % 3), new Message<byte[], byte[]> { Value = [(byte)i] });
        }

        await WaitUntilAsync(async () => (await PartitionsAsync(status, topic)).All(p => p.Isr.Count == 3), "every replica in the ISR at first");

        await cluster.Orchestrator.KillServiceAsync("broker-2");
        await WaitUntilAsync(async () =>
        {
            var partitions = await PartitionsAsync(status, topic);
            foreach (var p in partitions)
                output.WriteLine($"{topic}-{p.Partition}: leader {p.Leader}, isr [{string.Join(",", p.Isr)}], offline [{string.Join(",", p.OfflineReplicas)}]");
            return partitions.All(p => !p.Isr.Contains(2) && p.OfflineReplicas.SequenceEqual([2]) && p.Leader is 1 or 3);
        }, "broker 2 out of every ISR and offline");
        Assert.True((await status.GetStatusAsync(new GetStatusRequest())).UnderReplicatedPartitions >= 3);

        await cluster.Orchestrator.StartServiceAsync("broker-2");
        await WaitUntilAsync(async () =>
        {
            var partitions = await PartitionsAsync(status, topic);
            return partitions.All(p => p.Isr.Count == 3 && p.Isr.Contains(2) && p.OfflineReplicas.Count == 0);
        }, "broker 2 back in every ISR");
    }
}
