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

    public static ActivitySource CreateActivitySource(string service) => new($"StreamPlatform.{service}");

    public static Meter CreateMeter(string service) => new($"StreamPlatform.{service}");
}
