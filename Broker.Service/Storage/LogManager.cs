using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;

namespace StreamPlatform.Broker.Storage;

/// <summary>
/// All partition logs of one broker under its data directory. At start it opens (and
/// recovers) every <c>topic-partition</c> directory; on each metadata snapshot it creates logs
/// for partitions this broker is a replica of and deletes logs of topics that are gone or were
/// recreated under the same name (different topic id in <c>partition.metadata</c>).
/// </summary>
public sealed class LogManager : IDisposable
{
    private readonly ConcurrentDictionary<TopicPartition, PartitionLog> _logs = new();
    // Creation and deletion of logs are rare; one lock keeps them from racing each other.
    private readonly object _lifecycleLock = new();
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private volatile bool _loaded;
    private bool _closed;

    /// <param name="brokerId">This broker's id: its per-broker dynamic configs (log.* defaults) apply to its logs; -1 for none.</param>
    public LogManager(string dataDir, TimeProvider time, ILogger<LogManager> logger, int brokerId = -1)
    {
        DataDir = Path.GetFullPath(dataDir);
        BrokerId = brokerId;
        _time = time;
        _logger = logger;
    }

    public string DataDir { get; }
    public int BrokerId { get; }
    /// <summary>Every log this manager opens reports its high-watermark advances here (WatchAppends streams).</summary>
    public AppendWatchers AppendWatchers { get; } = new();
    /// <summary>True once every existing log has been opened and recovered.</summary>
    public bool Loaded => _loaded;
    public ICollection<PartitionLog> Logs => _logs.Values;

    /// <summary>Opens every partition directory (recovery included) and removes leftovers of interrupted deletes.</summary>
    public void LoadAll()
    {
        lock (_lifecycleLock)
        {
            Directory.CreateDirectory(DataDir);
            foreach (var dir in Directory.EnumerateDirectories(DataDir))
            {
                var name = Path.GetFileName(dir);
                if (name.EndsWith("-delete", StringComparison.Ordinal))
                {
                    _logger.LogInformation("Removing {Dir}, left over by an interrupted topic deletion", name);
                    Directory.Delete(dir, recursive: true);
                    continue;
                }
                if (!TopicPartition.TryParseDirectoryName(name, out var tp))
                {
                    _logger.LogWarning("Ignoring {Dir} in the data directory: not a topic-partition directory", name);
                    continue;
                }
                // Default config until the first metadata snapshot brings the topic's own.
                _logs[tp] = Watched(PartitionLog.Open(dir, tp, Guid.Empty, LogConfig.Default, _time, _logger));
            }
            _loaded = true;
        }
    }

    public bool TryGetLog(TopicPartition tp, out PartitionLog log) => _logs.TryGetValue(tp, out log!);

    /// <summary>The log of a partition this broker hosts, created if missing, with config and leader epoch from metadata.</summary>
    public PartitionLog GetOrCreate(ClusterMetadata metadata, TopicInfo topic, PartitionInfo partition)
    {
        var tp = new TopicPartition(topic.Name, partition.Partition);
        if (_logs.TryGetValue(tp, out var existing) && existing.TopicId == TopicIdOf(topic))
        {
            // Hot path (every produce/fetch): configs are only re-resolved when metadata changed.
            if (existing.AppliedMetadataEpoch != metadata.Epoch)
            {
                existing.Config = LogConfig.From(topic.Configs, metadata.BrokerConfigsFor(BrokerId));
                existing.LeaderEpoch = partition.LeaderEpoch;
                existing.AppliedMetadataEpoch = metadata.Epoch;
            }
            return existing;
        }
        var config = LogConfig.From(topic.Configs, metadata.BrokerConfigsFor(BrokerId));
        lock (_lifecycleLock)
        {
            if (_closed) throw new ObjectDisposedException(nameof(LogManager));
            var id = TopicIdOf(topic);
            if (_logs.TryGetValue(tp, out existing))
            {
                if (existing.TopicId == Guid.Empty && id != Guid.Empty)
                {
                    // A log from before ids were recorded adopts the current topic's id.
                    PartitionLog.WriteTopicId(existing.Directory, id);
                    existing = ReopenWithId(existing, id);
                }
                else if (existing.TopicId != id && id != Guid.Empty)
                {
                    _logger.LogWarning("Deleting log {Partition}: topic id {Old} differs from the current topic's {New} (topic recreated)", tp, existing.TopicId, id);
                    _logs.TryRemove(tp, out _);
                    existing.Delete();
                    existing = null;
                }
            }
            existing ??= _logs[tp] = Watched(PartitionLog.Open(Path.Combine(DataDir, tp.DirectoryName), tp, id, config, _time, _logger));
            existing.Config = config;
            existing.LeaderEpoch = partition.LeaderEpoch;
            existing.AppliedMetadataEpoch = metadata.Epoch;
            return existing;
        }
    }

