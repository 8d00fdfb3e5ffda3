using StreamPlatform.AppHost.Cli;
using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.UnitTests.AppHost;

public sealed class AppHostCommandLineTests
{
    private const string DefaultDataDir = "/repo/.data";

    private static AppHostArguments Parse(params string[] args)
    {
        var parsed = AppHostCommandLine.Parse(args, DefaultDataDir, out var error);
        Assert.Null(error);
        return Assert.IsType<AppHostArguments>(parsed);
    }

    private static string ParseError(params string[] args)
    {
        Assert.Null(AppHostCommandLine.Parse(args, DefaultDataDir, out var error));
        return Assert.IsType<string>(error);
    }

    [Fact]
    public void NoArgumentsGiveTheDefaultCluster()
    {
        var a = Parse();
        Assert.False(a.ShowHelp);
        Assert.False(a.Clean);
        Assert.Equal(DefaultDataDir, a.Cluster.DataDir);
        Assert.Equal(3, a.Cluster.Brokers);
        Assert.Equal(1, a.Cluster.Gateways);
        Assert.Null(a.Cluster.OtlpEndpoint);
        Assert.True(a.Dashboard);
        Assert.True(a.Cluster.RestartCrashed);
        Assert.Equal(18888, a.DashboardPort);
        Assert.Equal(18889, a.DashboardOtlpPort);
        Assert.Empty(a.AspireArgs);
        var t = ClusterTopology.Create(a.Cluster);
        Assert.Equal("127.0.0.1:9092", t.BootstrapServers);
        Assert.Equal(7010, t.Controller.GetEndpoint("http").Port);
    }

    [Fact]
    public void EveryOptionIsApplied()
    {
        var a = Parse("--data-dir", "/tmp/x", "--clean", "--brokers=5", "--gateways", "2", "--kafka-port", "19092",
            "--base-port=18000", "--port", "broker-2.grpc=18999", "--otlp-endpoint", "http://127.0.0.1:4317",
            "--broker-config", "num.partitions=3", "--environment", "Staging", "--health-timeout", "30", "--no-dashboard", "--no-restart",
            "--dashboard-port", "19999", "--dashboard-otlp-port=19998", "--", "--Logging:LogLevel:Default=Debug", "--brokers");
        Assert.True(a.Clean);
        Assert.False(a.Dashboard);
        Assert.False(a.Cluster.RestartCrashed);
        Assert.Equal(19999, a.DashboardPort);
        Assert.Equal(19998, a.DashboardOtlpPort);
        // Everything after "--" is Aspire's, even what looks like our own option.
        Assert.Equal(["--Logging:LogLevel:Default=Debug", "--brokers"], a.AspireArgs);
        Assert.Equal("/tmp/x", a.Cluster.DataDir);
        Assert.Equal(5, a.Cluster.Brokers);
        Assert.Equal(2, a.Cluster.Gateways);
        Assert.Equal("http://127.0.0.1:4317", a.Cluster.OtlpEndpoint);
        Assert.Equal("3", a.Cluster.BrokerConfigs["num.partitions"]);
        Assert.Equal("Staging", a.Cluster.EnvironmentName);
        Assert.Equal(TimeSpan.FromSeconds(30), a.HealthTimeout);
        var t = ClusterTopology.Create(a.Cluster);
        Assert.Equal(18999, t["broker-2"].GetEndpoint("grpc").Port);
        Assert.Equal(18110, t["broker-1"].GetEndpoint("http").Port);
        Assert.Equal("127.0.0.1:19092,127.0.0.1:19093", t.BootstrapServers);
    }

    [Fact]
    public void DynamicPortsPickFreePortsForTheClusterAndTheDashboard()
    {
        var a = Parse("--dynamic-ports", "--port", "gateway-1.kafka=19092");
        Assert.True(a.Cluster.Ports.IsDynamic);
        Assert.Null(a.DashboardPort);
        Assert.Null(a.DashboardOtlpPort);
        var t = ClusterTopology.Create(a.Cluster);
        Assert.Equal("127.0.0.1:19092", t.BootstrapServers);
        Assert.NotEqual(7010, t.Controller.GetEndpoint("http").Port);
    }

    [Fact]
    public void OtlpEndpointDefaultsToTheEnvironmentVariable()
    {
        var parsed = AppHostCommandLine.Parse([], DefaultDataDir, out _, "http://collector:4317");
        Assert.Equal("http://collector:4317", parsed!.Cluster.OtlpEndpoint);
    }

    [Theory]
    [InlineData("-h")]
    [InlineData("--help")]
    public void HelpIsRecognised(string arg) => Assert.True(Parse(arg).ShowHelp);

    [Theory]
    [InlineData("Unknown option", "--bogus")]
    [InlineData("--brokers needs", "--brokers", "0")]
    [InlineData("--brokers needs", "--brokers", "ten")]
    [InlineData("--brokers needs", "--brokers")]
    [InlineData("--gateways needs", "--gateways", "10")]
    [InlineData("--kafka-port needs", "--kafka-port", "70000")]
    [InlineData("--base-port needs", "--base-port", "65400")]
    [InlineData("--port needs", "--port", "broker-2=7000")]
    [InlineData("--port needs", "--port", "broker-2.grpc=x")]
    [InlineData("--otlp-endpoint needs", "--otlp-endpoint", "collector:4317")]
    [InlineData("--broker-config needs", "--broker-config", "num.partitions")]
    [InlineData("--data-dir needs", "--data-dir")]
    [InlineData("--clean takes no value", "--clean=yes")]
    [InlineData("--no-dashboard takes no value", "--no-dashboard=false")]
    [InlineData("--dynamic-ports takes no value", "--dynamic-ports=1")]
    [InlineData("--dashboard-port needs", "--dashboard-port", "0")]
    [InlineData("--dashboard-otlp-port needs", "--dashboard-otlp-port")]
    [InlineData("must differ", "--dashboard-port", "20000", "--dashboard-otlp-port", "20000")]
    [InlineData("cannot be combined", "--dynamic-ports", "--base-port", "8000")]
    [InlineData("takes no value", "--no-restart=yes")]
    [InlineData("--health-timeout needs", "--health-timeout", "-1")]
    public void BadArgumentsAreReported(string expected, params string[] args) =>
        Assert.Contains(expected, ParseError(args));

    [Fact]
    public void UsageMentionsEveryOptionAndTheDefaultDataDir()
    {
        var usage = AppHostCommandLine.Usage(DefaultDataDir);
        foreach (var option in new[] { "--data-dir", "--clean", "--brokers", "--gateways", "--kafka-port", "--base-port",
                     "--port", "--otlp-endpoint", "--broker-config", "--environment", "--health-timeout", "--dynamic-ports",
                     "--no-dashboard", "--dashboard-port", "--dashboard-otlp-port", "--no-restart", "--help" })
            Assert.Contains(option, usage);
        Assert.Contains(DefaultDataDir, usage);
        Assert.Contains("18888", usage);
    }
}
