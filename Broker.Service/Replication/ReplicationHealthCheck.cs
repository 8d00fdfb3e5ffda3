using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace StreamPlatform.Broker.Replication;

/// <summary>
/// Replication in /health: always Healthy (an under-replicated partition does not make this
/// broker unfit to serve: it is usually another broker that is missing), with the figures an
/// operator needs in the description and data: under-replicated and under-min-ISR ("offline"
/// for acks=all) partitions led here, ISR shrinks/expands, and per led partition its ISR and
/// followers' lag.
/// </summary>
public sealed class ReplicationHealthCheck(ReplicaManager replicas) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var s = replicas.Summarize();
        var data = new Dictionary<string, object>
        {
            ["leader_partitions"] = s.LeaderCount,
            ["follower_partitions"] = s.FollowerCount,
            ["under_replicated_partitions"] = s.UnderReplicated,
            ["under_min_isr_partitions"] = s.UnderMinIsr,
            ["isr_shrinks"] = s.IsrShrinks,
            ["isr_expands"] = s.IsrExpands,
        };
        foreach (var p in s.Partitions)
            data[$"{p.Topic}-{p.Partition}"] = $"epoch {p.LeaderEpoch} isr [{string.Join(",", p.Isr)}] of [{string.Join(",", p.Replicas)}] hw {p.HighWatermark} leo {p.LogEndOffset}"
                + string.Concat(p.Followers.Select(f => $"; follower {f.BrokerId} lag {f.LagRecords} records {f.LagMs} ms"));
        return Task.FromResult(HealthCheckResult.Healthy(
            $"Leads {s.LeaderCount} partitions ({s.UnderReplicated} under-replicated, {s.UnderMinIsr} under min.insync.replicas), follows {s.FollowerCount}; ISR shrinks {s.IsrShrinks}, expands {s.IsrExpands}.",
            data));
    }
}
