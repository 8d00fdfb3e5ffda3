using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using StreamPlatform.Gateway;
using StreamPlatform.Gateway.Apis;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.ServiceDefaults;
using StreamPlatform.UnitTests.Storage;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// The gateway's one retry of reads on a partition's new leader, against two real brokers: the
/// gateway's Fetch and ListOffsets handlers run over a metadata view the test controls, which
/// first names the wrong broker as the leader (an older leader epoch: what a gateway sees just
/// before a leader change reaches it). That broker answers NOT_LEADER_OR_FOLLOWER; once the
/// view shows the real leader with its newer epoch, the request is answered from it without an
/// error. Without newer metadata, or when the client's own epoch is older than the new leader's,
/// the client gets NOT_LEADER_OR_FOLLOWER as before.
/// </summary>
public sealed class LeaderMoveRetryTests : IAsyncLifetime
{
    private const string Topic = "moving";
    private InProcessCluster _cluster = null!;
    private ControllerConnection _nowhere = null!;
    private MetadataWatcher _view = null!;
    private BrokerClientPool _brokers = null!;
    private GatewayMetrics _metrics = null!;
    private readonly GatewayOptions _options = new() { NodeId = 0, LeaderChangeWaitMs = 3000 };
    private int _correlation;

    public async Task InitializeAsync()
    {
        _cluster = await InProcessCluster.StartAsync("sp-gw-move-", new Dictionary<string, string?> { ["Controller:BrokerConfigs:num.partitions"] = "1" });
        // The view the handlers under test route by: fed by the test only (its controller channel points nowhere).
        _nowhere = new ControllerConnection(GrpcChannels.Create(new Uri("http://127.0.0.1:9")));
        _view = new MetadataWatcher(_nowhere.Channel, "test", NullLogger.Instance);
        _brokers = new BrokerClientPool();
        _metrics = new GatewayMetrics();
    }

    public async Task DisposeAsync()
    {
        await _view.DisposeAsync();
        _brokers.Dispose();
        _nowhere.Dispose();
        _metrics.Dispose();
        await _cluster.DisposeAsync();
    }

    private PipeClient Client()
    {
        var admin = new TopicAdmin(_nowhere, _view, Microsoft.Extensions.Options.Options.Create(_options), TimeProvider.System, NullLogger<TopicAdmin>.Instance);
        var o = Microsoft.Extensions.Options.Options.Create(_options);
        var registry = new ApiRegistry([
            new FetchApi(admin, _brokers, o, TimeProvider.System, NullLogger<FetchApi>.Instance),
            new ListOffsetsApi(admin, _brokers, o, TimeProvider.System, NullLogger<ListOffsetsApi>.Instance),
            new ProduceApi(admin, _brokers, o, new StreamPlatform.Gateway.Security.AllowAllAuthorizer(), NullLogger<ProduceApi>.Instance),
        ]);
        return new PipeClient(registry, _options, _metrics);
    }