    private PartitionLog Watched(PartitionLog log)
    {
        log.HighWatermarkAdvanced = AppendWatchers.Publish;
        return log;
    }

    private PartitionLog ReopenWithId(PartitionLog log, Guid id)
    {
        var tp = log.TopicPartition;
        log.Close();
        var reopened = Watched(PartitionLog.Open(log.Directory, tp, id, log.Config, _time, _logger));
        _logs[tp] = reopened;
        return reopened;
    }

    /// <summary>
    /// Applies a metadata snapshot: deletes logs of topics that are gone or recreated, then
    /// makes sure every partition with this broker among its replicas has a log. Logs of
    /// partitions merely moved away stay on disk (reassignment will decide later).
    /// </summary>
    public void ApplyMetadata(ClusterMetadata metadata, int brokerId)
    {
        // Epoch 0 is "nothing known yet", not "no topics": never delete on it.
        if (metadata.Epoch <= 0 || Volatile.Read(ref _closed)) return;
        foreach (var (tp, log) in _logs)
        {
            var gone = !metadata.TopicsByName.TryGetValue(tp.Topic, out var topic);
            var recreated = !gone && log.TopicId != Guid.Empty && TopicIdOf(topic!) != Guid.Empty && TopicIdOf(topic!) != log.TopicId;
            if (!gone && !recreated) continue;
            lock (_lifecycleLock)
            {
                if (!_logs.TryRemove(new KeyValuePair<TopicPartition, PartitionLog>(tp, log))) continue;
                _logger.LogInformation("Deleting log {Partition}: topic {Reason}", tp, gone ? "deleted" : "recreated with a new id");
                try
                {
                    log.Delete();
                }
                catch (IOException ex)
                {
                    _logger.LogError(ex, "Could not delete the directory of {Partition}", tp);
                }
            }
        }
        foreach (var topic in metadata.Snapshot.Topics)
        foreach (var partition in topic.Partitions)
        {
            if (!partition.Replicas.Contains(brokerId)) continue;
            try
            {
                GetOrCreate(metadata, topic, partition);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                _logger.LogError(ex, "Could not open the log of {Topic}-{Partition}", topic.Name, partition.Partition);
            }
        }
    }

    public static Guid TopicIdOf(TopicInfo topic) => topic.TopicId.Length == 16 ? TopicIds.ToGuid(topic.TopicId) : Guid.Empty;

    /// <summary>Closes every log cleanly (fsync, recovery point, clean-shutdown marker).</summary>
    public void CloseAll()
    {
        lock (_lifecycleLock)
        {
            _closed = true;
            foreach (var log in _logs.Values)
            {
                try
                {
                    log.Close();
                }
                catch (IOException ex)
                {
                    _logger.LogError(ex, "Closing {Partition} failed; it will be recovered at next start", log.TopicPartition);
                }
            }
        }
    }

    public void Dispose() => CloseAll();
}
