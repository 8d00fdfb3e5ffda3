using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Protos.Grpc;

namespace StreamPlatform.UnitTests.Gateway;

public class GatewayMappingTests
{
    private static readonly GatewayInfo[] Three =
    [
        new() { NodeId = 10 }, new() { NodeId = 20 }, new() { NodeId = 30 },
    ];

    [Fact]
    public void Brokers_spread_over_gateways_by_id_modulo_count()
    {
        Assert.Equal([20, 30, 10, 20, 30], new[] { 1, 2, 3, 4, 5 }.Select(b => GatewayMapping.GatewayFor(Three, b)));
        Assert.Equal(-1, GatewayMapping.GatewayFor(Three, -1)); // no leader stays no leader
        Assert.Equal(-1, GatewayMapping.GatewayFor([], 1));
    }

    [Fact]
    public void Replica_lists_are_mapped_and_deduplicated_in_order()
    {
        Assert.Equal([20, 10], GatewayMapping.MapBrokers(Three, [1, 4, 3]));
        Assert.Equal([30], GatewayMapping.MapBrokers([new GatewayInfo { NodeId = 30 }], [1, 2, 3]));
        Assert.Empty(GatewayMapping.MapBrokers(Three, []));
    }

    [Fact]
    public void Controller_is_always_a_gateway()
    {
        Assert.Equal(10, GatewayMapping.ControllerFor(Three, 0));
        Assert.Equal(10, GatewayMapping.ControllerFor(Three, -1));
        Assert.Equal(-1, GatewayMapping.ControllerFor([], 0));
    }
}
