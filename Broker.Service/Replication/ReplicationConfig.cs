using System.Globalization;
using StreamPlatform.Protos.Configs;

namespace StreamPlatform.Broker.Replication;

/// <summary>The broker's replication configs, resolved from metadata (its broker configs, else the catalog's Kafka defaults).</summary>
public sealed record ReplicationConfig
{
    /// <summary>replica.lag.time.max.ms: a follower not caught up for this long leaves the ISR; the ISR check runs every half of it.</summary>
    public long ReplicaLagTimeMaxMs { get; init; } = 30000;
    /// <summary>replica.fetch.wait.max.ms: longest a follower's fetch waits at the leader.</summary>
    public int ReplicaFetchWaitMaxMs { get; init; } = 500;
    /// <summary>replica.fetch.max.bytes: per partition of a follower fetch (at least one batch).</summary>
    public int ReplicaFetchMaxBytes { get; init; } = 1048576;
    /// <summary>replica.fetch.response.max.bytes: per follower fetch response (at least one batch).</summary>
    public int ReplicaFetchResponseMaxBytes { get; init; } = 10485760;
    /// <summary>replica.fetch.backoff.ms: pause of a fetcher after a failed fetch.</summary>
    public int ReplicaFetchBackoffMs { get; init; } = 1000;
    /// <summary>min.insync.replicas of topics that do not set their own.</summary>
    public int MinInSyncReplicasDefault { get; init; } = 1;

    public static readonly ReplicationConfig Default = new();

    public static ReplicationConfig From(IReadOnlyDictionary<string, string> brokerConfigs) => new()
    {
        ReplicaLagTimeMaxMs = Long(brokerConfigs, "replica.lag.time.max.ms"),
        ReplicaFetchWaitMaxMs = (int)Long(brokerConfigs, "replica.fetch.wait.max.ms"),
        ReplicaFetchMaxBytes = (int)Long(brokerConfigs, "replica.fetch.max.bytes"),
        ReplicaFetchResponseMaxBytes = (int)Long(brokerConfigs, "replica.fetch.response.max.bytes"),
        ReplicaFetchBackoffMs = (int)Long(brokerConfigs, "replica.fetch.backoff.ms"),
        MinInSyncReplicasDefault = (int)Long(brokerConfigs, "min.insync.replicas"),
    };

    /// <summary>A topic's min.insync.replicas: its own valid value, else the broker's.</summary>
    public int MinInSyncReplicas(IReadOnlyDictionary<string, string> topicConfigs)
        => topicConfigs.TryGetValue("min.insync.replicas", out var v) && ConfigCatalog.Topic["min.insync.replicas"].Validate(v) is null
            ? int.Parse(v, CultureInfo.InvariantCulture)
            : MinInSyncReplicasDefault;

    /// <summary>A broker config's value when recorded and valid, else the catalog default.</summary>
    private static long Long(IReadOnlyDictionary<string, string> brokerConfigs, string name)
    {
        var definition = ConfigCatalog.Broker[name];
        var value = brokerConfigs.TryGetValue(name, out var v) && definition.Validate(v) is null ? v : definition.DefaultValue!;
        return long.Parse(value, CultureInfo.InvariantCulture);
    }
}
