using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Gateway.Apis;
using StreamPlatform.Gateway.Kafka;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// The connection's memory and time bounds: partly received frames count against the request
/// budget, slow frames and idle connections are closed (fake clock), unauthenticated connections
/// get the small frame limit, and a client that does not read its responses mutes its connection.
/// </summary>
public class KafkaConnectionBoundsTests
{
    private static async Task UntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition() && DateTime.UtcNow < deadline) await Task.Delay(10);
    }

    /// <summary>Moves the fake clock on in steps until <paramref name="done"/> completes (the connection loop runs on real threads).</summary>
    private static async Task AdvanceUntilAsync(FakeTimeProvider time, Task done, TimeSpan step)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!done.IsCompleted && DateTime.UtcNow < deadline)
        {
            time.Advance(step);
            await Task.Delay(10);
        }
    }

    private static byte[] SizePrefix(int size)
    {
        var prefix = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(prefix, size);
        return prefix;
    }

    [Fact]
    public async Task A_partly_received_frame_holds_its_declared_size_of_the_request_budget_and_a_second_one_waits()
    {
        await using var kit = new GatewayTestKit();
        var declared = 600 * 1024;
        var budget = new RequestMemoryBudget(1024 * 1024);
        await using var first = new PipeClient(kit.Registry(), kit.Options, kit.Metrics, budget);
        await using var second = new PipeClient(kit.Registry(), kit.Options, kit.Metrics, budget);

        // 100 bytes of a 600 KiB frame: the whole frame is reserved, as Kafka allocates it on the size.
        await first.SendRawAsync([.. SizePrefix(declared), .. new byte[100]]);
        await UntilAsync(() => budget.InUseBytes == declared);
        Assert.Equal(declared, budget.InUseBytes);

        // Another 600 KiB frame does not fit beside it: that connection waits (muted), reading nothing more.
        await second.SendRawAsync([.. SizePrefix(declared), .. new byte[100]]);
        // The connection counts itself muted just after it joins the budget's queue: wait for both.
        await UntilAsync(() => budget.Waiting == 1 && kit.Metrics.MutedConnections == 1);
        Assert.Equal(1, budget.Waiting);
        Assert.Equal(declared, budget.InUseBytes);
        Assert.Equal(1, kit.Metrics.MutedConnections);

        // The first client goes away mid-frame: its reservation is released and the second gets its turn.
        await first.DisposeAsync();
        await UntilAsync(() => budget.Waiting == 0 && kit.Metrics.MutedConnections == 0);
        Assert.Equal(0, budget.Waiting);
        Assert.Equal(declared, budget.InUseBytes);
        Assert.Equal(0, kit.Metrics.MutedConnections);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_client_that_goes_away_while_its_connection_waits_for_request_budget_ends_it_at_once_and_leaves_the_queue(bool partlyReceived)
    {
        await using var kit = new GatewayTestKit();
        var budget = new RequestMemoryBudget(1024 * 1024);
        var held = 1024 * 1024 - 1_000;
        await using var holder = new PipeClient(kit.Registry(), kit.Options, kit.Metrics, budget);
        await using var waiter = new PipeClient(kit.Registry(), kit.Options, kit.Metrics, budget);
        // A partly received frame holds nearly all of the budget.
        await holder.SendRawAsync([.. SizePrefix(held), .. new byte[100]]);
        await UntilAsync(() => budget.InUseBytes == held);
        Assert.Equal(held, budget.InUseBytes);

        // The waiter's frame does not fit beside it: partly received (its size waits, without
        // keeping a place in the queue) or whole (it waits keeping its place).
        byte[] frame = partlyReceived
            ? [.. SizePrefix(600 * 1024), .. new byte[100]]
            : PipeClient.EncodeRequest(ApiKey.ApiVersions, 3, 1, LargeApiVersions(2_000));
        await waiter.SendRawAsync(frame);
        await UntilAsync(() => budget.Waiting == 1 && kit.Metrics.MutedConnections == 1);
        Assert.Equal(1, budget.Waiting);
        Assert.Equal(1, kit.Metrics.MutedConnections);

        // The waiting client goes away while nobody releases anything: its connection ends at once
        // (not once the budget has room) and leaves the queue; the holder's bytes stay held.
        await waiter.DisposeAsync();
        Assert.True(waiter.Connection.IsCompletedSuccessfully);
        Assert.Equal(0, budget.Waiting);
        Assert.Equal(held, budget.InUseBytes);
        Assert.Equal(0, kit.Metrics.MutedConnections);

        // The holder goes away mid-frame: what it reserved goes back.
        await holder.DisposeAsync();
        Assert.Equal(0, budget.InUseBytes);
    }

    /// <summary>The Kafka listener alone (Kestrel's socket transport and <see cref="KafkaConnectionHandler"/>) on a loopback port.</summary>
    private static async Task<(WebApplication App, int Port)> StartKafkaListenerAsync(GatewayTestKit kit, RequestMemoryBudget budget)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseConnectionHandler<KafkaConnectionHandler>()));
        builder.Services.AddSingleton(kit.Registry());
        builder.Services.AddSingleton(Microsoft.Extensions.Options.Options.Create(kit.Options));
        builder.Services.AddSingleton(kit.Metrics);
        builder.Services.AddSingleton(budget);
        builder.Services.AddSingleton(new ConnectionLimiter(kit.Options));
        builder.Services.AddSingleton(TimeProvider.System);
        var app = builder.Build();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return (app, new Uri(address).Port);
    }

    [Fact]
    public async Task Over_TCP_a_client_that_half_closes_while_its_connection_waits_for_request_budget_ends_it_at_once()
    {
        // What PipeClient.DisposeAsync stands for, checked on the real transport: a FIN ends the
        // receive loop of Kestrel's socket transport, which fires ConnectionClosed even though the
        // muted connection reads nothing; the connection then gives up its wait and ends.
        await using var kit = new GatewayTestKit();
        var budget = new RequestMemoryBudget(1024 * 1024);
        var (app, port) = await StartKafkaListenerAsync(kit, budget);
        await using var _ = app;
        using var holder = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var waiter = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await holder.ConnectAsync(IPAddress.Loopback, port);
        await waiter.ConnectAsync(IPAddress.Loopback, port);
        var declared = 600 * 1024;
        await holder.SendAsync(SizePrefix(declared).Concat(new byte[100]).ToArray());
        await UntilAsync(() => budget.InUseBytes == declared);
        await waiter.SendAsync(SizePrefix(declared).Concat(new byte[100]).ToArray());
        await UntilAsync(() => budget.Waiting == 1 && kit.Metrics.MutedConnections == 1);
        Assert.Equal(1, budget.Waiting);
        Assert.Equal(1, kit.Metrics.MutedConnections);
        Assert.Equal(2, kit.Metrics.OpenConnections);

        waiter.Shutdown(SocketShutdown.Send);
        await UntilAsync(() => kit.Metrics.OpenConnections == 1);
        Assert.Equal(1, kit.Metrics.OpenConnections);
        Assert.Equal(0, budget.Waiting);
        Assert.Equal(0, kit.Metrics.MutedConnections);
        Assert.Equal(declared, budget.InUseBytes);

        holder.Shutdown(SocketShutdown.Send);
        await UntilAsync(() => kit.Metrics.OpenConnections == 0);
        Assert.Equal(0, kit.Metrics.OpenConnections);
        Assert.Equal(0, budget.InUseBytes);
    }

    [Fact]
    public async Task A_frame_that_does_not_arrive_within_FrameReadTimeoutMs_closes_the_connection_and_frees_its_reservation()
    {
        await using var kit = new GatewayTestKit();
        var time = new FakeTimeProvider();
        var budget = new RequestMemoryBudget(1024 * 1024);
        await using var client = new PipeClient(kit.Registry(), kit.Options, kit.Metrics, budget, time);
        await client.SendRawAsync([.. SizePrefix(10_000), .. new byte[10]]);
        await UntilAsync(() => budget.InUseBytes == 10_000);

        var closed = client.IsClosedAsync();
        time.Advance(TimeSpan.FromMilliseconds(kit.Options.FrameReadTimeoutMs - 1_000));
        await Task.Delay(100);
        Assert.False(closed.IsCompleted); // not yet

        await AdvanceUntilAsync(time, closed, TimeSpan.FromSeconds(1));
        Assert.True(await closed);
        await UntilAsync(() => budget.InUseBytes == 0);
        Assert.Equal(0, budget.InUseBytes);
    }

    [Fact]
    public async Task A_connection_idle_for_ConnectionsMaxIdleMs_is_closed_and_one_in_use_is_not()
    {
        await using var kit = new GatewayTestKit();
        kit.Options.ConnectionsMaxIdleMs = 60_000;
        var time = new FakeTimeProvider();
        await using var client = new PipeClient(kit.Registry(), kit.Options, kit.Metrics, time: time);
        await client.SendAsync(ApiKey.ApiVersions, 0, 1, new ApiVersionsRequest());
        await client.ReadAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 0);

        // Activity before the limit restarts it.
        time.Advance(TimeSpan.FromSeconds(50));
        await client.SendAsync(ApiKey.ApiVersions, 0, 2, new ApiVersionsRequest());
        await client.ReadAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 0);
        time.Advance(TimeSpan.FromSeconds(50));
        var closed = client.IsClosedAsync();
        await Task.Delay(100);
        Assert.False(closed.IsCompleted);

        await AdvanceUntilAsync(time, closed, TimeSpan.FromSeconds(1));
        Assert.True(await closed);
    }

    private static ApiVersionsRequest LargeApiVersions(int nameChars)
        => new() { ClientSoftwareName = new string('a', nameChars), ClientSoftwareVersion = "1" };

    [Fact]
    public async Task Before_authentication_frames_above_MaxUnauthenticatedFrameBytes_close_the_connection()
    {
        await using var kit = new GatewayTestKit();
        kit.Options.MaxUnauthenticatedFrameBytes = 1024;
        var large = PipeClient.EncodeRequest(ApiKey.ApiVersions, 3, 2, LargeApiVersions(2_000));
        Assert.InRange(large.Length - 4, 1025, kit.Options.MaxFrameBytes);

        // Unauthenticated: small requests are answered, a frame above the pre-authentication limit closes.
        await using (var client = new PipeClient(kit.Registry(), kit.Options, kit.Metrics, authenticated: false))
        {
            Assert.False(client.Kafka!.IsAuthenticated);
            await client.SendAsync(ApiKey.ApiVersions, 3, 1, new ApiVersionsRequest { ClientSoftwareName = "unit", ClientSoftwareVersion = "1" });
            Assert.Equal(1, (await client.ReadAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 3)).CorrelationId);
            await client.SendRawAsync(large);
            Assert.True(await client.IsClosedAsync());
        }

        // Once authenticated, the full limit applies.
        await using (var client = new PipeClient(kit.Registry(), kit.Options, kit.Metrics, authenticated: false))
        {
            client.Kafka!.MarkAuthenticated();
            await client.SendRawAsync(large);
            Assert.Equal(2, (await client.ReadAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 3)).CorrelationId);
        }
    }

    /// <summary>DescribeCluster answered at once with a large response (its cluster id); optionally flagged ResponseMayBeLarge.</summary>
    private sealed class LargeResponseHandler(int responseChars, bool responseMayBeLarge) : ApiHandler<DescribeClusterRequest>
    {
        public int Started;
        public override ApiKey Key => ApiKey.DescribeCluster;
        public override short MinVersion => 0;
        public override short MaxVersion => 1;
        public override bool ResponseMayBeLarge => responseMayBeLarge;

        protected override Task<IKafkaResponse?> HandleAsync(DescribeClusterRequest request, RequestContext context, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Started);
            return Task.FromResult<IKafkaResponse?>(new DescribeClusterResponse { ClusterId = $"{context.CorrelationId}:" + new string('x', responseChars) });
        }
    }

    private static byte[] Pipelined(int count)
    {
        var bytes = new List<byte>();
        for (var id = 1; id <= count; id++) bytes.AddRange(PipeClient.EncodeRequest(ApiKey.DescribeCluster, 0, id, new DescribeClusterRequest()));
        return bytes.ToArray();
    }

    [Fact]
    public async Task A_client_that_does_not_read_mutes_its_connection_at_MaxQueuedResponseBytesPerConnection()
    {
        await using var kit = new GatewayTestKit();
        kit.Options.MaxQueuedResponseBytesPerConnection = 256 * 1024;
        // ~100 KiB each: the client's pipe (64 KiB before it pushes back) takes none whole.
        var handler = new LargeResponseHandler(100 * 1024, responseMayBeLarge: false);
        await using var client = new PipeClient(kit.Registry(handler), kit.Options, kit.Metrics);
        await client.SendRawAsync(Pipelined(kit.Options.MaxInFlightRequestsPerConnection));

        // Three responses reach the limit; the connection reads no further request.
        await UntilAsync(() => kit.Metrics.MutedConnections == 1);
        await Task.Delay(100); // give a (wrong) connection time to start more
        Assert.Equal(3, Volatile.Read(ref handler.Started));
        Assert.Equal(1, kit.Metrics.MutedConnections);
        Assert.InRange(kit.Metrics.QueuedResponseBytes, 3 * 100 * 1024, 3 * 101 * 1024);

        // The client reads: every response comes, in order, and nothing stays queued.
        for (var id = 1; id <= kit.Options.MaxInFlightRequestsPerConnection; id++)
        {
            var (correlationId, response) = await client.ReadAsync<DescribeClusterResponse>(ApiKey.DescribeCluster, 0);
            Assert.Equal(id, correlationId);
            Assert.StartsWith($"{id}:", response.ClusterId);
        }
        await UntilAsync(() => kit.Metrics.QueuedResponseBytes == 0);
        Assert.Equal(0, kit.Metrics.QueuedResponseBytes);
        Assert.Equal(0, kit.Metrics.MutedConnections);
    }

    [Fact]
    public async Task Pipelined_requests_with_large_responses_start_only_once_earlier_responses_are_sent()
    {
        await using var kit = new GatewayTestKit();
        var handler = new LargeResponseHandler(100 * 1024, responseMayBeLarge: true);
        await using var client = new PipeClient(kit.Registry(handler), kit.Options, kit.Metrics);
        await client.SendRawAsync(Pipelined(5));

        // The first response waits for the client to read: the next fetch-like request does not start.
        await UntilAsync(() => Volatile.Read(ref handler.Started) >= 1);
        await Task.Delay(150);
        Assert.Equal(1, Volatile.Read(ref handler.Started));
        Assert.InRange(kit.Metrics.QueuedResponseBytes, 100 * 1024, 101 * 1024);

        for (var id = 1; id <= 5; id++)
            Assert.Equal(id, (await client.ReadAsync<DescribeClusterResponse>(ApiKey.DescribeCluster, 0)).CorrelationId);
        Assert.Equal(5, Volatile.Read(ref handler.Started));
    }

    [Fact]
    public async Task A_non_reading_client_muted_by_its_responses_is_closed_when_idle()
    {
        await using var kit = new GatewayTestKit();
        kit.Options.MaxQueuedResponseBytesPerConnection = 150 * 1024;
        kit.Options.ConnectionsMaxIdleMs = 60_000;
        var time = new FakeTimeProvider();
        var handler = new LargeResponseHandler(100 * 1024, responseMayBeLarge: false);
        await using var client = new PipeClient(kit.Registry(handler), kit.Options, kit.Metrics, time: time);
        await client.SendRawAsync(Pipelined(4));
        await UntilAsync(() => kit.Metrics.MutedConnections == 1);

        var done = client.Connection;
        await AdvanceUntilAsync(time, done, TimeSpan.FromSeconds(5));
        Assert.True(done.IsCompleted);
        await done;
        Assert.Equal(0, kit.Metrics.QueuedResponseBytes);
        Assert.Equal(0, kit.Metrics.MutedConnections);
    }

    [Fact]
    public void The_connection_limiter_refuses_over_the_total_and_the_per_address_limits()
    {
        var limiter = new ConnectionLimiter(new StreamPlatform.Gateway.GatewayOptions { MaxConnections = 3, MaxConnectionsPerIp = 2 });
        var a = System.Net.IPAddress.Parse("10.0.0.1");
        var b = System.Net.IPAddress.Parse("10.0.0.2");
        Assert.Null(limiter.TryAdmit(a));
        Assert.Null(limiter.TryAdmit(a));
        Assert.Equal("max_connections_per_ip", limiter.TryAdmit(a));
        Assert.Null(limiter.TryAdmit(b));
        Assert.Equal("max_connections", limiter.TryAdmit(b));
        limiter.Release(a);
        Assert.Null(limiter.TryAdmit(a));
        Assert.Equal(3, limiter.Open);
    }
}
