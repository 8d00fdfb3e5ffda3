using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.UnitTests.AppHost;

public sealed class ClusterTopologyTests
{
    private static ClusterTopology Default(Action<ClusterOptions>? configure = null)
    {
        var options = new ClusterOptions { DataDir = "/data/sp" };
        configure?.Invoke(options);
        return ClusterTopology.Create(options);
    }

    private static int Port(ClusterTopology t, string name, string endpoint) => t[name].GetEndpoint(endpoint).Port;

    [Fact]
    public void DefaultLayoutIsOneControllerThreeBrokersOneGatewayOnTheDocumentedPorts()
    {
        var t = Default();
        Assert.Equal(["controller-1", "broker-1", "broker-2", "broker-3", "gateway-1"], t.Resources.Select(r => r.Name));
        Assert.Equal(7010, Port(t, "controller-1", "http"));
        Assert.Equal(7011, Port(t, "controller-1", "grpc"));
        Assert.Equal(7110, Port(t, "broker-1", "http"));
        Assert.Equal(7111, Port(t, "broker-1", "grpc"));
        Assert.Equal(7130, Port(t, "broker-3", "http"));
        Assert.Equal(7131, Port(t, "broker-3", "grpc"));
        Assert.Equal(9092, Port(t, "gateway-1", "kafka"));
        Assert.Equal(7200, Port(t, "gateway-1", "http"));
        Assert.Equal(7201, Port(t, "gateway-1", "grpc"));
        Assert.Equal("127.0.0.1:9092", t.BootstrapServers);
    }

    [Fact]
    public void BasePortAndKafkaPortShiftTheLayoutAndEveryGatewayIsABootstrapServer()
    {
        var t = Default(o =>
        {
            o.Gateways = 2;
            o.Ports = PortLayout.Fixed(18000, 18092);
        });
        Assert.Equal(18010, Port(t, "controller-1", "http"));
        Assert.Equal(18121, Port(t, "broker-2", "grpc"));
        Assert.Equal(18210, Port(t, "gateway-2", "http"));
        Assert.Equal(18211, Port(t, "gateway-2", "grpc"));
        Assert.Equal(18093, Port(t, "gateway-2", "kafka"));
        Assert.Equal("127.0.0.1:18092,127.0.0.1:18093", t.BootstrapServers);
    }

    [Fact]
    public void DynamicPortsAreDistinct()
    {
        var t = Default(o =>
        {
            o.Brokers = 9;
            o.Gateways = 3;
            o.Ports = PortLayout.DynamicPorts;
        });
        var ports = t.Resources.SelectMany(r => r.Endpoints).Select(e => e.Port).ToList();
        Assert.Equal(2 + 9 * 2 + 3 * 3, ports.Count);
        Assert.Equal(ports.Count, ports.Distinct().Count());
        Assert.All(ports, p => Assert.InRange(p, 1, 65535));
    }

    [Fact]
    public void BrokersAndGatewaysReferenceTheControllersGrpcEndpoint()
    {
        var t = Default();
        Assert.Empty(t.Controller.References);
        Assert.All(t.Brokers.Concat(t.Gateways), r => Assert.Equal(new ResourceReference("controller-1", "grpc"), Assert.Single(r.References)));
        Assert.True(t.Controller.HasData);
        Assert.All(t.Brokers, b => Assert.True(b.HasData));
        Assert.All(t.Gateways, g => Assert.False(g.HasData));
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(10, 1)]
    [InlineData(3, 0)]
    [InlineData(3, 10)]
    public void CountsOutsideTheLimitsAreRejected(int brokers, int gateways)
    {
        var e = Assert.Throws<ArgumentException>(() => Default(o =>
        {
            o.Brokers = brokers;
            o.Gateways = gateways;
        }));
        Assert.Contains("count must be", e.Message);
    }

    [Fact]
    public void APortOverrideThatCollidesIsRejectedNamingBothUsers()
    {
        var e = Assert.Throws<ArgumentException>(() => Default(o =>
            o.Ports = PortLayout.Fixed(overrides: new Dictionary<(string, string), int> { [("broker-2", "grpc")] = 7111 })));
        Assert.Contains("7111", e.Message);
        Assert.Contains("broker-1.grpc", e.Message);
        Assert.Contains("broker-2.grpc", e.Message);
    }

    [Fact]
    public void OverridesAndExtraEnvironmentForUnknownServicesAreRejected()
    {
        Assert.Throws<ArgumentException>(() => Default(o =>
            o.Ports = PortLayout.Fixed(overrides: new Dictionary<(string, string), int> { [("broker-7", "grpc")] = 7500 })));
        Assert.Throws<ArgumentException>(() => Default(o =>
            o.Ports = PortLayout.Fixed(overrides: new Dictionary<(string, string), int> { [("broker-1", "kafka")] = 7500 })));
        Assert.Throws<ArgumentException>(() => Default(o => o.WithEnvironment("gateway-2", "X", "1")));
        Assert.Throws<ArgumentException>(() => Default(o => o.DataDir = " "));
        Assert.Throws<ArgumentException>(() => Default(o => o.OtlpEndpoint = "not a url"));
    }

    [Fact]
    public void PortsOutsideTheValidRangeAreRejected()
    {
        Assert.Throws<ArgumentException>(() => Default(o => o.Ports = PortLayout.Fixed(65400)));
    }
}
