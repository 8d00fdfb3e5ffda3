using System.Buffers;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Broker.Replication;
using StreamPlatform.Broker.Services;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Broker;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.UnitTests.Storage;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Replication;

/// <summary>
/// The ReplicaManager applying metadata (roles, fetchers, leadership checks) and the leader side
/// of the replication stream (<see cref="ReplicationGrpcService.AnswerAsync"/>) on real logs.
/// </summary>
public sealed class ReplicaManagerTests : IAsyncDisposable
{
    private const int Me = 1;
    private const long T0 = 1_700_000_000_000;
    private readonly TempDir _dir = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(T0));
    private readonly LogManager _logs;
    private readonly ReplicaManager _replicas;
    private readonly TopicInfo _topic = new() { Name = "t", TopicId = TopicIds.ToByteString(Guid.NewGuid()), ReplicationFactor = 3 };
    private long _epoch;

    public ReplicaManagerTests()
    {
        _logs = new LogManager(_dir.Path, _time, NullLogger<LogManager>.Instance, Me);
        _logs.LoadAll();
        // Fetchers get a channel to a closed port: they fail and back off, which these tests do not look at.
        _replicas = new ReplicaManager(_logs, Options.Create(new BrokerOptions { BrokerId = Me }), _time);
        // p0: led here; p1: led by 2, followed here; p2: not hosted here.
        _topic.Partitions.Add(new PartitionInfo { Partition = 0, Leader = Me, LeaderEpoch = 3, PartitionEpoch = 4, Replicas = { 1, 2 }, Isr = { 1, 2 } });
        _topic.Partitions.Add(new PartitionInfo { Partition = 1, Leader = 2, LeaderEpoch = 5, PartitionEpoch = 5, Replicas = { 2, 1 }, Isr = { 2, 1 } });
        _topic.Partitions.Add(new PartitionInfo { Partition = 2, Leader = 2, LeaderEpoch = 0, PartitionEpoch = 0, Replicas = { 2 }, Isr = { 2 } });
        Apply();
    }

    public async ValueTask DisposeAsync()
    {
        await _replicas.Fetchers.DisposeAsync();
        _logs.CloseAll();
        _dir.Dispose();
    }

    private void Apply()
    {
        var snapshot = new MetadataSnapshot { MetadataEpoch = ++_epoch, ClusterId = "c", Topics = { _topic.Clone() } };
        snapshot.Brokers.Add(new BrokerInfo { BrokerId = Me, GrpcEndpoint = "http://127.0.0.1:9", BrokerEpoch = 10 });
        snapshot.Brokers.Add(new BrokerInfo { BrokerId = 2, GrpcEndpoint = "http://127.0.0.1:9", BrokerEpoch = 20 });
        snapshot.BrokerConfigs["replica.fetch.backoff.ms"] = "60000";
        var metadata = new ClusterMetadata(snapshot);
        _logs.ApplyMetadata(metadata, Me);
        _replicas.ApplyMetadata(metadata);
    }

    private Partition P(int partition) => Assert.IsType<Partition>(_replicas.TryGetPartition(new TopicPartition("t", partition), out var p) ? p : null);

    [Fact]
    public void Metadata_makes_leaders_and_followers_and_hands_followers_to_their_leaders_fetcher()
    {
        Assert.Equal((ReplicaRole.Leader, 3, 4), (P(0).Role, P(0).LeaderEpoch, P(0).PartitionEpoch));
        Assert.Equal((ReplicaRole.Follower, 2, 5), (P(1).Role, P(1).LeaderId, P(1).LeaderEpoch));
        Assert.False(_replicas.TryGetPartition(new TopicPartition("t", 2), out _));
        var fetcher = Assert.Single(_replicas.Fetchers.Fetchers);
        Assert.Equal(2, fetcher.Key);
        Assert.Equal([("t-1", 5)], fetcher.Value.Snapshot().Select(e => (e.Partition.TopicPartition.ToString(), e.LeaderEpoch)));

        // Leadership of p1 moves here: off the fetcher, which stops with nothing left to fetch.
        _topic.Partitions[1].Leader = Me;
        _topic.Partitions[1].LeaderEpoch = 6;
        Apply();
        Assert.Equal(ReplicaRole.Leader, P(1).Role);
        Assert.Empty(_replicas.Fetchers.Fetchers);

        // The topic goes: its partitions stop.
        var p0 = P(0);
        _topic.Name = "gone";
        Apply();
        Assert.Equal(ReplicaRole.None, p0.Role);
        Assert.DoesNotContain(_replicas.Partitions, p => p.TopicPartition.Topic == "t");
    }

    [Fact]
    public void Leadership_checks_answer_as_Kafka()
    {
        Assert.Equal((ErrorCodes.None, true), (_replicas.LeaderPartition("t", 0, -1).ErrorCode, _replicas.LeaderPartition("t", 0, 3).Partition is not null));
        Assert.Equal(ErrorCodes.FencedLeaderEpoch, _replicas.LeaderPartition("t", 0, 2).ErrorCode);
        Assert.Equal(ErrorCodes.UnknownLeaderEpoch, _replicas.LeaderPartition("t", 0, 4).ErrorCode);
        Assert.Equal(ErrorCodes.NotLeaderOrFollower, _replicas.LeaderPartition("t", 1, -1).ErrorCode);
        Assert.Equal(ErrorCodes.NotLeaderOrFollower, _replicas.LeaderPartition("t", 2, -1).ErrorCode);
        Assert.Equal(ErrorCodes.UnknownTopicOrPartition, _replicas.LeaderPartition("t", 3, -1).ErrorCode);
        Assert.Equal(ErrorCodes.UnknownTopicOrPartition, _replicas.LeaderPartition("nope", 0, -1).ErrorCode);
    }

    [Fact]
    public async Task The_leader_answers_a_follower_at_once_with_news_and_long_polls_otherwise()
    {
        var service = new ReplicationGrpcService(_replicas, _time);
        using var buffers = new FetchBuffers(ArrayPool<byte>.Shared);
        var sent = new Dictionary<TopicPartition, long>();
        ReplicaFetchRequest Request(long offset, int lastEpoch) => new()
        {
            ReplicaId = 2, BrokerEpoch = 20, MaxWaitMs = 500, MinBytes = 1, MaxBytes = 1 << 20,
            Partitions = { new ReplicaFetchPartition { Topic = "t", Partition = 0, FetchOffset = offset, LastFetchedEpoch = lastEpoch, CurrentLeaderEpoch = 3, PartitionMaxBytes = 1 << 20 } },
        };

        // First request of the stream: the high watermark is news, answered at once.
        var first = await service.AnswerAsync(Request(0, -1), buffers, sent, default).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal((0, 0L, 0), (first.Results[0].ErrorCode, first.Results[0].HighWatermark, first.Results[0].Records.Length));
        // Nothing new: waits, until the leader appends.
        var second = service.AnswerAsync(Request(0, -1), buffers, sent, default);
        await Task.Delay(50);
        Assert.False(second.IsCompleted);
        var appended = P(0).AppendAsLeader(TestBatches.Build(T0, "a", "b"), -1, default, crcVerified: false);
        var withRecords = (await second.WaitAsync(TimeSpan.FromSeconds(10))).Results[0];
        Assert.True(withRecords.Records.Length > 0);
        Assert.Equal(0, withRecords.HighWatermark);
        Assert.False(appended.Commit!.IsCompleted);
        // The follower's next fetch (offset 2) commits the records and is answered at once with the news.
        var third = (await service.AnswerAsync(Request(2, 3), buffers, sent, default).WaitAsync(TimeSpan.FromSeconds(10))).Results[0];
        Assert.Equal(2, third.HighWatermark);
        Assert.Equal(ErrorCodes.None, await appended.Commit.WaitAsync(TimeSpan.FromSeconds(10)));
        // Nothing new anymore: the long poll ends at max_wait_ms (fake time), empty.
        var fourth = service.AnswerAsync(Request(2, 3), buffers, sent, default);
        await Task.Delay(50);
        Assert.False(fourth.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(501));
        Assert.Equal(0, (await fourth.WaitAsync(TimeSpan.FromSeconds(10))).Results[0].Records.Length);

        // A previous incarnation of the follower (older broker epoch) and an older leader epoch are refused.
        var stale = Request(2, 3);
        stale.BrokerEpoch = 19;
        Assert.Equal(ErrorCodes.StaleBrokerEpoch, (await service.AnswerAsync(stale, buffers, sent, default)).Results[0].ErrorCode);
        var fenced = Request(2, 3);
        fenced.Partitions[0].CurrentLeaderEpoch = 2;
        Assert.Equal(ErrorCodes.FencedLeaderEpoch, (await service.AnswerAsync(fenced, buffers, sent, default)).Results[0].ErrorCode);
    }
}
