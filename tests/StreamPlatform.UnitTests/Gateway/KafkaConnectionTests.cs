using System.Buffers.Binary;
using System.Collections.Concurrent;
using StreamPlatform.Gateway.Apis;
using StreamPlatform.Gateway.Kafka;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Gateway;

public class KafkaConnectionTests
{
    /// <summary>DescribeCluster whose responses complete when the test says so (by correlation id).</summary>
    private sealed class GatedHandler(bool sequential = false) : ApiHandler<DescribeClusterRequest>
    {
        public override bool Sequential => sequential;
        public ConcurrentDictionary<int, TaskCompletionSource> Gates { get; } = new();
        public int Started;
        public override ApiKey Key => ApiKey.DescribeCluster;
        public override short MinVersion => 0;
        public override short MaxVersion => 1;

        protected override async Task<IKafkaResponse?> HandleAsync(DescribeClusterRequest request, RequestContext context, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Started);
            await Gates.GetOrAdd(context.CorrelationId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            return new DescribeClusterResponse { ClusterId = $"reply-{context.CorrelationId}" };
        }

        public void Release(int correlationId)
            => Gates.GetOrAdd(correlationId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).SetResult();
    }

    /// <summary>
    /// DescribeCluster standing in for Produce (Sequential, OrderedAtDispatch): each request says
    /// it is dispatched when the test releases <see cref="Dispatch"/> for it, and completes when the
    /// test releases <see cref="Complete"/> for it (a handler returning without dispatching
    /// releases the next request as well).
    /// </summary>
    private sealed class DispatchingHandler : ApiHandler<DescribeClusterRequest>
    {
        public override bool Sequential => true;
        public override bool OrderedAtDispatch => true;
        public override ApiKey Key => ApiKey.DescribeCluster;
        public override short MinVersion => 0;
        public override short MaxVersion => 1;
        public ConcurrentDictionary<int, TaskCompletionSource> Dispatch { get; } = new();
        public ConcurrentDictionary<int, TaskCompletionSource> Complete { get; } = new();
        public ConcurrentQueue<int> Started { get; } = new();

        private static TaskCompletionSource Gate(ConcurrentDictionary<int, TaskCompletionSource> gates, int id)
            => gates.GetOrAdd(id, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

        public void ReleaseDispatch(int id) => Gate(Dispatch, id).TrySetResult();
        public void ReleaseComplete(int id) => Gate(Complete, id).TrySetResult();

        protected override async Task<IKafkaResponse?> HandleAsync(DescribeClusterRequest request, RequestContext context, CancellationToken cancellationToken)
        {
            Started.Enqueue(context.CorrelationId);
            await Gate(Dispatch, context.CorrelationId).Task;
            context.Dispatched();
            await Gate(Complete, context.CorrelationId).Task;
            return new DescribeClusterResponse { ClusterId = $"reply-{context.CorrelationId}" };
        }
    }

    /// <summary>
    /// DescribeCluster standing in for a Produce that resends: dispatches at once, then records
    /// when its turn to resend came (the previous request's resends enqueued), and signals its own
    /// resends enqueued when the test releases it (or returns when released to complete).
    /// </summary>
    private sealed class ResendingHandler : ApiHandler<DescribeClusterRequest>
    {
        public override bool Sequential => true;
        public override bool OrderedAtDispatch => true;
        public override ApiKey Key => ApiKey.DescribeCluster;
        public override short MinVersion => 0;
        public override short MaxVersion => 1;
        public ConcurrentDictionary<int, TaskCompletionSource> Resent { get; } = new();
        public ConcurrentDictionary<int, TaskCompletionSource> Complete { get; } = new();
        public ConcurrentQueue<int> Turns { get; } = new();

