using Microsoft.Extensions.Options;
using StreamPlatform.Broker.Replication;
using StreamPlatform.Broker.Services;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Groups;
using StreamPlatform.Protos.Grpc.Clients;

namespace StreamPlatform.Broker.Groups;

/// <summary>
/// Moves the group coordinator with the leadership of __consumer_offsets partitions (the shared
/// <see cref="CoordinatorPartitionFollower"/>): each partition this broker leads is loaded once
/// per leader epoch; one led elsewhere now is unloaded.
/// </summary>
public sealed class GroupCoordinatorHost(
    GroupCoordinator coordinator,
    MetadataWatcher watcher,
    LogManager logs,
    ReplicaManager replicas,
    IOptions<BrokerOptions> options,
    ILogger<GroupCoordinatorHost> logger) : IHostedService
{
    private readonly CoordinatorPartitionFollower _follower = new(OffsetsTopic.Name, coordinator, watcher, logs, replicas, options.Value.BrokerId, logger);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _follower.Start();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _follower.Stop();
        return Task.CompletedTask;
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
