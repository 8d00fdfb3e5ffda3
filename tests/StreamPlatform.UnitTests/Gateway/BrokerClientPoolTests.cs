using StreamPlatform.Gateway.Routing;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;

namespace StreamPlatform.UnitTests.Gateway;

public class BrokerClientPoolTests
{
    [Fact]
    public void One_channel_per_endpoint_and_refresh_drops_endpoints_no_broker_advertises()
    {
        using var pool = new BrokerClientPool();
        var b1 = new BrokerInfo { BrokerId = 1, GrpcEndpoint = "http://127.0.0.1:19111" };
        var b2 = new BrokerInfo { BrokerId = 2, GrpcEndpoint = "http://127.0.0.1:19121" };
        var first = pool.GetClient(b1);
        Assert.NotNull(first);
        Assert.Same(first, pool.GetClient(b1));
        Assert.NotNull(pool.GetClient(b2));
        Assert.Equal(2, pool.ChannelCount);

        var snapshot = new MetadataSnapshot { MetadataEpoch = 2, Brokers = { b2 } };
        pool.Refresh(new ClusterMetadata(snapshot));
        Assert.Equal(1, pool.ChannelCount);
        Assert.NotSame(first, pool.GetClient(b1)); // a new channel if it comes back
    }

    [Fact]
    public void Unusable_endpoint_gives_no_client()
    {
        using var pool = new BrokerClientPool();
        Assert.Null(pool.GetClient(new BrokerInfo { BrokerId = 1, GrpcEndpoint = "not a uri" }));
        Assert.Equal(0, pool.ChannelCount);
    }
}
