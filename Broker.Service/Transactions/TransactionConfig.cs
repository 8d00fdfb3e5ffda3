using System.Globalization;
using StreamPlatform.Protos.Configs;
using StreamPlatform.Protos.Groups;
using StreamPlatform.Protos.Grpc.Clients;

namespace StreamPlatform.Broker.Transactions;

/// <summary>
/// The broker configs the transaction coordinator uses (cluster-wide, from the controller's
/// metadata; Kafka's names and defaults, Protos/Configs/ConfigCatalog.cs).
/// </summary>
public sealed record TransactionConfig
{
    /// <summary>Partitions of __transaction_state: the topic's own count once it exists, so ids never move.</summary>
    public int StatePartitions { get; init; } = 50;
    /// <summary>transaction.max.timeout.ms: a larger transaction.timeout.ms is INVALID_TRANSACTION_TIMEOUT.</summary>
    public int MaxTimeoutMs { get; init; } = 900_000;
    /// <summary>transaction.abort.timed.out.transaction.cleanup.interval.ms.</summary>
    public int AbortTimedOutIntervalMs { get; init; } = 10_000;
    /// <summary>transactional.id.expiration.ms.</summary>
    public long IdExpirationMs { get; init; } = 604_800_000;
    /// <summary>transaction.remove.expired.transaction.cleanup.interval.ms.</summary>
    public int RemoveExpiredIntervalMs { get; init; } = 3_600_000;
    /// <summary>Longest a state write waits to be replicated before COORDINATOR_NOT_AVAILABLE (Kafka: request.timeout.ms).</summary>
    public int WriteTimeoutMs { get; init; } = 30_000;

    public static TransactionConfig From(ClusterMetadata metadata)
    {
        var configs = metadata.Snapshot.BrokerConfigs;
        long Get(string name) => long.TryParse(ConfigCatalog.EffectiveBrokerValue(configs, name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v)
            ? v : long.Parse(ConfigCatalog.Broker[name].DefaultValue!, CultureInfo.InvariantCulture);
        var partitions = metadata.TopicsByName.TryGetValue(TransactionStateTopic.Name, out var topic) && topic.Partitions.Count > 0
            ? topic.Partitions.Count
            : (int)Math.Clamp(Get("transaction.state.log.num.partitions"), 1, 10_000);
        return new TransactionConfig
        {
            StatePartitions = partitions,
            MaxTimeoutMs = (int)Math.Clamp(Get("transaction.max.timeout.ms"), 1, int.MaxValue),
            AbortTimedOutIntervalMs = (int)Math.Clamp(Get("transaction.abort.timed.out.transaction.cleanup.interval.ms"), 1, int.MaxValue),
            IdExpirationMs = Math.Max(1, Get("transactional.id.expiration.ms")),
            RemoveExpiredIntervalMs = (int)Math.Clamp(Get("transaction.remove.expired.transaction.cleanup.interval.ms"), 1, int.MaxValue),
        };
    }
}

/// <summary>The transaction configs from the newest metadata, parsed once per metadata epoch.</summary>
public sealed class TransactionConfigSource(MetadataWatcher watcher)
{
    private sealed record Cached(long Epoch, TransactionConfig Config);
    private Cached _cached = new(-1, new TransactionConfig());

    public TransactionConfig Current
    {
        get
        {
            var metadata = watcher.Current;
            var cached = Volatile.Read(ref _cached);
            if (cached.Epoch == metadata.Epoch) return cached.Config;
            var config = TransactionConfig.From(metadata);
            Volatile.Write(ref _cached, new Cached(metadata.Epoch, config));
            return config;
        }
    }
}
