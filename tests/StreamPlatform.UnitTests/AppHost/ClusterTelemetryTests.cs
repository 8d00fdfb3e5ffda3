using StreamPlatform.AppHost.Hosting;

namespace StreamPlatform.UnitTests.AppHost;

/// <summary>Where each service's OTLP exporter points, and how often it exports, for each way the AppHost runs.</summary>
public sealed class ClusterTelemetryTests
{
    /// <summary>What Aspire puts in a project resource's environment when the dashboard is on.</summary>
    private static Dictionary<string, object> AspireEnvironment() => new()
    {
        ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:18889",
        ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc",
        ["OTEL_EXPORTER_OTLP_HEADERS"] = "x-otlp-api-key=secret",
        ["OTEL_SERVICE_NAME"] = "broker-1",
    };

    [Fact]
    public void TheDashboardGetsExportsEverySecondAndAShortTimeout()
    {
        var env = AspireEnvironment();
        new ClusterTelemetry(DashboardEnabled: true, OtlpEndpoint: null).Apply(env);
        Assert.Equal("http://127.0.0.1:18889", env["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        Assert.Equal("x-otlp-api-key=secret", env["OTEL_EXPORTER_OTLP_HEADERS"]);
        Assert.Equal("1000", env["OTEL_EXPORTER_OTLP_TIMEOUT"]);
        Assert.Equal("1000", env["OTEL_METRIC_EXPORT_INTERVAL"]);
        Assert.Equal("1000", env["OTEL_BSP_SCHEDULE_DELAY"]);
        Assert.Equal("1000", env["OTEL_BLRP_SCHEDULE_DELAY"]);
    }

    [Fact]
    public void AnIntervalAlreadySetIsKept()
    {
        var env = AspireEnvironment();
        env["OTEL_METRIC_EXPORT_INTERVAL"] = "15000";
        new ClusterTelemetry(DashboardEnabled: true, OtlpEndpoint: null).Apply(env);
        Assert.Equal("15000", env["OTEL_METRIC_EXPORT_INTERVAL"]);
        Assert.Equal("1000", env["OTEL_BSP_SCHEDULE_DELAY"]);
    }

    [Fact]
    public void AnExplicitCollectorReplacesTheDashboardWithTheSdkDefaultIntervals()
    {
        var env = AspireEnvironment();
        new ClusterTelemetry(DashboardEnabled: true, OtlpEndpoint: "http://collector:4317").Apply(env);
        Assert.Equal("http://collector:4317", env["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        Assert.False(env.ContainsKey("OTEL_EXPORTER_OTLP_HEADERS"));
        Assert.False(env.ContainsKey("OTEL_EXPORTER_OTLP_PROTOCOL"));
        Assert.False(env.ContainsKey("OTEL_METRIC_EXPORT_INTERVAL"));
        Assert.Equal("1000", env["OTEL_EXPORTER_OTLP_TIMEOUT"]);
    }

    [Fact]
    public void NoDashboardAndNoCollectorMeansNoExporter()
    {
        var env = AspireEnvironment();
        new ClusterTelemetry(DashboardEnabled: false, OtlpEndpoint: null).Apply(env);
        Assert.DoesNotContain(env.Keys, k => k.StartsWith("OTEL_EXPORTER_OTLP_", StringComparison.Ordinal));
        Assert.False(env.ContainsKey("OTEL_METRIC_EXPORT_INTERVAL"));
        Assert.Equal("broker-1", env["OTEL_SERVICE_NAME"]);
    }
}
