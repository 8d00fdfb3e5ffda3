using System.Globalization;
using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.Faults;

/// <summary>
/// Cluster settings for fault runs (CI test and tool alike): a dead broker is noticed and a
/// lagging follower dropped from the ISR in seconds rather than Kafka's production defaults,
/// so a round takes seconds. The guarantees under test do not depend on these timings.
/// </summary>
public static class FaultClusterSettings
{
    /// <summary>Kafka's replica.lag.time.max.ms (default 30000): a follower this far behind leaves the ISR.</summary>
    public const int ReplicaLagTimeMaxMs = 5_000;

    /// <summary>The controller fences a broker silent this long (Kafka's broker.session.timeout.ms, 9000 there, 6000 here).</summary>
    public const int BrokerSessionTimeoutMs = 4_000;

    /// <summary>Crashed services stay down: the scenario decides when a killed broker returns.</summary>
    public static void Apply(ClusterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.RestartCrashed = false;
        options.BrokerConfigs["replica.lag.time.max.ms"] = ReplicaLagTimeMaxMs.ToString(CultureInfo.InvariantCulture);
        options.WithEnvironment(ServiceKind.Controller, "Controller__BrokerSessionTimeoutMs",
            BrokerSessionTimeoutMs.ToString(CultureInfo.InvariantCulture));
    }
}