        private static TaskCompletionSource Gate(ConcurrentDictionary<int, TaskCompletionSource> gates, int id)
            => gates.GetOrAdd(id, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

        public void ReleaseResent(int id) => Gate(Resent, id).TrySetResult();
        public void ReleaseComplete(int id) => Gate(Complete, id).TrySetResult();

        protected override async Task<IKafkaResponse?> HandleAsync(DescribeClusterRequest request, RequestContext context, CancellationToken cancellationToken)
        {
            context.Dispatched();
            await context.PreviousResendsDispatched;
            Turns.Enqueue(context.CorrelationId);
            var resent = Gate(Resent, context.CorrelationId).Task;
            if (await Task.WhenAny(resent, Gate(Complete, context.CorrelationId).Task) == resent)
            {
                context.ResendsDispatched();
                await Gate(Complete, context.CorrelationId).Task;
            }
            return new DescribeClusterResponse { ClusterId = $"reply-{context.CorrelationId}" };
        }
    }

    [Fact]
    public async Task A_request_resends_only_after_the_previous_one_enqueued_its_resends_or_returned()
    {
        await using var kit = new GatewayTestKit();
        var handler = new ResendingHandler();
        await using var client = new PipeClient(kit.Registry(handler), kit.Options, kit.Metrics);
        var bytes = new List<byte>();
        for (var id = 1; id <= 3; id++) bytes.AddRange(PipeClient.EncodeRequest(ApiKey.DescribeCluster, 0, id, new DescribeClusterRequest()));
        await client.SendRawAsync(bytes.ToArray());

        await UntilAsync(() => handler.Turns.Count >= 1);
        await Task.Delay(100); // give a (wrong) connection time to let 2 or 3 resend
        Assert.Equal([1], handler.Turns);
        // 1 enqueued its resends (still running): 2's turn.
        handler.ReleaseResent(1);
        await UntilAsync(() => handler.Turns.Count >= 2);
        await Task.Delay(100);
        Assert.Equal([1, 2], handler.Turns);
        // 2 returns without signalling: the connection releases 3's turn.
        handler.ReleaseComplete(2);
        await UntilAsync(() => handler.Turns.Count >= 3);
        Assert.Equal([1, 2, 3], handler.Turns);
        handler.ReleaseComplete(1);
        handler.ReleaseComplete(3);
        for (var id = 1; id <= 3; id++)
        {
            var (correlation, response) = await client.ReadAsync<DescribeClusterResponse>(ApiKey.DescribeCluster, 0);
            Assert.Equal((id, $"reply-{id}"), (correlation, response.ClusterId));
        }
    }

    /// <summary>A Sequential handler that is not OrderedAtDispatch (like topic admin).</summary>
    private sealed class AdminHandler : ApiHandler<CreateTopicsRequest>
    {
        public override bool Sequential => true;
        public override ApiKey Key => ApiKey.CreateTopics;
        public override short MinVersion => 2;
        public override short MaxVersion => 2;
        public int Started;

        protected override Task<IKafkaResponse?> HandleAsync(CreateTopicsRequest request, RequestContext context, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Started);
            return Task.FromResult<IKafkaResponse?>(new CreateTopicsResponse());
        }
    }

