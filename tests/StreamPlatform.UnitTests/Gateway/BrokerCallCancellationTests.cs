using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Protos.Grpc.Clients;
using Brk = StreamPlatform.Protos.Grpc.Broker;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// A broker call the gateway cancels (a dropped long poll, a client that went away) right after
/// the broker's response headers arrived. Grpc.Net.Client then reads the body of a response it
/// has just disposed and reports StatusCode.Internal "Error starting gRPC call.
/// InvalidOperationException: The stream was already consumed. It cannot be read again." (seen
/// under load as "Fetch call to broker 3 failed"). It is a cancellation, and must look like one:
/// not a broker failure, not a warning.
/// </summary>
public sealed class BrokerCallCancellationTests : IAsyncLifetime
{
    private InProcessCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await InProcessCluster.StartAsync("sp-gw-cancel-");

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task A_fetch_disposed_as_its_response_headers_arrive_fails_as_cancelled_and_is_logged_at_debug()
    {
        var broker = _cluster.Gateway.Services.GetRequiredService<MetadataWatcher>().Current.BrokersById[1];
        using var pool = new BrokerClientPool();
        var log = new ListLogger();
        var caller = new BrokerCaller(pool, TimeProvider.System, log, "Fetch");

        var call = caller.Start(broker, BrokerFetchResponse.Method, new Brk.FetchRequest { MaxBytes = 1024 }, 10_000, CancellationToken.None);
        Assert.NotNull(call);
        // Disposed inline the moment the headers are there: the window a concurrent dispose hits under load.
        _ = call.ResponseHeadersAsync.ContinueWith(_ => call.Dispose(), CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync);
        Assert.True(ex.StatusCode == StatusCode.Cancelled, $"{ex.StatusCode}: {ex.Status.Detail}");
        caller.LogFailure(broker, ex);
        Assert.Empty(log.AtLeast(Microsoft.Extensions.Logging.LogLevel.Information));
        Assert.NotEmpty(log.Entries);
    }

    [Fact]
    public async Task A_unary_call_whose_token_is_cancelled_as_its_response_headers_arrive_fails_as_cancelled()
    {
        var broker = _cluster.Gateway.Services.GetRequiredService<MetadataWatcher>().Current.BrokersById[1];
        using var pool = new BrokerClientPool();
        var caller = new BrokerCaller(pool, TimeProvider.System, new ListLogger(), "ListOffsets");
        using var clientGone = new CancellationTokenSource();

        var ex = await Assert.ThrowsAsync<RpcException>(() => caller.CallAsync(broker, 10_000, (client, deadline, ct) =>
        {
            var call = client.ListOffsetsAsync(new Brk.ListOffsetsRequest(), deadline: deadline, cancellationToken: ct);
            _ = call.ResponseHeadersAsync.ContinueWith(_ => clientGone.Cancel(), CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            return call;
        }, clientGone.Token));
        Assert.True(ex.StatusCode == StatusCode.Cancelled, $"{ex.StatusCode}: {ex.Status.Detail}");
    }
}
