using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.UnitTests.Storage;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// A caught-up consumer's fetch with a long max_wait, against the real gateway and two real
/// brokers: a record produced later reaches it well before max_wait, whether the gateway waits on
/// the brokers' append notices, falls back to broker long polls (a watch not connected), or
/// switches to them mid-wait (a watch lost).
/// </summary>
public sealed class FetchNotificationTests : IAsyncLifetime
{
    private const string Topic = "notified";
    private const int MaxWaitMs = 5000;
    private static readonly TimeSpan Soon = TimeSpan.FromSeconds(1);
    private InProcessCluster _cluster = null!;
    private AppendSignals _signals = null!;
    private int _correlation;

    public async Task InitializeAsync()
    {
        _cluster = await InProcessCluster.StartAsync("sp-gw-notify-", new Dictionary<string, string?> { ["Controller:BrokerConfigs:num.partitions"] = "2" });
        _signals = _cluster.Gateway.Services.GetRequiredService<AppendSignals>();
    }

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    private static ProduceRequest Produce(int partition, params string[] values)
    {
        var request = new ProduceRequest { Acks = -1, TimeoutMs = 5000 };
        request.TopicData.Add(new ProduceRequest.TopicProduceData
        {
            Name = Topic,
            PartitionData = { new ProduceRequest.PartitionProduceData { Index = partition, Records = TestBatches.Build(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), values) } },
        });
        return request;
    }

    private static FetchRequest Fetch(int maxWaitMs, long offset0, long offset1)
    {
        var request = new FetchRequest { MaxWaitMs = maxWaitMs, MinBytes = 1, MaxBytes = 10 * 1024 * 1024 };
        request.Topics.Add(new FetchRequest.FetchTopic
        {
            Topic = Topic,
            Partitions =
            {
                new FetchRequest.FetchPartition { Partition = 0, FetchOffset = offset0, PartitionMaxBytes = 1024 * 1024 },
                new FetchRequest.FetchPartition { Partition = 1, FetchOffset = offset1, PartitionMaxBytes = 1024 * 1024 },
            },
        });
        return request;
    }

    /// <summary>Creates the topic (one record in each partition) and returns the endpoints of the brokers leading partitions 0 and 1.</summary>
    private async Task<string[]> SetUpAsync(PipeClient client)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            await client.SendAsync(ApiKey.Metadata, 12, ++_correlation, new MetadataRequest
            {
                Topics = [new MetadataRequest.MetadataRequestTopic { Name = Topic }], AllowAutoTopicCreation = true,
            });
            var (_, metadata) = await client.ReadAsync<MetadataResponse>(ApiKey.Metadata, 12);
            var t = Assert.Single(metadata.Topics);
            if (t.ErrorCode == 0 && t.Partitions.Count == 2 && t.Partitions.All(p => p.LeaderId == 0)) break;
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), "topic not ready");
            await Task.Delay(100);
        }
        foreach (var partition in new[] { 0, 1 })
        {
            // The leader may not have applied the snapshot with the new topic yet: retry like a client.
            sw.Restart();
            while (true)
            {
                await client.SendAsync(ApiKey.Produce, 9, ++_correlation, Produce(partition, "first"));
                var (_, produced) = await client.ReadAsync<ProduceResponse>(ApiKey.Produce, 9);
                var p = produced.Responses[0].PartitionResponses[0];
                if (p.ErrorCode == 0)
                {
                    Assert.Equal(0, p.BaseOffset);
                    break;
                }
                Assert.Contains(p.ErrorCode, new[] { (short)ErrorCode.NotLeaderOrFollower, (short)ErrorCode.UnknownTopicOrPartition });
                Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"produce kept failing: {p.ErrorCode}");
                await Task.Delay(50);
            }
        }
        var m = _cluster.Gateway.Services.GetRequiredService<MetadataWatcher>().Current;
        var endpoints = m.TopicsByName[Topic].Partitions.Select(p => m.BrokersById[p.Leader].GrpcEndpoint).ToArray();
        Assert.Equal(2, endpoints.Distinct().Count());
        // The pool opened a watch on every broker when the metadata listed it.
        sw.Restart();
        while (!endpoints.All(_signals.IsConnected))
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), "append watches not connected");
            await Task.Delay(20);
        }
        return endpoints;
    }

    private async Task WaitForAsync(Func<bool> condition, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(3), what);
            await Task.Delay(10);
        }
    }

    /// <summary>Produces one record to <paramref name="partition"/> and checks the pending fetch answers with it within <see cref="Soon"/>.</summary>
    private async Task ProduceAndExpectAsync(Task<(int CorrelationId, FetchResponse Body)> pending, int partition)
    {
        var sw = Stopwatch.StartNew();
        await using (var producer = await _cluster.ConnectAsync())
        {
            await producer.SendAsync(ApiKey.Produce, 9, 1, Produce(partition, "late"));
            var (_, produced) = await producer.ReadAsync<ProduceResponse>(ApiKey.Produce, 9);
            Assert.Equal(0, produced.Responses[0].PartitionResponses[0].ErrorCode);
        }
        var (_, fetched) = await pending.WaitAsync(TimeSpan.FromMilliseconds(MaxWaitMs));
        Assert.True(sw.Elapsed < Soon, $"the record took {sw.Elapsed}");
        var parts = fetched.Responses[0].Partitions.OrderBy(p => p.PartitionIndex).ToList();
        Assert.Equal(2, parts.Count);
        Assert.All(parts, p => Assert.Equal(0, p.ErrorCode));
        Assert.True(parts[partition].Records?.Length > 0);
        Assert.Equal(2, parts[partition].HighWatermark);
        Assert.Equal(0, parts[1 - partition].Records?.Length ?? 0);
    }

    [Fact]
    public async Task Via_notices_a_caught_up_consumer_gets_a_later_record_at_once()
    {
        await using var client = await _cluster.ConnectAsync();
        await SetUpAsync(client);
        await client.SendAsync(ApiKey.Fetch, 12, ++_correlation, Fetch(MaxWaitMs, 1, 1));
        var pending = client.ReadAsync<FetchResponse>(ApiKey.Fetch, 12);
        // The fetch waits at the gateway, interested in both partitions (not long-polling).
        await WaitForAsync(() => _signals.PartitionCount == 2, "the fetch did not register its interest");
        await Task.Delay(200);
        Assert.False(pending.IsCompleted);
        await ProduceAndExpectAsync(pending, 1);
        // The interest went with the fetch.
        await WaitForAsync(() => _signals.PartitionCount == 0, "the interest outlived the fetch");

        // Again on the other broker, from the new offsets.
        await client.SendAsync(ApiKey.Fetch, 12, ++_correlation, Fetch(MaxWaitMs, 1, 2));
        pending = client.ReadAsync<FetchResponse>(ApiKey.Fetch, 12);
        await WaitForAsync(() => _signals.PartitionCount == 2, "the fetch did not register its interest");
        await ProduceAndExpectAsync(pending, 0);
    }

    [Fact]
    public async Task Below_min_bytes_each_notice_brings_another_round_until_min_bytes_and_replaced_answers_leave_the_response_intact()
    {
        await using var client = await _cluster.ConnectAsync();
        await SetUpAsync(client);
        var request = Fetch(MaxWaitMs, 1, 1);
        // One record batch is not enough, two are.
        request.MinBytes = TestBatches.Build(0, "m1").Length + 1;
        await client.SendAsync(ApiKey.Fetch, 12, ++_correlation, request);
        var pending = client.ReadAsync<FetchResponse>(ApiKey.Fetch, 12);
        await WaitForAsync(() => _signals.PartitionCount == 2, "the fetch did not register its interest");
        await using var producer = await _cluster.ConnectAsync();
        await producer.SendAsync(ApiKey.Produce, 9, 1, Produce(1, "m1"));
        await producer.ReadAsync<ProduceResponse>(ApiKey.Produce, 9);
        // The notice brings a round with m1 only: still below min_bytes, the fetch waits on.
        await Task.Delay(300);
        Assert.False(pending.IsCompleted);
        var sw = Stopwatch.StartNew();
        await producer.SendAsync(ApiKey.Produce, 9, 2, Produce(1, "m2"));
        await producer.ReadAsync<ProduceResponse>(ApiKey.Produce, 9);
        var (_, fetched) = await pending.WaitAsync(TimeSpan.FromMilliseconds(MaxWaitMs));
        Assert.True(sw.Elapsed < Soon, $"the record took {sw.Elapsed}");
        // The later round's answer replaced the earlier one (whose buffer went back to the pool):
        // the response holds both batches, intact.
        var p1 = fetched.Responses[0].Partitions.Single(p => p.PartitionIndex == 1);
        var batches = TestBatches.Parse(p1.Records!.Value.Span);
        Assert.Equal([(1L, 1L, true, "m1"), (2L, 2L, true, "m2")], batches);
        Assert.Equal(3, p1.HighWatermark);
    }

    [Fact]
    public async Task Without_a_connected_watch_the_fetch_long_polls_and_still_gets_a_later_record_at_once()
    {
        await using var client = await _cluster.ConnectAsync();
        var endpoints = await SetUpAsync(client);
        // As if partition 0's broker watch were reconnecting (it stays so: the watch reports
        // connected only when a new stream opens).
        _signals.Disconnected(endpoints[0]);
        await client.SendAsync(ApiKey.Fetch, 12, ++_correlation, Fetch(MaxWaitMs, 1, 1));
        var pending = client.ReadAsync<FetchResponse>(ApiKey.Fetch, 12);
        await Task.Delay(300);
        Assert.False(pending.IsCompleted);
        Assert.Equal(0, _signals.PartitionCount); // not waiting on notices
        await ProduceAndExpectAsync(pending, 0);
    }

    [Fact]
    public async Task A_watch_lost_mid_wait_switches_to_long_polls_and_the_record_still_arrives_at_once()
    {
        await using var client = await _cluster.ConnectAsync();
        var endpoints = await SetUpAsync(client);
        await client.SendAsync(ApiKey.Fetch, 12, ++_correlation, Fetch(MaxWaitMs, 1, 1));
        var pending = client.ReadAsync<FetchResponse>(ApiKey.Fetch, 12);
        await WaitForAsync(() => _signals.PartitionCount == 2, "the fetch did not register its interest");
        _signals.Disconnected(endpoints[1]);
        await Task.Delay(300);
        Assert.False(pending.IsCompleted);
        await ProduceAndExpectAsync(pending, 1);
    }
}
