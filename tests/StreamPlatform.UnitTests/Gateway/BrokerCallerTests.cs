using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging.Abstractions;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Protos.Grpc;
using Brk = StreamPlatform.Protos.Grpc.Broker;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// A channel disposed under a starting call (BrokerClientPool.Refresh dropping a broker that left
/// the metadata) must fail like an unreachable broker, not with an ObjectDisposedException that
/// would turn the whole Kafka request into UNKNOWN_SERVER_ERROR.
/// </summary>
public sealed class BrokerCallerTests
{
    private static readonly BrokerInfo Broker = new() { BrokerId = 1, GrpcEndpoint = "http://127.0.0.1:9", BrokerEpoch = 1 };

    /// <summary>A pool whose channel for <see cref="Broker"/> exists (as after an earlier call) and is then disposed, as Refresh does.</summary>
    private static BrokerClientPool PoolWithDisposedChannel()
    {
        GrpcChannel? made = null;
        var pool = new BrokerClientPool(uri => made = GrpcChannel.ForAddress(uri));
        Assert.NotNull(pool.GetInvoker(Broker));
        made!.Dispose();
        return pool;
    }

    [Fact]
    public async Task A_unary_call_on_a_disposed_channel_fails_as_unavailable()
    {
        using var pool = PoolWithDisposedChannel();
        var caller = new BrokerCaller(pool, TimeProvider.System, NullLogger.Instance, "Test");
        var ex = await Assert.ThrowsAsync<RpcException>(() => caller.CallAsync(Broker, 1000,
            (client, deadline, ct) => client.ListOffsetsAsync(new Brk.ListOffsetsRequest(), deadline: deadline, cancellationToken: ct), CancellationToken.None));
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Equal(StreamPlatform.Protos.Kafka.Messages.ErrorCode.NotLeaderOrFollower, BrokerCaller.ErrorFor(ex));
    }

    [Fact]
    public void A_started_call_on_a_disposed_channel_is_null_like_an_unusable_endpoint()
    {
        using var pool = PoolWithDisposedChannel();
        var caller = new BrokerCaller(pool, TimeProvider.System, NullLogger.Instance, "Test");
        Assert.Null(caller.Start(Broker, BrokerFetchResponse.Method, new Brk.FetchRequest(), 1000, CancellationToken.None));
    }
}
