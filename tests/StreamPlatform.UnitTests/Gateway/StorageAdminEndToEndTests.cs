using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.UnitTests.Storage;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// DeleteRecords, AlterConfigs, IncrementalAlterConfigs and DescribeLogDirs through the real
/// gateway over TCP, with the real controller and two real brokers in process (<see cref="InProcessCluster"/>).
/// </summary>
public sealed class StorageAdminEndToEndTests : IAsyncLifetime
{
    private InProcessCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await InProcessCluster.StartAsync("sp-gw-storage-");

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    private Task<PipeClient> ConnectAsync() => _cluster.ConnectAsync();

    private PartitionLog BrokerLog(string topic, int partition)
        => _cluster.Brokers.Select(b => b.Services.GetRequiredService<LogManager>())
            .SelectMany(m => m.Logs).Single(l => l.TopicPartition == new TopicPartition(topic, partition));

    private static async Task<Dictionary<string, string?>> DescribeAsync(PipeClient client, int correlationId, string topic)
    {
        var describe = new DescribeConfigsRequest();
        describe.Resources.Add(new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = 2, ResourceName = topic, ConfigurationKeys = null });
        await client.SendAsync(ApiKey.DescribeConfigs, 4, correlationId, describe);
        var (_, configs) = await client.ReadAsync<DescribeConfigsResponse>(ApiKey.DescribeConfigs, 4);
        return configs.Results[0].Configs.ToDictionary(c => c.Name, c => c.Value);
    }

    [Fact]
    public async Task Delete_records_alter_configs_and_describe_log_dirs_through_the_gateway()
    {
        await using var client = await ConnectAsync();
        await client.SendAsync(ApiKey.ApiVersions, 3, 1, new ApiVersionsRequest { ClientSoftwareName = "t", ClientSoftwareVersion = "1" });
        var (_, versions) = await client.ReadAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 3);
        Assert.Equal((short)2, versions.ApiKeys.Single(k => k.ApiKey == (short)ApiKey.DeleteRecords).MaxVersion);
        Assert.Equal((short)2, versions.ApiKeys.Single(k => k.ApiKey == (short)ApiKey.AlterConfigs).MaxVersion);
        Assert.Equal((short)1, versions.ApiKeys.Single(k => k.ApiKey == (short)ApiKey.IncrementalAlterConfigs).MaxVersion);
        Assert.Equal((short)4, versions.ApiKeys.Single(k => k.ApiKey == (short)ApiKey.DescribeLogDirs).MaxVersion);

        var create = new CreateTopicsRequest { timeoutMs = 10_000 };
        create.Topics.Add(new CreateTopicsRequest.CreatableTopic { Name = "logs", NumPartitions = 2, ReplicationFactor = 1 });
        await client.SendAsync(ApiKey.CreateTopics, 7, 2, create);
        Assert.Equal((short)0, (await client.ReadAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7)).Body.Topics[0].ErrorCode);
        for (var i = 0; i < 5; i++)
        {
            var produce = new ProduceRequest { Acks = -1, TimeoutMs = 5000 };
            produce.TopicData.Add(new ProduceRequest.TopicProduceData
            {
                Name = "logs",
                PartitionData = { new ProduceRequest.PartitionProduceData { Index = 0, Records = TestBatches.Build(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), $"v{i}") } },
            });
            await client.SendAsync(ApiKey.Produce, 9, 10 + i, produce);
            Assert.Equal((short)0, (await client.ReadAsync<ProduceResponse>(ApiKey.Produce, 9)).Body.Responses[0].PartitionResponses[0].ErrorCode);
        }

        // DeleteRecords v2: below offset 3; above the high watermark; unknown partition and topic.
        var delete = new DeleteRecordsRequest { TimeoutMs = 5000 };
        delete.Topics.Add(new DeleteRecordsRequest.DeleteRecordsTopic
        {
            Name = "logs",
            Partitions = { new() { PartitionIndex = 0, Offset = 3 }, new() { PartitionIndex = 1, Offset = 100 }, new() { PartitionIndex = 9, Offset = 0 } },
        });
        delete.Topics.Add(new DeleteRecordsRequest.DeleteRecordsTopic { Name = "nope", Partitions = { new() { PartitionIndex = 0, Offset = 0 } } });
        await client.SendAsync(ApiKey.DeleteRecords, 2, 20, delete);
        var (_, deleted) = await client.ReadAsync<DeleteRecordsResponse>(ApiKey.DeleteRecords, 2);
        Assert.Equal([((short)0, 3L), ((short)ErrorCode.OffsetOutOfRange, -1L), ((short)ErrorCode.UnknownTopicOrPartition, -1L)],
            deleted.Topics[0].Partitions.Select(p => (p.ErrorCode, p.LowWatermark)));
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, deleted.Topics[1].Partitions[0].ErrorCode);
        var list = new ListOffsetsRequest { ReplicaId = -1 };
        list.Topics.Add(new ListOffsetsRequest.ListOffsetsTopic { Name = "logs", Partitions = { new() { PartitionIndex = 0, Timestamp = -2, CurrentLeaderEpoch = -1 } } });
        await client.SendAsync(ApiKey.ListOffsets, 7, 21, list);
        Assert.Equal(3, (await client.ReadAsync<ListOffsetsResponse>(ApiKey.ListOffsets, 7)).Body.Topics[0].Partitions[0].Offset);

        // IncrementalAlterConfigs v1: the broker's log picks the change up without a restart.
        var incremental = new IncrementalAlterConfigsRequest();
        incremental.Resources.Add(new IncrementalAlterConfigsRequest.AlterConfigsResource
        {
            ResourceType = 2, ResourceName = "logs",
            Configs =
            {
                new() { Name = "retention.ms", ConfigOperation = 0, Value = "1234" },
                new() { Name = "cleanup.policy", ConfigOperation = 2, Value = "compact" },
            },
        });
        incremental.Resources.Add(new IncrementalAlterConfigsRequest.AlterConfigsResource
        {
            ResourceType = 2, ResourceName = "logs2", Configs = { new() { Name = "retention.ms", ConfigOperation = 0, Value = "1" } },
        });
        await client.SendAsync(ApiKey.IncrementalAlterConfigs, 1, 30, incremental);
        var (_, altered) = await client.ReadAsync<IncrementalAlterConfigsResponse>(ApiKey.IncrementalAlterConfigs, 1);
        Assert.Equal([(short)0, (short)ErrorCode.UnknownTopicOrPartition], altered.Responses.Select(r => r.ErrorCode));
        Assert.Equal(("logs", (sbyte)2), (altered.Responses[0].ResourceName, altered.Responses[0].ResourceType));
        var configs = await DescribeAsync(client, 31, "logs");
        Assert.Equal(("1234", "delete,compact"), (configs["retention.ms"], configs["cleanup.policy"]));
        var deadline = Stopwatch.StartNew();
        while (BrokerLog("logs", 0).Config.RetentionMs != 1234 && deadline.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(20);
        Assert.Equal((1234L, true, true), (BrokerLog("logs", 0).Config.RetentionMs, BrokerLog("logs", 0).Config.Compacted, BrokerLog("logs", 0).Config.DeleteEnabled));

        // AlterConfigs v2 replaces the explicit set; an unknown key fails that resource only.
        var replace = new AlterConfigsRequest();
        replace.Resources.Add(new AlterConfigsRequest.AlterConfigsResource { ResourceType = 2, ResourceName = "logs", Configs = { new() { Name = "segment.bytes", Value = "100000" } } });
        await client.SendAsync(ApiKey.AlterConfigs, 2, 40, replace);
        Assert.Equal((short)0, (await client.ReadAsync<AlterConfigsResponse>(ApiKey.AlterConfigs, 2)).Body.Responses[0].ErrorCode);
        configs = await DescribeAsync(client, 41, "logs");
        Assert.Equal(("604800000", "delete", "100000"), (configs["retention.ms"], configs["cleanup.policy"], configs["segment.bytes"]));
        var bad = new AlterConfigsRequest();
        bad.Resources.Add(new AlterConfigsRequest.AlterConfigsResource { ResourceType = 2, ResourceName = "logs", Configs = { new() { Name = "no.such", Value = "1" } } });
        await client.SendAsync(ApiKey.AlterConfigs, 0, 42, bad);
        Assert.Equal((short)ErrorCode.InvalidConfig, (await client.ReadAsync<AlterConfigsResponse>(ApiKey.AlterConfigs, 0)).Body.Responses[0].ErrorCode);

        // DescribeLogDirs v4: every broker's directory; then only logs-0.
        await client.SendAsync(ApiKey.DescribeLogDirs, 4, 50, new DescribeLogDirsRequest { Topics = null });
        var (_, dirs) = await client.ReadAsync<DescribeLogDirsResponse>(ApiKey.DescribeLogDirs, 4);
        Assert.Equal(2, dirs.Results.Count);
        Assert.All(dirs.Results, d => Assert.Equal((short)0, d.ErrorCode));
        var all = dirs.Results.SelectMany(d => d.Topics).Where(t => t.Name == "logs").SelectMany(t => t.Partitions).OrderBy(p => p.PartitionIndex).ToList();
        Assert.Equal([0, 1], all.Select(p => p.PartitionIndex));
        Assert.True(all[0].PartitionSize > 0);
        await client.SendAsync(ApiKey.DescribeLogDirs, 1, 51, new DescribeLogDirsRequest { Topics = [new() { Topic = "logs", Partitions = [0] }] });
        var (_, one) = await client.ReadAsync<DescribeLogDirsResponse>(ApiKey.DescribeLogDirs, 1);
        var only = Assert.Single(one.Results.SelectMany(d => d.Topics));
        Assert.Equal(("logs", 0), (only.Name, Assert.Single(only.Partitions).PartitionIndex));
    }

    [Fact]
    public async Task A_per_broker_config_is_altered_described_as_dynamic_broker_config_and_applied_by_that_broker_only()
    {
        await using var client = await ConnectAsync();
        var create = new CreateTopicsRequest { timeoutMs = 10_000 };
        // Two partitions over two brokers: one log on each (round-robin placement).
        create.Topics.Add(new CreateTopicsRequest.CreatableTopic { Name = "perbroker", NumPartitions = 2, ReplicationFactor = 1 });
        await client.SendAsync(ApiKey.CreateTopics, 7, 1, create);
        Assert.Equal((short)0, (await client.ReadAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7)).Body.Topics[0].ErrorCode);

        static IncrementalAlterConfigsRequest Alter(string broker, string name, sbyte op, string? value) => new()
        {
            Resources = [new IncrementalAlterConfigsRequest.AlterConfigsResource
            {
                ResourceType = 4, ResourceName = broker, Configs = [new() { Name = name, ConfigOperation = op, Value = value }],
            }],
        };
        await client.SendAsync(ApiKey.IncrementalAlterConfigs, 1, 2, Alter("", "log.retention.ms", 0, "7777"));
        Assert.Equal((short)0, (await client.ReadAsync<IncrementalAlterConfigsResponse>(ApiKey.IncrementalAlterConfigs, 1)).Body.Responses[0].ErrorCode);
        await client.SendAsync(ApiKey.IncrementalAlterConfigs, 1, 3, Alter("1", "log.retention.ms", 0, "5555"));
        Assert.Equal((short)0, (await client.ReadAsync<IncrementalAlterConfigsResponse>(ApiKey.IncrementalAlterConfigs, 1)).Body.Responses[0].ErrorCode);
        // Kafka: a broker name must be a base-10 int; a config Kafka cannot update dynamically is refused per broker too.
        await client.SendAsync(ApiKey.IncrementalAlterConfigs, 1, 4, Alter("one", "log.retention.ms", 0, "1"));
        Assert.Equal((short)ErrorCode.InvalidRequest, (await client.ReadAsync<IncrementalAlterConfigsResponse>(ApiKey.IncrementalAlterConfigs, 1)).Body.Responses[0].ErrorCode);
        await client.SendAsync(ApiKey.IncrementalAlterConfigs, 1, 5, Alter("1", "auto.create.topics.enable", 0, "false"));
        Assert.Equal((short)ErrorCode.InvalidRequest, (await client.ReadAsync<IncrementalAlterConfigsResponse>(ApiKey.IncrementalAlterConfigs, 1)).Body.Responses[0].ErrorCode);

        async Task<DescribeConfigsResponse.DescribeConfigsResourceResult> DescribeBroker(string broker, int correlationId)
        {
            var describe = new DescribeConfigsRequest { IncludeSynonyms = true };
            describe.Resources.Add(new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = 4, ResourceName = broker, ConfigurationKeys = ["log.retention.ms"] });
            await client.SendAsync(ApiKey.DescribeConfigs, 4, correlationId, describe);
            var result = (await client.ReadAsync<DescribeConfigsResponse>(ApiKey.DescribeConfigs, 4)).Body.Results[0];
            Assert.Equal((short)0, result.ErrorCode);
            return Assert.Single(result.Configs);
        }
        var own = await DescribeBroker("1", 6);
        Assert.Equal(("5555", (sbyte)2), (own.Value, own.ConfigSource));
        Assert.Equal([("5555", (sbyte)2), ("7777", (sbyte)3)], own.Synonyms.Select(x => (x.Value, x.Source)));
        var other = await DescribeBroker("2", 7);
        Assert.Equal(("7777", (sbyte)3), (other.Value, other.ConfigSource));

        // Broker 1's logs take its own value, broker 2's the cluster-wide one.
        PartitionLog LogOn(int brokerId) => _cluster.Brokers.Select(b => b.Services.GetRequiredService<LogManager>()).Single(m => m.BrokerId == brokerId)
            .Logs.Single(l => l.TopicPartition.Topic == "perbroker");
        var deadline = Stopwatch.StartNew();
        while ((LogOn(1).Config.RetentionMs, LogOn(2).Config.RetentionMs) != (5555L, 7777L) && deadline.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(20);
        Assert.Equal((5555L, 7777L), (LogOn(1).Config.RetentionMs, LogOn(2).Config.RetentionMs));

        // DELETE drops the per-broker value: the cluster-wide default is in force again.
        await client.SendAsync(ApiKey.IncrementalAlterConfigs, 1, 8, Alter("1", "log.retention.ms", 1, null));
        Assert.Equal((short)0, (await client.ReadAsync<IncrementalAlterConfigsResponse>(ApiKey.IncrementalAlterConfigs, 1)).Body.Responses[0].ErrorCode);
        own = await DescribeBroker("1", 9);
        Assert.Equal(("7777", (sbyte)3), (own.Value, own.ConfigSource));
        deadline.Restart();
        while (LogOn(1).Config.RetentionMs != 7777L && deadline.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(20);
        Assert.Equal(7777L, LogOn(1).Config.RetentionMs);
    }
}
