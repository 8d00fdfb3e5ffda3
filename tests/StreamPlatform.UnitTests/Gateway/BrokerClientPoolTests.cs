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
    public void A_broker_that_registered_again_gets_a_fresh_channel_and_the_others_keep_theirs()
    {
        using var pool = new BrokerClientPool();
        var b1 = new BrokerInfo { BrokerId = 1, GrpcEndpoint = "http://127.0.0.1:19111", BrokerEpoch = 3 };
        var b2 = new BrokerInfo { BrokerId = 2, GrpcEndpoint = "http://127.0.0.1:19121", BrokerEpoch = 4 };
        var c1 = pool.GetClient(b1);
        var c2 = pool.GetClient(b2);
        var s2 = pool.GetProduceStream(b2);

        // Broker 1 is fenced: nothing changes yet (the same process may come back).
        pool.Refresh(new ClusterMetadata(new MetadataSnapshot { MetadataEpoch = 5, Brokers = { new BrokerInfo(b1) { Fenced = true }, b2 } }));
        Assert.Same(c1, pool.GetClient(b1));

        // Broker 1 restarted and registered again (its registration record's epoch): the old
        // channel, stuck in its reconnect backoff, is replaced; broker 2's stream is untouched.
        var b1Again = new BrokerInfo(b1) { BrokerEpoch = 6 };
        pool.Refresh(new ClusterMetadata(new MetadataSnapshot { MetadataEpoch = 6, Brokers = { b1Again, b2 } }));
        Assert.NotSame(c1, pool.GetClient(b1Again));
        Assert.Same(c2, pool.GetClient(b2));
        Assert.Same(s2, pool.GetProduceStream(b2));
        Assert.Equal(2, pool.ChannelCount);
    }

    [Fact]
    public void Unusable_endpoint_gives_no_client()
    {
        using var pool = new BrokerClientPool();
        Assert.Null(pool.GetClient(new BrokerInfo { BrokerId = 1, GrpcEndpoint = "not a uri" }));
        Assert.Equal(0, pool.ChannelCount);
    }
}
