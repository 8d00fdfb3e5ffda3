using System.Net;
using System.Threading.Channels;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Broker.Replication;
using StreamPlatform.Broker.Services;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Broker;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.UnitTests.Storage;
using ErrorCode = StreamPlatform.Protos.Kafka.Messages.ErrorCode;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// <see cref="BrokerProduceStream"/> over real gRPC (Kestrel on a loopback port): against the real
/// <see cref="BrokerGrpcService"/> for ordering, against a broker the test drives (answers when
/// told, fails when told, stops reading) for limits, deadlines and failures. Deadlines and
/// backoff run on a <see cref="FakeTimeProvider"/>.
/// </summary>
public sealed class BrokerProduceStreamTests : IAsyncDisposable
{
    private static readonly TimeSpan WaitMax = TimeSpan.FromSeconds(20);
    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000));
    private readonly List<IAsyncDisposable> _disposables = [];

    public async ValueTask DisposeAsync()
    {
        for (var i = _disposables.Count - 1; i >= 0; i--) await _disposables[i].DisposeAsync();
    }

    private sealed class Disposer(Func<ValueTask> dispose) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => dispose();
    }

    /// <summary>Hosts <paramref name="service"/> as the BrokerService on a loopback port; its URL.</summary>
    private async Task<string> HostAsync<TService>(TService service) where TService : class
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc(o => o.MaxReceiveMessageSize = 104857600);
        builder.Services.AddSingleton(service);
        var app = builder.Build();
        app.MapGrpcService<TService>();
        await app.StartAsync();
        _disposables.Add(app);
        return app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
    }

    private BrokerProduceStream Stream(string url, int outstandingMax = BrokerProduceStream.OutstandingRequestsMax)
    {
        var channel = GrpcChannel.ForAddress(url);
        var stream = new BrokerProduceStream(new BrokerProduceService.BrokerProduceServiceClient(channel), url, _time, NullLogger.Instance, outstandingMax);
        _disposables.Add(new Disposer(() => { stream.Dispose(); channel.Dispose(); return ValueTask.CompletedTask; }));
        return stream;
    }

    private static ProduceRequest Request(string topic, int partition, byte[] records)
        => new() { Acks = 1, TimeoutMs = 1000, Partitions = { new PartitionProduce { Topic = topic, Partition = partition, Records = ByteString.CopyFrom(records) } } };

    private static ProduceRequest Small() => Request("t", 0, [1, 2, 3]);

    private static async Task<T> Within<T>(Task<T> task) => await task.WaitAsync(WaitMax);

    private static async Task Until(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + WaitMax;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("condition not met");
            await Task.Delay(5);
        }
    }

    /// <summary>
    /// A broker the test drives: records every message it reads (unless <see cref="Reading"/> is
    /// off), answers a request id when <see cref="Answer"/> is called, ends the current stream with
    /// an error on <see cref="FailStream"/>.
    /// </summary>
    private sealed class DrivenBroker : BrokerProduceService.BrokerProduceServiceBase
    {
        private Channel<long?> _commands = Channel.CreateUnbounded<long?>();
        public Channel<ProduceStreamRequest> Received { get; } = Channel.CreateUnbounded<ProduceStreamRequest>();
        public int ReceivedCount;
        public int Streams;
        public bool Reading { get; init; } = true;

        public void Answer(long requestId) => Volatile.Read(ref _commands).Writer.TryWrite(requestId);
        public void FailStream() => Volatile.Read(ref _commands).Writer.TryWrite(null);

        public override async Task ProduceStream(IAsyncStreamReader<ProduceStreamRequest> requestStream,
            IServerStreamWriter<ProduceStreamResponse> responseStream, ServerCallContext context)
        {
            Interlocked.Increment(ref Streams);
            var commands = Volatile.Read(ref _commands);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
            var reading = Reading ? ReadAsync(requestStream, stop.Token) : Task.CompletedTask;
            try
            {
                await foreach (var command in commands.Reader.ReadAllAsync(context.CancellationToken))
                {
                    if (command is not { } id)
                    {
                        // Later commands go to the next stream.
                        Volatile.Write(ref _commands, Channel.CreateUnbounded<long?>());
                        throw new RpcException(new Status(StatusCode.Unavailable, "broker gone"));
                    }
                    await responseStream.WriteAsync(new ProduceStreamResponse
                    {
                        RequestId = id,
                        Response = new ProduceResponse { Results = { new PartitionProduceResult { Topic = "t", Partition = 0, BaseOffset = id } } },
                    });
                }
            }
            finally
            {
                stop.Cancel();
                try { await reading; } catch (Exception) { /* the call is over */ }
            }
        }

        private async Task ReadAsync(IAsyncStreamReader<ProduceStreamRequest> requests, CancellationToken ct)
        {
            while (await requests.MoveNext(ct))
            {
                Received.Writer.TryWrite(requests.Current);
                Interlocked.Increment(ref ReceivedCount);
            }
        }
    }

    /// <summary>
    /// The real broker services over a temporary log directory; broker 1 leads partitions 0-2 of
    /// topic "a", alone in their ISR except <paramref name="partitionWithFollower"/>, whose ISR
    /// also has broker 2, which never fetches.
    /// </summary>
    private BrokerGrpcService RealBroker(out ProduceStreamGrpcService streamService, int partitionWithFollower = -1)
    {
        var dir = new TempDir();
        var watcherChannel = GrpcChannel.ForAddress("http://127.0.0.1:9"); // never called: the watcher is fed by Apply
        var watcher = new MetadataWatcher(watcherChannel, "test", NullLogger.Instance, _time);
        var logs = new LogManager(dir.Path, _time, NullLogger<LogManager>.Instance);
        logs.LoadAll();
        var replicas = new ReplicaManager(logs, Options.Create(new BrokerOptions { BrokerId = 1 }), _time);
        watcher.Applied += m => { logs.ApplyMetadata(m, 1); replicas.ApplyMetadata(m); };
        var metrics = new BrokerMetrics(logs);
        _disposables.Add(new Disposer(async () =>
        {
            logs.CloseAll();
            await watcher.DisposeAsync();
            watcherChannel.Dispose();
            metrics.Dispose();
            dir.Dispose();
        }));
        var topic = new TopicInfo { Name = "a", TopicId = TopicIds.ToByteString(Guid.NewGuid()), ReplicationFactor = 1 };
        for (var p = 0; p < 3; p++)
            topic.Partitions.Add(p == partitionWithFollower
                ? new PartitionInfo { Partition = p, Leader = 1, Replicas = { 1, 2 }, Isr = { 1, 2 } }
                : new PartitionInfo { Partition = p, Leader = 1, Replicas = { 1 }, Isr = { 1 } });
        watcher.Apply(new MetadataSnapshot { MetadataEpoch = 1, ClusterId = "c", Brokers = { new BrokerInfo { BrokerId = 1, GrpcEndpoint = "http://127.0.0.1:1" } }, Topics = { topic } });
        streamService = new ProduceStreamGrpcService(logs, replicas, Options.Create(new BrokerOptions { BrokerId = 1 }), _time, metrics);
        return new BrokerGrpcService(logs, replicas, Options.Create(new BrokerOptions { BrokerId = 1 }), _time, metrics);
    }

    [Fact]
    public async Task An_acks_all_request_waiting_for_a_slow_follower_does_not_hold_up_later_answers_on_the_stream()
    {
        RealBroker(out var streamService, partitionWithFollower: 0);
        var stream = Stream(await HostAsync(streamService));
        var slow = Request("a", 0, TestBatches.Build(1_700_000_000_000, "slow"));
        slow.Acks = -1;
        var fast = Request("a", 1, TestBatches.Build(1_700_000_000_000, "fast"));
        fast.Acks = -1;
        var slowDone = (await stream.EnqueueAsync(slow, 10_000).AsTask().WaitAsync(WaitMax)).Completion;
        var fastDone = (await stream.EnqueueAsync(fast, 10_000).AsTask().WaitAsync(WaitMax)).Completion;
        // Partition 1 commits on the leader alone: answered, although the earlier request is not.
        var fastOutcome = await Within(fastDone);
        Assert.Equal((ErrorCode.None, 0, 0L), (fastOutcome.Error, Assert.Single(fastOutcome.Response!.Results).ErrorCode, fastOutcome.Response.Results[0].BaseOffset));
        Assert.False(slowDone.IsCompleted);
        // Broker 2 never fetches: the slow request is appended but answered REQUEST_TIMED_OUT at its timeout_ms.
        _time.Advance(TimeSpan.FromMilliseconds(slow.TimeoutMs + 1));
        var slowOutcome = await Within(slowDone);
        Assert.Equal((short)ErrorCode.RequestTimedOut, Assert.Single(slowOutcome.Response!.Results).ErrorCode);
    }

    [Fact]
    public async Task Pipelined_requests_are_appended_in_enqueue_order_on_the_real_broker()
    {
        var service = RealBroker(out var streamService);
        var stream = Stream(await HostAsync(streamService), outstandingMax: 16);

        // 90 requests, each with one record per partition of two partitions, enqueued without
        // waiting for any answer (the limit makes later enqueues wait for earlier answers).
        const int Count = 90;
        var completions = new List<Task<BrokerProduceOutcome>>();
        for (var i = 0; i < Count; i++)
        {
            var request = Request("a", i % 3, TestBatches.Build(1_700_000_000_000, $"r{i}"));
            request.Partitions.Add(new PartitionProduce { Topic = "a", Partition = (i + 1) % 3, Records = ByteString.CopyFrom(TestBatches.Build(1_700_000_000_000, $"r{i}")) });
            completions.Add((await stream.EnqueueAsync(request, 10_000).AsTask().WaitAsync(WaitMax)).Completion);
            Assert.True(stream.Outstanding <= 16);
        }
        var outcomes = await Within(Task.WhenAll(completions));

        var expected = new Dictionary<int, List<string>> { [0] = [], [1] = [], [2] = [] };
        for (var i = 0; i < Count; i++)
        {
            Assert.Equal(ErrorCode.None, outcomes[i].Error);
            var results = outcomes[i].Response!.Results;
            Assert.Equal([(i % 3, 0), ((i + 1) % 3, 0)], results.Select(r => (r.Partition, r.ErrorCode)));
            foreach (var r in results)
            {
                Assert.Equal(expected[r.Partition].Count, r.BaseOffset); // one record each, in enqueue order
                expected[r.Partition].Add($"r{i}");
            }
        }
        for (var p = 0; p < 3; p++)
        {
            var fetch = new FetchRequest { MaxBytes = 1 << 20, ReplicaId = -1, Partitions = { new PartitionFetch { Topic = "a", Partition = p, PartitionMaxBytes = 1 << 20, CurrentLeaderEpoch = -1 } } };
            var data = (await service.FetchAsync(fetch, default)).Results.Single();
            Assert.Equal(expected[p], TestBatches.Parse(data.Records.Span).Select(b => b.FirstValue));
        }
        Assert.Equal(0, stream.Outstanding);
        Assert.Equal(1, stream.SessionsStarted);
    }

    [Fact]
    public async Task Requests_larger_than_the_http2_stream_window_flow_through_the_real_broker()
    {
        // ~900 KiB per request (what librdkafka sends at full speed), above Kestrel's 768 KiB
        // default stream window, several queued at once on the one stream.
        RealBroker(out var streamService);
        var stream = Stream(await HostAsync(streamService));
        var value = new string('x', 900 * 1024);
        var completions = new List<Task<BrokerProduceOutcome>>();
        for (var i = 0; i < 8; i++)
            completions.Add((await stream.EnqueueAsync(Request("a", i % 3, TestBatches.Build(1_700_000_000_000, value)), 30_000)).Completion);
        var outcomes = await Within(Task.WhenAll(completions));
        Assert.All(outcomes, o => Assert.Equal((ErrorCode.None, 0), (o.Error, o.Response!.Results.Single().ErrorCode)));
        Assert.Equal([0L, 0L, 0L, 1L, 1L, 1L, 2L, 2L], outcomes.Select(o => o.Response!.Results[0].BaseOffset));
    }

    [Fact]
    public async Task At_most_the_outstanding_limit_is_enqueued_and_a_slot_wait_ends_at_the_deadline()
    {
        var broker = new DrivenBroker();
        var stream = Stream(await HostAsync(broker), outstandingMax: 2);
        var first = await stream.EnqueueAsync(Small(), 60_000);
        var second = await stream.EnqueueAsync(Small(), 60_000);
        var third = stream.EnqueueAsync(Small(), 60_000).AsTask();
        await Until(() => Volatile.Read(ref broker.ReceivedCount) == 2);
        Assert.False(third.IsCompleted);
        Assert.Equal(2, stream.Outstanding);

        broker.Answer(1);
        Assert.Equal(1, (await Within(first.Completion)).Response!.Results[0].BaseOffset);
        var thirdPending = await Within(third);
        Assert.Equal(2, stream.Outstanding);

        // Full again: a request waiting for a slot past its deadline is REQUEST_TIMED_OUT, never sent.
        var late = stream.EnqueueAsync(Small(), 500).AsTask();
        await Task.Delay(50);
        Assert.False(late.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(500));
        var lateOutcome = await Within((await Within(late)).Completion);
        Assert.Equal(ErrorCode.RequestTimedOut, lateOutcome.Error);

        broker.Answer(2);
        broker.Answer(3);
        Assert.Equal(2, (await Within(second.Completion)).Response!.Results[0].BaseOffset);
        Assert.Equal(3, (await Within(thirdPending.Completion)).Response!.Results[0].BaseOffset);
        Assert.Equal(0, stream.Outstanding);
        Assert.Equal(3, Volatile.Read(ref broker.ReceivedCount));
    }

    [Fact]
    public async Task An_unanswered_request_times_out_at_its_deadline_and_the_stream_stays_usable()
    {
        var broker = new DrivenBroker();
        var stream = Stream(await HostAsync(broker));
        var slow = await stream.EnqueueAsync(Small(), 1_000);
        await Until(() => Volatile.Read(ref broker.ReceivedCount) == 1);
        _time.Advance(TimeSpan.FromMilliseconds(999));
        await Task.Delay(50);
        Assert.False(slow.Completion.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(ErrorCode.RequestTimedOut, (await Within(slow.Completion)).Error);
        Assert.Equal(0, stream.Outstanding);

        broker.Answer(1); // too late: ignored
        var next = await stream.EnqueueAsync(Small(), 1_000);
        await Until(() => Volatile.Read(ref broker.ReceivedCount) == 2);
        broker.Answer(2);
        var outcome = await Within(next.Completion);
        Assert.Equal((ErrorCode.None, 2L), (outcome.Error, outcome.Response!.Results[0].BaseOffset));
        Assert.Equal(1, stream.SessionsStarted);
    }

    [Fact]
    public async Task A_request_above_the_channel_send_limit_fails_alone_and_the_stream_and_its_other_requests_carry_on()
    {
        const int limitBytes = 1 << 20;
        var broker = new DrivenBroker();
        var url = await HostAsync(broker);
        var channel = GrpcChannel.ForAddress(url, new GrpcChannelOptions { MaxSendMessageSize = limitBytes });
        var stream = new BrokerProduceStream(new BrokerProduceService.BrokerProduceServiceClient(channel), url, _time, NullLogger.Instance,
            messageBytesMax: limitBytes);
        _disposables.Add(new Disposer(() => { stream.Dispose(); channel.Dispose(); return ValueTask.CompletedTask; }));

        var written = await stream.EnqueueAsync(Small(), 10_000);
        await Until(() => Volatile.Read(ref broker.ReceivedCount) == 1);
        // Records alone just under the limit: the request around them is above it.
        var tooLarge = await stream.EnqueueAsync(Request("t", 0, new byte[limitBytes - 8]), 10_000);
        Assert.Equal(ErrorCode.MessageTooLarge, (await Within(tooLarge.Completion)).Error);
        var after = await stream.EnqueueAsync(Small(), 10_000);
        await Until(() => Volatile.Read(ref broker.ReceivedCount) == 2);

        // The request written before it and the one after it are answered on the same stream.
        broker.Answer(1);
        broker.Answer(2);
        Assert.Equal(ErrorCode.None, (await Within(written.Completion)).Error);
        Assert.Equal(ErrorCode.None, (await Within(after.Completion)).Error);
        Assert.Equal(1, stream.SessionsStarted);
        Assert.Equal(0, stream.Outstanding);
    }

    [Fact]
    public async Task A_failed_stream_fails_every_pending_request_and_later_requests_use_a_fresh_stream()
    {
        var broker = new DrivenBroker();
        var stream = Stream(await HostAsync(broker));
        var pending = new List<BrokerProduceStream.Pending>();
        for (var i = 0; i < 3; i++) pending.Add(await stream.EnqueueAsync(Small(), 60_000));
        await Until(() => Volatile.Read(ref broker.ReceivedCount) == 3);
        broker.Answer(1);
        Assert.Equal(ErrorCode.None, (await Within(pending[0].Completion)).Error);

        broker.FailStream();
        Assert.Equal(ErrorCode.NotLeaderOrFollower, (await Within(pending[1].Completion)).Error);
        Assert.Equal(ErrorCode.NotLeaderOrFollower, (await Within(pending[2].Completion)).Error);
        Assert.Equal(0, stream.Outstanding);

        // Nothing is resent: the next request is the only one the fresh stream carries. The failed
        // stream had been answered, so the new one opens without backoff.
        var after = await stream.EnqueueAsync(Small(), 60_000);
        await Until(() => Volatile.Read(ref broker.ReceivedCount) == 4);
        Assert.Equal(2, Volatile.Read(ref broker.Streams));
        var ids = new List<long>();
        while (broker.Received.Reader.TryRead(out var m)) ids.Add(m.RequestId);
        Assert.Equal([1L, 2L, 3L, 4L], ids);
        broker.Answer(4);
        Assert.Equal(ErrorCode.None, (await Within(after.Completion)).Error);
        Assert.Equal(2, stream.SessionsStarted);
    }

    /// <summary>Enqueues until the stream's backoff timer (fake time, already advanced) has run on the pool and the request is taken.</summary>
    private static async Task<BrokerProduceStream.Pending> RetryWhileBackingOff(BrokerProduceStream stream)
    {
        var deadline = DateTime.UtcNow + WaitMax;
        while (true)
        {
            var sessions = stream.SessionsStarted;
            var pending = await stream.EnqueueAsync(Small(), 60_000);
            if (!pending.Completion.IsCompleted || stream.SessionsStarted > sessions) return pending;
            if (DateTime.UtcNow > deadline) throw new TimeoutException("the backoff never ended");
            await Task.Delay(5);
        }
    }

    [Fact]
    public async Task An_unreachable_broker_fails_requests_and_reconnects_with_backoff()
    {
        // A port nobody listens on: every stream fails at once without an answer.
        var l = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        var stream = Stream($"http://127.0.0.1:{port}");
        Assert.Equal(ErrorCode.NotLeaderOrFollower, (await Within((await stream.EnqueueAsync(Small(), 60_000)).Completion)).Error);
        Assert.Equal(2, stream.SessionsStarted);

        // During the backoff (50 ms) the next stream does not even try, and a request is refused
        // at once instead of waiting for it (a client request mixing this broker's partitions
        // with a healthy broker's would otherwise wait too).
        var second = await stream.EnqueueAsync(Small(), 60_000);
        Assert.True(second.Completion.IsCompleted);
        Assert.Equal(ErrorCode.NotLeaderOrFollower, (await second.Completion).Error);
        Assert.Equal(2, stream.SessionsStarted);
        Assert.Equal(0, stream.Outstanding);
        _time.Advance(TimeSpan.FromMilliseconds(BrokerProduceStream.ReconnectBackoffMinMs));
        // After it, the next request tries a new stream.
        var third = await RetryWhileBackingOff(stream);
        Assert.Equal(ErrorCode.NotLeaderOrFollower, (await Within(third.Completion)).Error);
        Assert.Equal(3, stream.SessionsStarted);
    }

    [Fact]
    public async Task A_request_unwritten_at_its_deadline_fails_the_stalled_stream_and_everything_completes()
    {
        // The broker never reads: HTTP/2 flow control stops the writer after about a MiB.
        var broker = new DrivenBroker { Reading = false };
        var stream = Stream(await HostAsync(broker));
        var big = new byte[1 << 20];
        var pending = new List<BrokerProduceStream.Pending>();
        for (var i = 0; i < 4; i++) pending.Add(await stream.EnqueueAsync(Request("t", 0, big), 1_000));
        await Task.Delay(200);
        Assert.All(pending, p => Assert.False(p.Completion.IsCompleted));
        _time.Advance(TimeSpan.FromMilliseconds(1_000));
        var outcomes = await Within(Task.WhenAll(pending.Select(p => p.Completion)));
        Assert.All(outcomes, o => Assert.Contains(o.Error, new[] { ErrorCode.RequestTimedOut, ErrorCode.NotLeaderOrFollower }));
        Assert.Equal(0, stream.Outstanding);
        Assert.Equal(2, stream.SessionsStarted);
    }

    [Fact]
    public async Task A_queued_request_past_its_deadline_completes_only_once_the_stream_lets_go_of_its_bytes()
    {
        // The first request's write stalls (the broker never reads); the second waits behind it.
        var broker = new DrivenBroker { Reading = false };
        var stream = Stream(await HostAsync(broker));
        var big = new byte[4 << 20];
        var stalled = await stream.EnqueueAsync(Request("t", 0, big), 10_000);
        var queued = await stream.EnqueueAsync(Request("t", 0, big), 1_000);
        await Task.Delay(200);
        _time.Advance(TimeSpan.FromMilliseconds(1_000));
        await Task.Delay(200);
        // Timed out, but its bytes are still in the writer's queue: the caller may not return its
        // frame yet, so the outcome is not delivered. The stream is not failed for it.
        Assert.False(queued.Completion.IsCompleted);
        Assert.False(stalled.Completion.IsCompleted);
        Assert.Equal(1, stream.SessionsStarted);
        Assert.Equal(1, stream.Outstanding);

        // The stalled write's own deadline fails the stream, which releases everything.
        _time.Advance(TimeSpan.FromMilliseconds(9_000));
        Assert.Equal(ErrorCode.RequestTimedOut, (await Within(stalled.Completion)).Error);
        Assert.Equal(ErrorCode.RequestTimedOut, (await Within(queued.Completion)).Error);
        Assert.Equal(2, stream.SessionsStarted);
        Assert.Equal(0, stream.Outstanding);
    }

    [Fact]
    public async Task Refresh_dropping_the_broker_disposes_its_stream_and_fails_pending_requests()
    {
        var broker = new DrivenBroker();
        var url = await HostAsync(broker);
        using var pool = new BrokerClientPool(time: _time);
        var info = new BrokerInfo { BrokerId = 1, GrpcEndpoint = url };
        var stream = pool.GetProduceStream(info)!;
        Assert.Same(stream, pool.GetProduceStream(info));
        var pending = await stream.EnqueueAsync(Small(), 60_000);
        await Until(() => Volatile.Read(ref broker.ReceivedCount) == 1);

        pool.Refresh(new ClusterMetadata(new MetadataSnapshot { MetadataEpoch = 2 }));
        Assert.Equal(ErrorCode.NotLeaderOrFollower, (await Within(pending.Completion)).Error);
        Assert.Equal(ErrorCode.NotLeaderOrFollower, (await Within((await stream.EnqueueAsync(Small(), 60_000)).Completion)).Error);
        Assert.NotSame(stream, pool.GetProduceStream(info)); // a fresh channel and stream if it comes back
    }
}
