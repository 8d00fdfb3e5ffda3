using StreamPlatform.Broker.Replication;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Grpc.Clients;

namespace StreamPlatform.Broker.Groups;

/// <summary>
/// What a coordinator over an internal topic (__consumer_offsets for groups, __transaction_state
/// for transactions) tells its <see cref="CoordinatorPartitionFollower"/>: which partitions it
/// holds, at which leader epoch, and how to take one over or give it up.
/// </summary>
public interface ICoordinatorPartitions
{
    IReadOnlyCollection<int> Partitions { get; }
    int? LeaderEpochOf(int partition);
    /// <summary>Takes over the partition at that leader epoch: reads its log (off the caller's thread) and serves it afterwards.</summary>
    void Load(int partition, int leaderEpoch, OffsetsPartitionStore store);
    void Unload(int partition);
}

/// <summary>
/// The one mechanism that moves a coordinator with the leadership of its internal topic's
/// partitions (Kafka's onElection / onResignation): on every metadata change, each partition
/// of <see cref="Topic"/> this broker leads is loaded (once per leader epoch, the coordinator
/// epoch); one led elsewhere now is unloaded. Writes go through the replica layer's partition,
/// looked up at each append: the metadata reaches the replica layer and the coordinator in
/// either order, and an append before the replica layer made the partition leader is refused
/// (NOT_COORDINATOR; the client retries).
/// </summary>
public sealed class CoordinatorPartitionFollower(
    string topic,
    ICoordinatorPartitions coordinator,
    MetadataWatcher watcher,
    LogManager logs,
    ReplicaManager replicas,
    int brokerId,
    ILogger logger)
{
    private readonly Lock _gate = new();

    public string Topic => topic;

    public void Start()
    {
        watcher.Applied += OnMetadata;
        OnMetadata(watcher.Current);
    }

    public void Stop() => watcher.Applied -= OnMetadata;

    private void OnMetadata(ClusterMetadata metadata)
    {
        lock (_gate)
        {
            var led = new HashSet<int>();
            // Until the logs on disk are open (LogManager.LoadAll at start), loading would read nothing.
            if (logs.Loaded && metadata.TopicsByName.TryGetValue(topic, out var info)
                && metadata.BrokersById.TryGetValue(brokerId, out var self) && !self.Fenced)
            {
                foreach (var p in info.Partitions)
                {
                    if (p.Leader != brokerId) continue;
                    led.Add(p.Partition);
                    if (coordinator.LeaderEpochOf(p.Partition) == p.LeaderEpoch) continue;
                    try
                    {
                        var log = logs.GetOrCreate(metadata, info, p);
                        var tp = new TopicPartition(topic, p.Partition);
                        coordinator.Load(p.Partition, p.LeaderEpoch,
                            new OffsetsPartitionStore(log, () => replicas.TryGetPartition(tp, out var partition) ? partition : null));
                    }
                    catch (Exception ex) when (ex is IOException or ObjectDisposedException)
                    {
                        logger.LogError(ex, "Cannot open {Topic}-{Partition}", topic, p.Partition);
                    }
                }
            }
            foreach (var partition in coordinator.Partitions)
                if (!led.Contains(partition)) coordinator.Unload(partition);
        }
    }
}
