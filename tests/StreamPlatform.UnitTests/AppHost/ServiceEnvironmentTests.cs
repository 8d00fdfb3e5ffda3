using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.UnitTests.AppHost;

/// <summary>The environment of each role, as docs/ARCHITECTURE.md specifies it.</summary>
public sealed class ServiceEnvironmentTests
{
    private static readonly HostingContext Local = HostingContext.Local("/data/sp");

    private static ClusterTopology Topology(Action<ClusterOptions>? configure = null)
    {
        var options = new ClusterOptions { DataDir = "/data/sp" };
        configure?.Invoke(options);
        return ClusterTopology.Create(options);
    }

    [Fact]
    public void ControllerEnvironmentIsExactlyTheDocumentedSet()
    {
        var t = Topology(o =>
        {
            o.ClusterId = "c1";
            o.BrokerConfigs["num.partitions"] = "3";
        });
        var env = ServiceEnvironment.Build(t, t.Controller, Local);
        Assert.Equal(new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Development",
            ["DOTNET_ENVIRONMENT"] = "Development",
            ["OTEL_SERVICE_NAME"] = "controller",
            ["OTEL_RESOURCE_ATTRIBUTES"] = "service.instance.id=controller-1",
            ["Kestrel__Endpoints__http__Url"] = "http://127.0.0.1:7010",
            ["Kestrel__Endpoints__grpc__Url"] = "http://127.0.0.1:7011",
            ["Kestrel__Endpoints__grpc__Protocols"] = "Http2",
            ["Controller__NodeId"] = "1",
            ["Controller__DataDir"] = "/data/sp/controller-1",
            ["Controller__ClusterId"] = "c1",
            ["Controller__BrokerConfigs__num.partitions"] = "3",
            // Kafka's default 3 for three brokers (see the next test).
            ["Controller__BrokerConfigs__offsets.topic.replication.factor"] = "3",
            ["Controller__BrokerConfigs__transaction.state.log.replication.factor"] = "3",
            ["Controller__BrokerConfigs__transaction.state.log.min.isr"] = "2",
        }, env.ToDictionary());
    }

    [Theory]
    [InlineData(1, null, "1")]
    [InlineData(2, null, "2")]
    [InlineData(5, null, "3")]
    [InlineData(1, "1", "1")]
    [InlineData(5, "2", "2")]
    public void OffsetsTopicReplicationFactorIsMinOfThreeAndBrokersUnlessSet(int brokers, string? set, string expected)
    {
        var t = Topology(o =>
        {
            o.Brokers = brokers;
            if (set is not null) o.BrokerConfigs["offsets.topic.replication.factor"] = set;
        });
        var env = ServiceEnvironment.Build(t, t.Controller, Local).ToDictionary();
        Assert.Equal(expected, env["Controller__BrokerConfigs__offsets.topic.replication.factor"]);
    }

    [Theory]
    [InlineData(1, null, null, "1", "1")]
    [InlineData(2, null, null, "2", "2")]
    [InlineData(3, null, null, "3", "2")]
    [InlineData(5, null, null, "3", "2")]
    [InlineData(5, "1", null, "1", "1")]
    [InlineData(5, null, "3", "3", "3")]
    [InlineData(1, "2", null, "2", "2")]
    public void TransactionStateTopicReplicationFactorAndMinIsrFollowTheBrokerCountUnlessSet(int brokers, string? setRf, string? setMinIsr,
        string expectedRf, string expectedMinIsr)
    {
        var t = Topology(o =>
        {
            o.Brokers = brokers;
            if (setRf is not null) o.BrokerConfigs["transaction.state.log.replication.factor"] = setRf;
            if (setMinIsr is not null) o.BrokerConfigs["transaction.state.log.min.isr"] = setMinIsr;
        });
        var env = ServiceEnvironment.Build(t, t.Controller, Local).ToDictionary();
        Assert.Equal(expectedRf, env["Controller__BrokerConfigs__transaction.state.log.replication.factor"]);
        Assert.Equal(expectedMinIsr, env["Controller__BrokerConfigs__transaction.state.log.min.isr"]);
    }

    [Fact]
    public void BrokerEnvironmentIsExactlyTheDocumentedSet()
    {
        var t = Topology(o => o.OtlpEndpoint = "http://127.0.0.1:4317");
        var env = ServiceEnvironment.Build(t, t["broker-2"], Local);
        Assert.Equal(new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Development",
            ["DOTNET_ENVIRONMENT"] = "Development",
            ["OTEL_SERVICE_NAME"] = "broker",
            ["OTEL_RESOURCE_ATTRIBUTES"] = "service.instance.id=broker-2",
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:4317",
            ["Kestrel__Endpoints__http__Url"] = "http://127.0.0.1:7120",
            ["Kestrel__Endpoints__grpc__Url"] = "http://127.0.0.1:7121",
            ["Kestrel__Endpoints__grpc__Protocols"] = "Http2",
            ["services__controller__grpc__0"] = "http://127.0.0.1:7011",
            ["Broker__BrokerId"] = "2",
            ["Broker__DataDir"] = "/data/sp/broker-2",
            ["Broker__AdvertisedGrpcEndpoint"] = "http://127.0.0.1:7121",
        }, env.ToDictionary());
    }

    [Fact]
    public void GatewayEnvironmentIsExactlyTheDocumentedSet()
    {
        var t = Topology(o => o.Gateways = 2);
        var env = ServiceEnvironment.Build(t, t["gateway-2"], Local);
        Assert.Equal(new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Development",
            ["DOTNET_ENVIRONMENT"] = "Development",
            ["OTEL_SERVICE_NAME"] = "gateway",
            ["OTEL_RESOURCE_ATTRIBUTES"] = "service.instance.id=gateway-2",
            ["Kestrel__Endpoints__http__Url"] = "http://127.0.0.1:7210",
            ["Kestrel__Endpoints__grpc__Url"] = "http://127.0.0.1:7211",
            ["Kestrel__Endpoints__grpc__Protocols"] = "Http2",
            ["services__controller__grpc__0"] = "http://127.0.0.1:7011",
            ["Gateway__NodeId"] = "2",
            ["Gateway__KafkaListenAddress"] = "127.0.0.1",
            ["Gateway__KafkaPort"] = "9093",
            ["Gateway__AdvertisedHost"] = "127.0.0.1",
        }, env.ToDictionary());
    }

    [Fact]
    public void ExtraSettingsWinPerResourceOverPerKind()
    {
        var t = Topology(o =>
        {
            o.WithEnvironment(ServiceKind.Broker, "Broker__Rack", "a");
            o.WithEnvironment("broker-3", "Broker__Rack", "c");
            o.EnvironmentName = "Testing";
        });
        Assert.Equal("a", ServiceEnvironment.Build(t, t["broker-1"], Local)["Broker__Rack"]);
        Assert.Equal("c", ServiceEnvironment.Build(t, t["broker-3"], Local)["Broker__Rack"]);
        Assert.False(ServiceEnvironment.Build(t, t.Controller, Local).ContainsKey("Broker__Rack"));
        Assert.Equal("Testing", ServiceEnvironment.Build(t, t.Controller, Local)["ASPNETCORE_ENVIRONMENT"]);
    }

    [Fact]
    public void AnotherHostingContextChangesAddressesNotTheModel()
    {
        // What a Kubernetes generator would do: bind everywhere, advertise service DNS names.
        var t = Topology();
        var k8s = new HostingContext("0.0.0.0", r => r.Name, _ => "/var/lib/streamplatform");
        var env = ServiceEnvironment.Build(t, t["broker-1"], k8s);
        Assert.Equal("http://0.0.0.0:7110", env["Kestrel__Endpoints__http__Url"]);
        // The controller resource is controller-1; services find it under the discovery name "controller".
        Assert.Equal("http://controller-1:7011", env["services__controller__grpc__0"]);
        Assert.Equal("http://broker-1:7111", env["Broker__AdvertisedGrpcEndpoint"]);
        Assert.Equal("/var/lib/streamplatform", env["Broker__DataDir"]);
    }
}
