using Microsoft.Extensions.Options;
using StreamPlatform.Broker.Replication;
using StreamPlatform.Broker.Services;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Groups;
using StreamPlatform.Protos.Grpc.Clients;

namespace StreamPlatform.Broker.Groups;

/// <summary>
/// Follows the metadata: for each partition of __consumer_offsets this broker leads, the
/// coordinator loads it (once per leader epoch); a partition led elsewhere now is unloaded.
/// Its writes go through the <see cref="ReplicaManager"/>'s partition, looked up at each append:
/// the metadata reaches the replica layer and this host in either order, and an append before
/// the replica layer made the partition leader is refused (NOT_COORDINATOR; the client retries).
/// </summary>
public sealed class GroupCoordinatorHost(
    GroupCoordinator coordinator,
    MetadataWatcher watcher,
    LogManager logs,
    ReplicaManager replicas,
    IOptions<BrokerOptions> options,
    ILogger<GroupCoordinatorHost> logger) : IHostedService
{
    private readonly object _gate = new();

    public Task StartAsync(CancellationToken cancellationToken)
    {
        watcher.Applied += OnMetadata;
        OnMetadata(watcher.Current);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        watcher.Applied -= OnMetadata;
        return Task.CompletedTask;
    }

    private void OnMetadata(ClusterMetadata metadata)
    {
        lock (_gate)
        {
            var brokerId = options.Value.BrokerId;
            var led = new HashSet<int>();
            // Until the logs on disk are open (LogManager.LoadAll at start), loading would read nothing.
            if (logs.Loaded && metadata.TopicsByName.TryGetValue(OffsetsTopic.Name, out var topic)
                && metadata.BrokersById.TryGetValue(brokerId, out var self) && !self.Fenced)
            {
                foreach (var p in topic.Partitions)
                {
                    if (p.Leader != brokerId) continue;
                    led.Add(p.Partition);
                    if (coordinator.LeaderEpochOf(p.Partition) == p.LeaderEpoch) continue;
                    try
                    {
                        var log = logs.GetOrCreate(metadata, topic, p);
                        var tp = new TopicPartition(OffsetsTopic.Name, p.Partition);
                        _ = coordinator.LoadAsync(p.Partition, p.LeaderEpoch,
                            new OffsetsPartitionStore(log, () => replicas.TryGetPartition(tp, out var partition) ? partition : null));
                    }
                    catch (Exception ex) when (ex is IOException or ObjectDisposedException)
                    {
                        logger.LogError(ex, "Cannot open __consumer_offsets-{Partition}", p.Partition);
                    }
                }
            }
            foreach (var partition in coordinator.Partitions)
                if (!led.Contains(partition)) coordinator.Unload(partition);
        }
    }
}

/// <summary>The group configs from the newest metadata, parsed once per metadata epoch.</summary>
public sealed class GroupConfigSource(MetadataWatcher watcher)
{
    private sealed record Cached(long Epoch, GroupConfig Config);
    private Cached _cached = new(-1, new GroupConfig());

    public GroupConfig Current
    {
        get
        {
            var metadata = watcher.Current;
            var cached = Volatile.Read(ref _cached);
            if (cached.Epoch == metadata.Epoch) return cached.Config;
            var config = GroupConfig.From(metadata.Snapshot.BrokerConfigs, metadata.Snapshot.GroupConfigs);
            // Once the topic exists its partition count decides the mapping (as in Kafka): a
            // later change of offsets.topic.num.partitions must not move groups.
            if (metadata.TopicsByName.TryGetValue(OffsetsTopic.Name, out var topic) && topic.Partitions.Count > 0)
                config = config with { OffsetsTopicPartitions = topic.Partitions.Count };
            Volatile.Write(ref _cached, new Cached(metadata.Epoch, config));
            return config;
        }
    }
}