    private static async Task UntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition() && DateTime.UtcNow < deadline) await Task.Delay(10);
    }

    [Fact]
    public async Task Dispatched_requests_let_the_next_one_start_before_they_complete_and_answers_stay_in_order()
    {
        await using var kit = new GatewayTestKit();
        var handler = new DispatchingHandler();
        var admin = new AdminHandler();
        await using var client = new PipeClient(kit.Registry(handler, admin), kit.Options, kit.Metrics);
        var bytes = new List<byte>();
        for (var id = 1; id <= 3; id++) bytes.AddRange(PipeClient.EncodeRequest(ApiKey.DescribeCluster, 0, id, new DescribeClusterRequest()));
        bytes.AddRange(PipeClient.EncodeRequest(ApiKey.CreateTopics, 2, 4, new CreateTopicsRequest()));
        await client.SendRawAsync(bytes.ToArray());

        await UntilAsync(() => handler.Started.Count >= 1);
        await Task.Delay(100); // give a (wrong) connection time to start the next one
        Assert.Equal([1], handler.Started);

        // Dispatched, not completed: the next one starts.
        handler.ReleaseDispatch(1);
        await UntilAsync(() => handler.Started.Count >= 2);
        Assert.Equal([1, 2], handler.Started);
        handler.ReleaseDispatch(2);
        await UntilAsync(() => handler.Started.Count >= 3);
        Assert.Equal([1, 2, 3], handler.Started);
        handler.ReleaseDispatch(3);

        // The admin request waits for every earlier Sequential request to complete, not only to be dispatched.
        handler.ReleaseComplete(3);
        handler.ReleaseComplete(2);
        var early = client.ReadFrameAsync(1);
        await Task.Delay(100);
        Assert.False(early.IsCompleted); // 1 is not done: nothing may be written yet
        Assert.Equal(0, Volatile.Read(ref admin.Started));
        handler.ReleaseComplete(1);

        Assert.Equal(1, (await early)!.Value.CorrelationId);
        Assert.Equal(2, (await client.ReadAsync<DescribeClusterResponse>(ApiKey.DescribeCluster, 0)).CorrelationId);
        Assert.Equal(3, (await client.ReadAsync<DescribeClusterResponse>(ApiKey.DescribeCluster, 0)).CorrelationId);
        Assert.Equal(4, (await client.ReadAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 2)).CorrelationId);
        Assert.Equal(1, Volatile.Read(ref admin.Started));
    }

    [Fact]
    public async Task ApiVersions_lists_exactly_the_registry()
    {
        await using var kit = new GatewayTestKit();
        var registry = kit.Registry();
        await using var client = new PipeClient(registry, kit.Options, kit.Metrics);
        await client.SendAsync(ApiKey.ApiVersions, 3, 42, new ApiVersionsRequest { ClientSoftwareName = "unit", ClientSoftwareVersion = "1" });
        var (correlationId, response) = await client.ReadAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 3);
        Assert.Equal(42, correlationId);
        Assert.Equal((short)ErrorCode.None, response.ErrorCode);
        var keys = response.ApiKeys.Select(k => (ApiKey)k.ApiKey).ToHashSet();
        Assert.Equal(registry.Supported.Select(s => (ApiKey)s.ApiKey).ToHashSet(), keys);
        Assert.Contains(ApiKey.ApiVersions, keys);
        Assert.DoesNotContain(ApiKey.JoinGroup, keys); // not handled -> never advertised
        // Produce is advertised from v0 as Kafka 4.x does (KAFKA-18659), served from v3.
        var produce = response.ApiKeys.Single(k => k.ApiKey == (short)ApiKey.Produce);
        Assert.Equal(0, produce.MinVersion);
        Assert.False(registry.IsSupported((short)ApiKey.Produce, 2));
        Assert.True(registry.IsSupported((short)ApiKey.Produce, 3));
        var fetch = response.ApiKeys.Single(k => k.ApiKey == (short)ApiKey.Fetch);
        Assert.Equal(4, fetch.MinVersion);
        Assert.Equal(FetchResponse.HighestSupportedVersion, fetch.MaxVersion);
    }

    [Fact]
    public async Task ApiVersions_at_an_unknown_version_gets_unsupported_version_in_a_v0_response()
    {
        await using var kit = new GatewayTestKit();
        await using var client = new PipeClient(kit.Registry(), kit.Options, kit.Metrics);
        // v99 header: api key, version, correlation id, client id (v1 header layout), empty body.
        var frame = new byte[4 + 8 + 2];
        BinaryPrimitives.WriteInt32BigEndian(frame, 10);
        BinaryPrimitives.WriteInt16BigEndian(frame.AsSpan(4), (short)ApiKey.ApiVersions);
        BinaryPrimitives.WriteInt16BigEndian(frame.AsSpan(6), 99);
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(8), 7);
        BinaryPrimitives.WriteInt16BigEndian(frame.AsSpan(12), -1);
        await client.SendRawAsync(frame);
        var (correlationId, response) = await client.ReadAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 0);
        Assert.Equal(7, correlationId);
        Assert.Equal((short)ErrorCode.UnsupportedVersion, response.ErrorCode);
        Assert.Contains(response.ApiKeys, k => k.ApiKey == (short)ApiKey.ApiVersions && k.MaxVersion >= 3);
    }

    [Fact]
    public async Task Unsupported_version_of_another_api_closes_the_connection()
    {
        await using var kit = new GatewayTestKit();
        await using var client = new PipeClient(kit.Registry(), kit.Options, kit.Metrics);
        // Produce v2 (below our v3 minimum).
        await client.SendAsync(ApiKey.Produce, 2, 1, new ProduceRequest { Acks = 1, TimeoutMs = 1000 });
        Assert.True(await client.IsClosedAsync());
    }

    [Fact]
    public async Task Oversized_frame_closes_the_connection_without_waiting_for_its_body()
    {
        await using var kit = new GatewayTestKit();
        await using var client = new PipeClient(kit.Registry(), kit.Options, kit.Metrics);
        var prefix = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(prefix, kit.Options.MaxFrameBytes + 1);
        await client.SendRawAsync(prefix);
        Assert.True(await client.IsClosedAsync());
    }

    [Fact]
    public async Task Malformed_request_closes_only_after_earlier_responses()
    {
        await using var kit = new GatewayTestKit();
        await using var client = new PipeClient(kit.Registry(), kit.Options, kit.Metrics);
        var good = PipeClient.EncodeRequest(ApiKey.ApiVersions, 0, 1, new ApiVersionsRequest());
        // Metadata v1 whose topics array claims 1000 entries but has no bytes for them.
        var bad = PipeClient.EncodeRequest(ApiKey.Metadata, 1, 2, new MetadataRequest { Topics = [] });
        bad[^1] = 0xE8; bad[^2] = 0x03; // array length 0x000003E8
        await client.SendRawAsync(good.Concat(bad).ToArray());
        var (correlationId, _) = await client.ReadAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 0);
        Assert.Equal(1, correlationId);
        Assert.True(await client.IsClosedAsync());
    }

    /// <summary>DescribeCluster whose response records whether the resource it depends on was still alive when encoded.</summary>
    private sealed class ResourceHandler : ApiHandler<DescribeClusterRequest>
    {
        public sealed class Resource : IDisposable
        {
            public int Disposed;
            public void Dispose() => Interlocked.Increment(ref Disposed);
        }

        private sealed class CheckingResponse(Resource resource, DescribeClusterResponse inner) : IKafkaResponse
        {
            public short ApiKeyValue => inner.ApiKeyValue;
            public void Read(ref KafkaReader reader, short version) => inner.Read(ref reader, version);
            public int ComputeSize(short version) => inner.ComputeSize(version);
            public void Write(ref KafkaWriter writer, short version)
            {
                if (Volatile.Read(ref resource.Disposed) != 0) throw new InvalidOperationException("encoded after its resource was released");
                inner.Write(ref writer, version);
            }
        }

        public ConcurrentQueue<Resource> Resources { get; } = new();
        public override ApiKey Key => ApiKey.DescribeCluster;
        public override short MinVersion => 0;
        public override short MaxVersion => 1;

        protected override Task<IKafkaResponse?> HandleAsync(DescribeClusterRequest request, RequestContext context, CancellationToken cancellationToken)
        {
            var resource = new Resource();
            Resources.Enqueue(resource);
            context.DisposeAfterResponse(resource);
            return Task.FromResult<IKafkaResponse?>(new CheckingResponse(resource, new DescribeClusterResponse { ClusterId = "kept" }));
        }
    }

    [Fact]
    public async Task Resources_registered_by_a_handler_are_disposed_once_after_the_response_is_encoded()
    {
        await using var kit = new GatewayTestKit();
        var handler = new ResourceHandler();
        await using var client = new PipeClient(kit.Registry(handler), kit.Options, kit.Metrics);
        for (var id = 1; id <= 3; id++)
        {
            await client.SendAsync(ApiKey.DescribeCluster, 0, id, new DescribeClusterRequest());
            var (correlationId, response) = await client.ReadAsync<DescribeClusterResponse>(ApiKey.DescribeCluster, 0);
            Assert.Equal((id, "kept"), (correlationId, response.ClusterId));
        }
        Assert.Equal([1, 1, 1], handler.Resources.Select(r => Volatile.Read(ref r.Disposed)));
    }

    /// <summary>A Produce handler that fails unexpectedly (a bug, say).</summary>
    private sealed class ThrowingProduceHandler : ApiHandler<ProduceRequest>
    {
        public override ApiKey Key => ApiKey.Produce;
        public override short MinVersion => 3;
        public override short MaxVersion => 9;

        protected override Task<IKafkaResponse?> HandleAsync(ProduceRequest request, RequestContext context, CancellationToken cancellationToken)
            => throw new InvalidOperationException("boom");
    }

    private static ProduceRequest ProduceTo(short acks) => new()
    {
        Acks = acks,
        TimeoutMs = 1000,
        TopicData = [new ProduceRequest.TopicProduceData { Name = "orders", PartitionData = [new ProduceRequest.PartitionProduceData { Index = 0, Records = new byte[] { 1 } }] }],
    };

    [Fact]
    public async Task A_failing_produce_answers_unknown_server_error_with_acks_and_closes_the_connection_without()
    {
        await using var kit = new GatewayTestKit();
        await using (var client = new PipeClient(kit.Registry(new ThrowingProduceHandler()), kit.Options, kit.Metrics))
        {
            await client.SendAsync(ApiKey.Produce, 9, 1, ProduceTo(1));
            var (correlationId, response) = await client.ReadAsync<ProduceResponse>(ApiKey.Produce, 9);
            Assert.Equal(1, correlationId);
            Assert.Equal((short)ErrorCode.UnknownServerError, Assert.Single(Assert.Single(response.Responses).PartitionResponses).ErrorCode);
        }
        await using (var client = new PipeClient(kit.Registry(new ThrowingProduceHandler()), kit.Options, kit.Metrics))
        {
            await client.SendAsync(ApiKey.Produce, 9, 2, ProduceTo(0));
            // No response may come (the producer expects none): the connection closes instead.
            Assert.Null(await client.ReadFrameAsync(1));
        }
    }

    [Fact]
    public async Task A_request_that_does_not_fit_the_gateways_request_bytes_waits_until_earlier_ones_complete()
    {
        await using var kit = new GatewayTestKit();
        var gated = new GatedHandler();
        var frame = PipeClient.EncodeRequest(ApiKey.DescribeCluster, 0, 1, new DescribeClusterRequest());
        // Room for one request frame (without its 4-byte size prefix) at a time.
        var budget = new RequestMemoryBudget(frame.Length - 4);
        await using var client = new PipeClient(kit.Registry(gated), kit.Options, kit.Metrics, budget);
        var bytes = new List<byte>();
        for (var id = 1; id <= 2; id++) bytes.AddRange(PipeClient.EncodeRequest(ApiKey.DescribeCluster, 0, id, new DescribeClusterRequest()));
        await client.SendRawAsync(bytes.ToArray());

        await UntilAsync(() => Volatile.Read(ref gated.Started) >= 1);
        await Task.Delay(100); // give a (wrong) connection time to start the second one
        Assert.Equal(1, Volatile.Read(ref gated.Started));
        Assert.Equal(1, budget.Waiting);

        gated.Release(1);
        Assert.Equal(1, (await client.ReadAsync<DescribeClusterResponse>(ApiKey.DescribeCluster, 0)).CorrelationId);
        await UntilAsync(() => Volatile.Read(ref gated.Started) >= 2);
        gated.Release(2);
        Assert.Equal(2, (await client.ReadAsync<DescribeClusterResponse>(ApiKey.DescribeCluster, 0)).CorrelationId);
        await UntilAsync(() => budget.InUseBytes == 0);
        Assert.Equal(0, budget.InUseBytes);
    }

    [Fact]
    public async Task Responses_are_written_in_request_order_when_handlers_complete_out_of_order()
    {
        await using var kit = new GatewayTestKit();
        var gated = new GatedHandler();
        await using var client = new PipeClient(kit.Registry(gated), kit.Options, kit.Metrics);
        // Three pipelined requests in one write, plus an ApiVersions that completes at once.
        var bytes = new List<byte>();
        for (var id = 1; id <= 3; id++) bytes.AddRange(PipeClient.EncodeRequest(ApiKey.DescribeCluster, 0, id, new DescribeClusterRequest()));
        bytes.AddRange(PipeClient.EncodeRequest(ApiKey.ApiVersions, 0, 4, new ApiVersionsRequest()));
        await client.SendRawAsync(bytes.ToArray());

        // All three run concurrently (DescribeCluster is not Sequential).
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Volatile.Read(ref gated.Started) < 3 && DateTime.UtcNow < deadline) await Task.Delay(10);
        Assert.Equal(3, Volatile.Read(ref gated.Started));

        gated.Release(3);
        gated.Release(2);
        var early = client.ReadFrameAsync(1);
        await Task.Delay(100);
        Assert.False(early.IsCompleted); // 1 is not done: nothing may be written yet
        gated.Release(1);

        var first = await early;
        Assert.Equal(1, first!.Value.CorrelationId);
        var (c2, r2) = await client.ReadAsync<DescribeClusterResponse>(ApiKey.DescribeCluster, 0);
        var (c3, r3) = await client.ReadAsync<DescribeClusterResponse>(ApiKey.DescribeCluster, 0);
        var (c4, _) = await client.ReadAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 0);
        Assert.Equal((2, "reply-2"), (c2, r2.ClusterId));
        Assert.Equal((3, "reply-3"), (c3, r3.ClusterId));
        Assert.Equal(4, c4);
    }

    [Fact]
    public async Task In_flight_limit_stops_reading_until_a_response_is_written()
    {
        await using var kit = new GatewayTestKit();
        var gated = new GatedHandler();
        await using var client = new PipeClient(kit.Registry(gated), kit.Options, kit.Metrics);
        var limit = kit.Options.MaxInFlightRequestsPerConnection;
        var bytes = new List<byte>();
        for (var id = 1; id <= limit + 2; id++) bytes.AddRange(PipeClient.EncodeRequest(ApiKey.DescribeCluster, 0, id, new DescribeClusterRequest()));
        await client.SendRawAsync(bytes.ToArray());
        var started = DateTime.UtcNow.AddSeconds(10);
        while (Volatile.Read(ref gated.Started) < limit && DateTime.UtcNow < started) await Task.Delay(10);
        await Task.Delay(150); // give a (wrong) reader time to start more
        Assert.Equal(limit, Volatile.Read(ref gated.Started));

        gated.Release(1);
        var (c1, _) = await client.ReadAsync<DescribeClusterResponse>(ApiKey.DescribeCluster, 0);
        Assert.Equal(1, c1);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Volatile.Read(ref gated.Started) < limit + 1 && DateTime.UtcNow < deadline) await Task.Delay(10);
        Assert.Equal(limit + 1, Volatile.Read(ref gated.Started));
        for (var id = 2; id <= limit + 2; id++) gated.Release(id);
        for (var id = 2; id <= limit + 2; id++)
            Assert.Equal(id, (await client.ReadAsync<DescribeClusterResponse>(ApiKey.DescribeCluster, 0)).CorrelationId);
    }

    [Fact]
    public async Task Acks_zero_produce_gets_no_response()
    {
        await using var kit = new GatewayTestKit();
        kit.Watcher.Apply(GatewayTestKit.Snapshot(autoCreate: false));
        await using var client = new PipeClient(kit.Registry(), kit.Options, kit.Metrics);
        var produce = new ProduceRequest { Acks = 0, TimeoutMs = 1000 };
        produce.TopicData.Add(new ProduceRequest.TopicProduceData
        {
            Name = "missing",
            PartitionData = { new ProduceRequest.PartitionProduceData { Index = 0, Records = new byte[] { 1, 2, 3 } } },
        });
        await client.SendAsync(ApiKey.Produce, 7, 1, produce);
        await client.SendAsync(ApiKey.ApiVersions, 0, 2, new ApiVersionsRequest());
        var (correlationId, _) = await client.ReadAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 0);
        Assert.Equal(2, correlationId);
    }

    [Fact]
    public async Task Produce_to_unknown_topic_and_partition_answers_per_partition()
    {
        await using var kit = new GatewayTestKit();
        kit.Watcher.Apply(GatewayTestKit.Snapshot(autoCreate: false));
        await using var client = new PipeClient(kit.Registry(), kit.Options, kit.Metrics);
        var produce = new ProduceRequest { Acks = -1, TimeoutMs = 1000 };
        produce.TopicData.Add(new ProduceRequest.TopicProduceData
        {
            Name = "missing",
            PartitionData = { new ProduceRequest.PartitionProduceData { Index = 0, Records = new byte[] { 1 } } },
        });
        produce.TopicData.Add(new ProduceRequest.TopicProduceData
        {
            Name = "orders",
            PartitionData =
            {
                new ProduceRequest.PartitionProduceData { Index = 7, Records = new byte[] { 1 } },
                new ProduceRequest.PartitionProduceData { Index = 2, Records = new byte[] { 1 } }, // leader fenced
            },
        });
        await client.SendAsync(ApiKey.Produce, 9, 5, produce);
        var (_, response) = await client.ReadAsync<ProduceResponse>(ApiKey.Produce, 9);
        Assert.Equal(["missing", "orders"], response.Responses.Select(r => r.Name));
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, response.Responses[0].PartitionResponses[0].ErrorCode);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, response.Responses[1].PartitionResponses[0].ErrorCode);
        Assert.Equal((short)ErrorCode.NotLeaderOrFollower, response.Responses[1].PartitionResponses[1].ErrorCode);
    }

    [Fact]
    public async Task Sequential_requests_start_only_after_the_previous_one_completed()
    {
        await using var kit = new GatewayTestKit();
        var gated = new GatedHandler(sequential: true);
        await using var client = new PipeClient(kit.Registry(gated), kit.Options, kit.Metrics);
        var bytes = new List<byte>();
        for (var id = 1; id <= 3; id++) bytes.AddRange(PipeClient.EncodeRequest(ApiKey.DescribeCluster, 0, id, new DescribeClusterRequest()));
        await client.SendRawAsync(bytes.ToArray());
        var first = DateTime.UtcNow.AddSeconds(10);
        while (Volatile.Read(ref gated.Started) < 1 && DateTime.UtcNow < first) await Task.Delay(10);
        await Task.Delay(150); // give a (wrong) connection time to start the next one
        Assert.Equal(1, Volatile.Read(ref gated.Started));
        gated.Release(1);
        Assert.Equal(1, (await client.ReadAsync<DescribeClusterResponse>(ApiKey.DescribeCluster, 0)).CorrelationId);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Volatile.Read(ref gated.Started) < 2 && DateTime.UtcNow < deadline) await Task.Delay(10);
        await Task.Delay(100);
        Assert.Equal(2, Volatile.Read(ref gated.Started));
        gated.Release(2);
        gated.Release(3);
        Assert.Equal(2, (await client.ReadAsync<DescribeClusterResponse>(ApiKey.DescribeCluster, 0)).CorrelationId);
        Assert.Equal(3, (await client.ReadAsync<DescribeClusterResponse>(ApiKey.DescribeCluster, 0)).CorrelationId);
    }
}
