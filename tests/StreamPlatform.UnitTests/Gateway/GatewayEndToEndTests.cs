using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.UnitTests.Storage;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// The real controller, two real brokers and the real gateway host (same wiring as their
/// Program.cs files), in process on loopback ports; a Kafka client over TCP to the gateway.
/// </summary>
public sealed class GatewayEndToEndTests : IAsyncLifetime
{
    private InProcessCluster _cluster = null!;
    private WebApplication _gateway = null!;

    public async Task InitializeAsync()
    {
        _cluster = await InProcessCluster.StartAsync("sp-gw-e2e-", new Dictionary<string, string?> { ["Controller:BrokerConfigs:num.partitions"] = "2" });
        _gateway = _cluster.Gateway;
    }

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    private Task<PipeClient> ConnectAsync() => _cluster.ConnectAsync();

    private static ProduceRequest Produce(string topic, int partition, params string[] values)
    {
        var request = new ProduceRequest { Acks = -1, TimeoutMs = 5000 };
        request.TopicData.Add(new ProduceRequest.TopicProduceData
        {
            Name = topic,
            PartitionData = { new ProduceRequest.PartitionProduceData { Index = partition, Records = TestBatches.Build(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), values) } },
        });
        return request;
    }

    private static FetchRequest Fetch(string topic, Guid topicId, int maxWaitMs, params (int Partition, long Offset)[] partitions)
    {
        var request = new FetchRequest { MaxWaitMs = maxWaitMs, MinBytes = 1, MaxBytes = 10 * 1024 * 1024 };
        var t = new FetchRequest.FetchTopic { Topic = topic, TopicId = topicId };
        foreach (var (p, o) in partitions)
            t.Partitions.Add(new FetchRequest.FetchPartition { Partition = p, FetchOffset = o, PartitionMaxBytes = 1024 * 1024 });
        request.Topics.Add(t);
        return request;
    }

    [Fact]
    public async Task Auto_create_produce_fetch_with_long_poll_fan_out_and_list_offsets()
    {
        await using var client = await ConnectAsync();

        // Metadata auto-creates the topic; retry like a client until leaders are known.
        MetadataResponse.MetadataResponseTopic topic = null!;
        var sw = Stopwatch.StartNew();
        var correlation = 0;
        while (sw.Elapsed < TimeSpan.FromSeconds(15))
        {
            await client.SendAsync(ApiKey.Metadata, 12, ++correlation, new MetadataRequest
            {
                Topics = [new MetadataRequest.MetadataRequestTopic { Name = "e2e" }], AllowAutoTopicCreation = true,
            });
            var (_, metadata) = await client.ReadAsync<MetadataResponse>(ApiKey.Metadata, 12);
            Assert.Equal(0, Assert.Single(metadata.Brokers).NodeId);
            topic = Assert.Single(metadata.Topics);
            if (topic.ErrorCode == 0 && topic.Partitions.All(p => p.LeaderId == 0)) break;
            Assert.Contains(topic.ErrorCode, new[] { (short)0, (short)ErrorCode.LeaderNotAvailable });
            await Task.Delay(100);
        }
        Assert.Equal(2, topic.Partitions.Count);
        Assert.All(topic.Partitions, p => Assert.Equal(0, p.LeaderId));
        // The two partitions are led by different brokers: one Fetch below fans out to both.
        var leaders = _gateway.Services.GetRequiredService<MetadataWatcher>().Current.TopicsByName["e2e"].Partitions.Select(p => p.Leader).ToHashSet();
        Assert.Equal(2, leaders.Count);

        foreach (var partition in new[] { 0, 1 })
        {
            await client.SendAsync(ApiKey.Produce, 9, ++correlation, Produce("e2e", partition, "a", "b"));
            var (_, produced) = await client.ReadAsync<ProduceResponse>(ApiKey.Produce, 9);
            var p = produced.Responses[0].PartitionResponses[0];
            Assert.Equal((0, 0L), ((int)p.ErrorCode, p.BaseOffset));
        }

        // v12 by name and v16 by id: both partitions come back with their records.
        await client.SendAsync(ApiKey.Fetch, 12, ++correlation, Fetch("e2e", Guid.Empty, 5000, (0, 0), (1, 0)));
        var (_, byName) = await client.ReadAsync<FetchResponse>(ApiKey.Fetch, 12);
        Assert.All(byName.Responses[0].Partitions, p => Assert.Equal((0, 2L), ((int)p.ErrorCode, p.HighWatermark)));
        Assert.All(byName.Responses[0].Partitions, p => Assert.True(p.Records?.Length > 0));
        await client.SendAsync(ApiKey.Fetch, 16, ++correlation, Fetch("", topic.TopicId, 5000, (0, 0), (1, 0)));
        var (_, byId) = await client.ReadAsync<FetchResponse>(ApiKey.Fetch, 16);
        Assert.Equal(topic.TopicId, byId.Responses[0].TopicId);
        Assert.All(byId.Responses[0].Partitions, p => Assert.True(p.Records?.Length > 0));
        await client.SendAsync(ApiKey.Fetch, 16, ++correlation, Fetch("", Guid.NewGuid(), 0, (0, 0)));
        var (_, unknownId) = await client.ReadAsync<FetchResponse>(ApiKey.Fetch, 16);
        Assert.Equal((short)ErrorCode.UnknownTopicId, unknownId.Responses[0].Partitions[0].ErrorCode);

        // Long poll at the end of both partitions; data arriving on one broker answers at once
        // (the other broker's long poll is cut short) instead of after max_wait.
        await client.SendAsync(ApiKey.Fetch, 12, ++correlation, Fetch("e2e", Guid.Empty, 10_000, (0, 2), (1, 2)));
        var longPoll = client.ReadAsync<FetchResponse>(ApiKey.Fetch, 12);
        await Task.Delay(300);
        Assert.False(longPoll.IsCompleted);
        var pollWatch = Stopwatch.StartNew();
        await using (var producer = await ConnectAsync())
        {
            await producer.SendAsync(ApiKey.Produce, 9, 1, Produce("e2e", 1, "late"));
            await producer.ReadAsync<ProduceResponse>(ApiKey.Produce, 9);
        }
        var (_, polled) = await longPoll;
        Assert.True(pollWatch.Elapsed < TimeSpan.FromSeconds(5), $"long poll took {pollWatch.Elapsed}");
        var parts = polled.Responses[0].Partitions.OrderBy(p => p.PartitionIndex).ToList();
        Assert.Equal(2, parts.Count);
        Assert.Equal(0, parts[0].Records?.Length ?? 0);
        Assert.True(parts[1].Records?.Length > 0);
        Assert.Equal(3, parts[1].HighWatermark);

        // Less than min_bytes available: the gateway's immediate first round is not enough, the
        // brokers long-poll until max_wait, and what there is comes back then.
        var belowMinBytes = Fetch("e2e", Guid.Empty, 600, (0, 0), (1, 0));
        belowMinBytes.MinBytes = 1 << 20;
        var minBytesWatch = Stopwatch.StartNew();
        await client.SendAsync(ApiKey.Fetch, 12, ++correlation, belowMinBytes);
        var (_, waited) = await client.ReadAsync<FetchResponse>(ApiKey.Fetch, 12);
        Assert.True(minBytesWatch.Elapsed >= TimeSpan.FromMilliseconds(500), $"answered after {minBytesWatch.Elapsed}, before max_wait");
        Assert.All(waited.Responses[0].Partitions, p => Assert.True(p.Records?.Length > 0));

        // ListOffsets latest/earliest.
        var list = new ListOffsetsRequest { ReplicaId = -1 };
        list.Topics.Add(new ListOffsetsRequest.ListOffsetsTopic
        {
            Name = "e2e",
            Partitions =
            {
                new ListOffsetsRequest.ListOffsetsPartition { PartitionIndex = 1, Timestamp = -1 },
                new ListOffsetsRequest.ListOffsetsPartition { PartitionIndex = 0, Timestamp = -2 },
            },
        });
        await client.SendAsync(ApiKey.ListOffsets, 7, ++correlation, list);
        var (_, offsets) = await client.ReadAsync<ListOffsetsResponse>(ApiKey.ListOffsets, 7);
        Assert.Equal([3L, 0L], offsets.Topics[0].Partitions.Select(p => p.Offset));
    }

    [Fact]
    public async Task Create_validate_describe_and_delete_topics_through_the_controller()
    {
        await using var client = await ConnectAsync();
        var create = new CreateTopicsRequest { timeoutMs = 10_000 };
        create.Topics.Add(new CreateTopicsRequest.CreatableTopic
        {
            Name = "admin-a", NumPartitions = 3, ReplicationFactor = 2,
            Configs = { new CreateTopicsRequest.CreatableTopicConfig { Name = "retention.ms", Value = "5000" } },
        });
        create.Topics.Add(new CreateTopicsRequest.CreatableTopic { Name = "dup", NumPartitions = 1, ReplicationFactor = 1 });
        create.Topics.Add(new CreateTopicsRequest.CreatableTopic { Name = "dup", NumPartitions = 1, ReplicationFactor = 1 });
        create.Topics.Add(new CreateTopicsRequest.CreatableTopic { Name = "bad/name", NumPartitions = 1, ReplicationFactor = 1 });
        create.Topics.Add(new CreateTopicsRequest.CreatableTopic { Name = "too-many-replicas", NumPartitions = 1, ReplicationFactor = 5 });
        await client.SendAsync(ApiKey.CreateTopics, 7, 1, create);
        var (_, created) = await client.ReadAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7);
        var a = created.Topics[0];
        Assert.Equal((0, 3, (short)2), ((int)a.ErrorCode, a.NumPartitions, a.ReplicationFactor));
        Assert.NotEqual(Guid.Empty, a.TopicId);
        Assert.Equal("5000", a.Configs!.Single(c => c.Name == "retention.ms").Value);
        Assert.Equal((short)ErrorCode.InvalidRequest, created.Topics[1].ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidRequest, created.Topics[2].ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidTopicException, created.Topics[3].ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidReplicationFactor, created.Topics[4].ErrorCode);

        // Again: already exists. validate_only on a new name creates nothing.
        var again = new CreateTopicsRequest { timeoutMs = 5000 };
        again.Topics.Add(new CreateTopicsRequest.CreatableTopic { Name = "admin-a", NumPartitions = 1, ReplicationFactor = 1 });
        again.Topics.Add(new CreateTopicsRequest.CreatableTopic { Name = "only-validated", NumPartitions = 1, ReplicationFactor = 1 });
        again.validateOnly = true;
        await client.SendAsync(ApiKey.CreateTopics, 5, 2, again);
        var (_, second) = await client.ReadAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 5);
        Assert.Equal((short)ErrorCode.TopicAlreadyExists, second.Topics[0].ErrorCode);
        Assert.Equal((short)ErrorCode.None, second.Topics[1].ErrorCode);

        // The gateway waited for its metadata: the topic is visible at once, the validated one is not.
        await client.SendAsync(ApiKey.Metadata, 9, 3, new MetadataRequest
        {
            Topics = [new() { Name = "admin-a" }, new() { Name = "only-validated" }], AllowAutoTopicCreation = false,
        });
        var (_, metadata) = await client.ReadAsync<MetadataResponse>(ApiKey.Metadata, 9);
        Assert.Equal((short)ErrorCode.None, metadata.Topics[0].ErrorCode);
        Assert.Equal(3, metadata.Topics[0].Partitions.Count);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, metadata.Topics[1].ErrorCode);

        var describe = new DescribeConfigsRequest();
        describe.Resources.Add(new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = 2, ResourceName = "admin-a", ConfigurationKeys = ["retention.ms"] });
        await client.SendAsync(ApiKey.DescribeConfigs, 4, 4, describe);
        var (_, configs) = await client.ReadAsync<DescribeConfigsResponse>(ApiKey.DescribeConfigs, 4);
        Assert.Equal("5000", Assert.Single(configs.Results[0].Configs).Value);

        await client.SendAsync(ApiKey.DescribeCluster, 1, 5, new DescribeClusterRequest());
        var (_, cluster) = await client.ReadAsync<DescribeClusterResponse>(ApiKey.DescribeCluster, 1);
        Assert.Equal(0, Assert.Single(cluster.Brokers).BrokerId);
        Assert.Equal(0, cluster.ControllerId);
        Assert.False(string.IsNullOrEmpty(cluster.ClusterId));

        // Delete by id (v6) and an unknown name.
        var delete = new DeleteTopicsRequest { TimeoutMs = 5000 };
        delete.Topics.Add(new DeleteTopicsRequest.DeleteTopicState { Name = null, TopicId = a.TopicId });
        delete.Topics.Add(new DeleteTopicsRequest.DeleteTopicState { Name = "never-existed" });
        await client.SendAsync(ApiKey.DeleteTopics, 6, 6, delete);
        var (_, deleted) = await client.ReadAsync<DeleteTopicsResponse>(ApiKey.DeleteTopics, 6);
        Assert.Equal(((short)0, "admin-a"), (deleted.Responses[0].ErrorCode, deleted.Responses[0].Name));
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, deleted.Responses[1].ErrorCode);
        Assert.False(_gateway.Services.GetRequiredService<MetadataWatcher>().Current.TopicsByName.ContainsKey("admin-a"));
    }
}
