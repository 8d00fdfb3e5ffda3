using System.Threading.Channels;
using Google.Protobuf;
using Grpc.Net.Client;
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

namespace StreamPlatform.UnitTests.Broker;

/// <summary>The broker side of WatchAppends: coalescing, leadership filter, end on cancel, the append hook.</summary>
public sealed class AppendWatchersTests : IAsyncDisposable
{
    private const int Me = 1;
    private const long T0 = 1_700_000_000_000;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly TempDir _dir = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(T0));
    private readonly GrpcChannel _channel = GrpcChannel.ForAddress("http://127.0.0.1:9"); // never called: the watcher is fed by Apply
    private readonly MetadataWatcher _watcher;
    private readonly LogManager _logs;
    private readonly BrokerMetrics _metrics;
    private readonly BrokerGrpcService _service;
    private readonly ReplicaManager _replicas;

    public AppendWatchersTests()
    {
        _watcher = new MetadataWatcher(_channel, "test", NullLogger.Instance, _time);
        _logs = new LogManager(_dir.Path, _time, NullLogger<LogManager>.Instance);
        _logs.LoadAll();
        _replicas = new ReplicaManager(_logs, Options.Create(new BrokerOptions { BrokerId = Me }), _time);
        _watcher.Applied += m => { _logs.ApplyMetadata(m, Me); _replicas.ApplyMetadata(m); };
        _metrics = new BrokerMetrics(_logs);
        _service = new BrokerGrpcService(_logs, _replicas, Options.Create(new BrokerOptions { BrokerId = Me }), _time, _metrics);
        var topic = new TopicInfo { Name = "a", TopicId = TopicIds.ToByteString(Guid.NewGuid()), ReplicationFactor = 1 };
        // Partition 0 led here, 1 led by broker 2 with a replica (a follower log) here.
        topic.Partitions.Add(new PartitionInfo { Partition = 0, Leader = Me, Replicas = { Me }, Isr = { Me } });
        topic.Partitions.Add(new PartitionInfo { Partition = 1, Leader = 2, Replicas = { 2, Me }, Isr = { 2, Me } });
        var snapshot = new MetadataSnapshot { MetadataEpoch = 1, ClusterId = "c" };
        snapshot.Brokers.Add(new BrokerInfo { BrokerId = Me, GrpcEndpoint = "http://127.0.0.1:1" });
        snapshot.Brokers.Add(new BrokerInfo { BrokerId = 2, GrpcEndpoint = "http://127.0.0.1:2" });
        snapshot.Topics.Add(topic);
        _watcher.Apply(snapshot);
    }

    public async ValueTask DisposeAsync()
    {
        _logs.CloseAll();
        await _watcher.DisposeAsync();
        _channel.Dispose();
        _metrics.Dispose();
        _dir.Dispose();
    }

    /// <summary>A stream writer whose writes complete only when the test lets them (<see cref="Gate"/>).</summary>
    private sealed class Writer
    {
        public Channel<AppendNotices> Written { get; } = Channel.CreateUnbounded<AppendNotices>();
        public TaskCompletionSource Gate { get; set; } = Completed();

        public static TaskCompletionSource Completed()
        {
            var t = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            t.SetResult();
            return t;
        }

        public Task WriteAsync(AppendNotices message)
        {
            Written.Writer.TryWrite(message.Clone());
            return Gate.Task;
        }

        public async Task<AppendNotices> NextAsync()
        {
            using var cts = new CancellationTokenSource(Timeout);
            return await Written.Reader.ReadAsync(cts.Token);
        }
    }

    private static List<(string, int, long)> Of(AppendNotices m) => m.Notices.Select(n => (n.Topic, n.Partition, n.HighWatermark)).OrderBy(x => x).ToList();

    [Fact]
    public async Task Empty_first_message_then_each_advance_and_under_a_slow_write_one_coalesced_message()
    {
        var hub = new AppendWatchers();
        var writer = new Writer();
        using var cts = new CancellationTokenSource();
        var run = hub.RunAsync(_ => true, writer.WriteAsync, cts.Token);

        // The hello is written after the subscription: what is published from here on arrives.
        Assert.Empty((await writer.NextAsync()).Notices);
        Assert.Equal(1, hub.Count);
        hub.Publish(new TopicPartition("a", 0), 1);
        Assert.Equal([("a", 0, 1L)], Of(await writer.NextAsync()));

        // The next write blocks: everything published meanwhile goes out as one message, with the
        // latest high watermark per partition (a late, lower report does not win).
        writer.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        hub.Publish(new TopicPartition("a", 0), 2);
        Assert.Equal([("a", 0, 2L)], Of(await writer.NextAsync()));
        hub.Publish(new TopicPartition("a", 0), 3);
        hub.Publish(new TopicPartition("b", 4), 10);
        hub.Publish(new TopicPartition("a", 0), 5);
        hub.Publish(new TopicPartition("a", 0), 4);
        hub.Publish(new TopicPartition("b", 4), 11);
        Assert.False(writer.Written.Reader.TryPeek(out _));
        var gate = writer.Gate;
        writer.Gate = Writer.Completed();
        gate.SetResult();
        Assert.Equal([("a", 0, 5L), ("b", 4, 11L)], Of(await writer.NextAsync()));

        // Cancel: the stream ends normally and the subscription is gone.
        cts.Cancel();
        await run.WaitAsync(Timeout);
        Assert.Equal(0, hub.Count);
        hub.Publish(new TopicPartition("a", 0), 6);
        Assert.False(writer.Written.Reader.TryPeek(out _));
    }

    [Fact]
    public async Task Appends_to_logs_are_reported_only_for_partitions_this_broker_leads()
    {
        var writer = new Writer();
        using var cts = new CancellationTokenSource();
        var run = _logs.AppendWatchers.RunAsync(_service.Leads, writer.WriteAsync, cts.Token);
        Assert.Empty((await writer.NextAsync()).Notices);

        // The follower log of partition 1 advancing is not reported; partition 0's append is.
        Assert.True(_logs.TryGetLog(new TopicPartition("a", 1), out var follower));
        Assert.Equal(0, follower.Append(TestBatches.Build(T0, "f1", "f2")).ErrorCode);
        var produced = await _service.ProduceAsync(new ProduceRequest
        {
            Acks = 1, TimeoutMs = 1000,
            Partitions = { new PartitionProduce { Topic = "a", Partition = 0, Records = ByteString.CopyFrom(TestBatches.Build(T0, "x", "y", "z")) } },
        }, default);
        Assert.Equal(0, produced.Results[0].ErrorCode);
        var message = await writer.NextAsync();
        // Both may land in one message or the follower's in an empty one that is never written.
        Assert.Equal([("a", 0, 3L)], Of(message));

        cts.Cancel();
        await run.WaitAsync(Timeout);
        Assert.Equal(0, _logs.AppendWatchers.Count);
    }

    [Fact]
    public async Task A_failed_append_reports_nothing()
    {
        var writer = new Writer();
        using var cts = new CancellationTokenSource();
        var run = _logs.AppendWatchers.RunAsync(_ => true, writer.WriteAsync, cts.Token);
        Assert.Empty((await writer.NextAsync()).Notices);
        // Through the partition, as produce does: it is what moves the (replicated) high watermark.
        Assert.True(_replicas.TryGetPartition(new TopicPartition("a", 0), out var partition));
        Assert.NotEqual(0, partition.AppendAsLeader(new byte[] { 1, 2, 3 }, 1, default, crcVerified: false).Append.ErrorCode);
        Assert.Equal(0, partition.AppendAsLeader(TestBatches.Build(T0, "ok"), 1, default, crcVerified: false).Append.ErrorCode);
        // The next message is the good append's, nothing before it.
        Assert.Equal([("a", 0, 1L)], Of(await writer.NextAsync()));
        cts.Cancel();
        await run.WaitAsync(Timeout);
    }
}
