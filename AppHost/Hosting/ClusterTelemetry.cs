namespace StreamPlatform.AppHost.Hosting;

/// <summary>
/// Where the services send traces, metrics and logs. Aspire points every resource at its
/// dashboard's OTLP endpoint; an explicit --otlp-endpoint replaces that; with no dashboard and no
/// endpoint the OTLP variables are removed, because a service exporting to an address nobody
/// listens on spends its shutdown retrying (measured: ~10 s per service, and DCP kills it after 6 s).
/// </summary>
public sealed record ClusterTelemetry(bool DashboardEnabled, string? OtlpEndpoint)
{
    /// <summary>
    /// Export timeout of every OTLP exporter. Short, so that a stop (Ctrl+C, SIGTERM) is not held up
    /// by a slow or gone collector: the last batch is dropped after this long instead.
    /// </summary>
    public const int OtlpExportTimeoutMs = 1000;

    /// <summary>
    /// How often metrics, spans and logs are exported to the dashboard. The OpenTelemetry SDK's
    /// defaults (60 s for metrics, 5 s for spans) are for a collector; a dashboard someone is
    /// looking at should move within a second or so (Aspire's own development setting). Applied only
    /// when the dashboard is the destination and only where the variable is not already set.
    /// </summary>
    public const int DashboardExportIntervalMs = 1000;

    private static readonly string[] DashboardIntervalVariables =
        ["OTEL_METRIC_EXPORT_INTERVAL", "OTEL_BSP_SCHEDULE_DELAY", "OTEL_BLRP_SCHEDULE_DELAY"];

    public void Apply(IDictionary<string, object> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        if (!string.IsNullOrWhiteSpace(OtlpEndpoint))
        {
            environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = OtlpEndpoint;
            // The dashboard's API key header means nothing to another collector.
            environment.Remove("OTEL_EXPORTER_OTLP_HEADERS");
            environment.Remove("OTEL_EXPORTER_OTLP_PROTOCOL");
        }
        else if (!DashboardEnabled)
        {
            foreach (var name in environment.Keys.Where(k => k.StartsWith("OTEL_EXPORTER_OTLP_", StringComparison.Ordinal)).ToList())
                environment.Remove(name);
            return;
        }
        else
        {
            var interval = DashboardExportIntervalMs.ToString(System.Globalization.CultureInfo.InvariantCulture);
            foreach (var name in DashboardIntervalVariables)
                environment.TryAdd(name, interval);
        }
        environment["OTEL_EXPORTER_OTLP_TIMEOUT"] = OtlpExportTimeoutMs.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }
}
