using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace StreamPlatform.ServiceDefaults;

/// <summary>
/// Names of the project's own meters and activity sources. Each service creates its own
/// "StreamPlatform.&lt;Service&gt;" meter and source; the wildcard registers them all.
/// </summary>
public static class Telemetry
{
    public const string MeterWildcard = "StreamPlatform.*";
    public const string ActivitySourceWildcard = "StreamPlatform.*";

    /// <summary>OTEL_EXPORTER_OTLP_TIMEOUT when not configured: short, so a stop is not held up by an unreachable collector.</summary>
    public const int OtlpExportTimeoutMsDefault = 1_000;

    /// <summary>The names of the HttpClients the OTLP exporter asks IHttpClientFactory for (one per signal).</summary>
    public static readonly IReadOnlyList<string> OtlpExporterHttpClientNames = ["OtlpTraceExporter", "OtlpMetricExporter", "OtlpLogExporter"];

    public static ActivitySource CreateActivitySource(string service) => new($"StreamPlatform.{service}");

    public static Meter CreateMeter(string service) => new($"StreamPlatform.{service}");
}