    /// <summary>Creates the topic with one record through the real gateway; returns the real metadata.</summary>
    private async Task<MetadataSnapshot> SetUpAsync()
    {
        await using var client = await _cluster.ConnectAsync();
        var sw = Stopwatch.StartNew();
        while (true)
        {
            await client.SendAsync(ApiKey.Metadata, 12, ++_correlation, new MetadataRequest
            {
                Topics = [new MetadataRequest.MetadataRequestTopic { Name = Topic }], AllowAutoTopicCreation = true,
            });
            var (_, metadata) = await client.ReadAsync<MetadataResponse>(ApiKey.Metadata, 12);
            var t = Assert.Single(metadata.Topics);
            if (t.ErrorCode == 0 && t.Partitions.Count == 1 && t.Partitions[0].LeaderId >= 0) break;
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), "topic not ready");
            await Task.Delay(100);
        }
        sw.Restart();
        while (true)
        {
            var request = new ProduceRequest { Acks = -1, TimeoutMs = 5000 };
            request.TopicData.Add(new ProduceRequest.TopicProduceData
            {
                Name = Topic,
                PartitionData = { new ProduceRequest.PartitionProduceData { Index = 0, Records = TestBatches.Build(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), "first") } },
            });
            await client.SendAsync(ApiKey.Produce, 9, ++_correlation, request);
            var (_, produced) = await client.ReadAsync<ProduceResponse>(ApiKey.Produce, 9);
            var p = produced.Responses[0].PartitionResponses[0];
            if (p.ErrorCode == 0) break;
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"produce kept failing: {p.ErrorCode}");
            await Task.Delay(50);
        }
        return _cluster.Gateway.Services.GetRequiredService<MetadataWatcher>().Current.Snapshot;
    }

    /// <summary>The real snapshot one epoch older, with the partition led by the other broker at an older leader epoch.</summary>
    private static MetadataSnapshot Stale(MetadataSnapshot real)
    {
        var stale = real.Clone();
        stale.MetadataEpoch = real.MetadataEpoch - 1;
        var partition = stale.Topics.Single(t => t.Name == Topic).Partitions[0];
        partition.Leader = stale.Brokers.First(b => b.BrokerId != partition.Leader).BrokerId;
        partition.LeaderEpoch -= 1;
        return stale;
    }

    private static FetchRequest Fetch(int maxWaitMs, int clientLeaderEpoch = -1) => new()
    {
        MaxWaitMs = maxWaitMs, MinBytes = 1, MaxBytes = 1024 * 1024,
        Topics =
        [
            new FetchRequest.FetchTopic
            {
                Topic = Topic,
                Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1024 * 1024, CurrentLeaderEpoch = clientLeaderEpoch }],
            },
        ],
    };

    [Fact]
    public async Task A_fetch_routed_to_the_old_leader_is_answered_by_the_new_one_without_an_error()
    {
        var real = await SetUpAsync();
        _view.Apply(Stale(real));
        await using var client = Client();
        await client.SendAsync(ApiKey.Fetch, 12, 1, Fetch(maxWaitMs: 5000));
        // The leader change reaches the gateway while the fetch is in flight.
        await Task.Delay(300);
        _view.Apply(real);
        var (_, response) = await client.ReadAsync<FetchResponse>(ApiKey.Fetch, 12).WaitAsync(TimeSpan.FromSeconds(10));
        var p = response.Responses.Single().Partitions.Single();
        Assert.Equal(0, p.ErrorCode);
        Assert.Equal(1, p.HighWatermark);
        Assert.True(p.Records?.Length > 0);
    }

    [Fact]
    public async Task Without_newer_metadata_the_fetch_gets_not_leader_after_a_bounded_wait()
    {
        var real = await SetUpAsync();
        _view.Apply(Stale(real));
        await using var client = Client();
        var sw = Stopwatch.StartNew();
        await client.SendAsync(ApiKey.Fetch, 12, 1, Fetch(maxWaitMs: 500));
        var (_, response) = await client.ReadAsync<FetchResponse>(ApiKey.Fetch, 12).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal((short)ErrorCode.NotLeaderOrFollower, response.Responses.Single().Partitions.Single().ErrorCode);
        // It waited for a new leader no longer than the fetch's max_wait (500 ms), not LeaderChangeWaitMs (3 s).
        Assert.True(sw.Elapsed < TimeSpan.FromMilliseconds(2500), $"took {sw.Elapsed}");
    }

    [Fact]
    public async Task A_client_whose_leader_epoch_is_older_than_the_new_leader_is_not_retried()
    {
        var real = await SetUpAsync();
        var realEpoch = real.Topics.Single(t => t.Name == Topic).Partitions[0].LeaderEpoch;
        var stale = Stale(real);
        stale.Topics.Single(t => t.Name == Topic).Partitions[0].LeaderEpoch = realEpoch;
        // The gateway then learns of a leader one epoch newer than the one the client knows.
        var newer = real.Clone();
        newer.Topics.Single(t => t.Name == Topic).Partitions[0].LeaderEpoch = realEpoch + 1;
        _view.Apply(stale);
        await using var client = Client();
        // The client believes in the older epoch: the new leader would fence it, so the client
        // must refresh its metadata (and validate its position, KIP-320) itself.
        await client.SendAsync(ApiKey.Fetch, 12, 1, Fetch(maxWaitMs: 5000, clientLeaderEpoch: realEpoch));
        await Task.Delay(300);
        _view.Apply(newer);
        var (_, response) = await client.ReadAsync<FetchResponse>(ApiKey.Fetch, 12).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal((short)ErrorCode.NotLeaderOrFollower, response.Responses.Single().Partitions.Single().ErrorCode);
    }

    [Fact]
    public async Task List_offsets_routed_to_the_old_leader_is_answered_by_the_new_one()
    {
        var real = await SetUpAsync();
        _view.Apply(Stale(real));
        await using var client = Client();
        var request = new ListOffsetsRequest
        {
            ReplicaId = -1,
            Topics = [new ListOffsetsRequest.ListOffsetsTopic { Name = Topic, Partitions = [new ListOffsetsRequest.ListOffsetsPartition { PartitionIndex = 0, Timestamp = -1, CurrentLeaderEpoch = -1 }] }],
        };
        await client.SendAsync(ApiKey.ListOffsets, 7, 1, request);
        await Task.Delay(300);
        _view.Apply(real);
        var (_, response) = await client.ReadAsync<ListOffsetsResponse>(ApiKey.ListOffsets, 7).WaitAsync(TimeSpan.FromSeconds(10));
        var p = response.Topics.Single().Partitions.Single();
        Assert.Equal(0, p.ErrorCode);
        Assert.Equal(1, p.Offset);
    }

    private static ProduceRequest Produce(byte[] records) => new()
    {
        Acks = -1, TimeoutMs = 5000,
        TopicData = [new() { Name = Topic, PartitionData = [new() { Index = 0, Records = records }] }],
    };

    [Fact]
    public async Task Idempotent_produces_routed_to_the_old_leader_are_resent_to_the_new_one_in_order()
    {
        var real = await SetUpAsync();
        _view.Apply(Stale(real));
        await using var client = Client();
        // Pipelined: the second is enqueued before the first is answered; both go to the old leader.
        await client.SendAsync(ApiKey.Produce, 9, 1, Produce(IdempotentProduceRetryTests.Batch(producerId: 5000, sequence: 0, values: ["a", "b"])));
        await client.SendAsync(ApiKey.Produce, 9, 2, Produce(IdempotentProduceRetryTests.Batch(producerId: 5000, sequence: 2, values: ["c"])));
        await Task.Delay(300);
        _view.Apply(real);
        var (c1, first) = await client.ReadAsync<ProduceResponse>(ApiKey.Produce, 9).WaitAsync(TimeSpan.FromSeconds(10));
        var (c2, second) = await client.ReadAsync<ProduceResponse>(ApiKey.Produce, 9).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal((1, 2), (c1, c2));
        var p1 = first.Responses.Single().PartitionResponses.Single();
        var p2 = second.Responses.Single().PartitionResponses.Single();
        Assert.Equal((0, 0), (p1.ErrorCode, p2.ErrorCode));
        // After the set-up's record at 0, in the client's order.
        Assert.Equal((1L, 3L), (p1.BaseOffset, p2.BaseOffset));
    }

    [Fact]
    public async Task A_produce_without_sequence_numbers_is_never_resent()
    {
        var real = await SetUpAsync();
        _view.Apply(Stale(real));
        await using var client = Client();
        await client.SendAsync(ApiKey.Produce, 9, 1, Produce(TestBatches.Build(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), "plain")));
        await Task.Delay(300);
        _view.Apply(real);
        var (_, response) = await client.ReadAsync<ProduceResponse>(ApiKey.Produce, 9).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal((short)ErrorCode.NotLeaderOrFollower, response.Responses.Single().PartitionResponses.Single().ErrorCode);
        // Nothing was written: the high watermark is still the set-up's one record.
        await client.SendAsync(ApiKey.ListOffsets, 7, 2, new ListOffsetsRequest
        {
            ReplicaId = -1,
            Topics = [new ListOffsetsRequest.ListOffsetsTopic { Name = Topic, Partitions = [new ListOffsetsRequest.ListOffsetsPartition { PartitionIndex = 0, Timestamp = -1, CurrentLeaderEpoch = -1 }] }],
        });
        var (_, offsets) = await client.ReadAsync<ListOffsetsResponse>(ApiKey.ListOffsets, 7).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, offsets.Topics.Single().Partitions.Single().Offset);
    }
}
