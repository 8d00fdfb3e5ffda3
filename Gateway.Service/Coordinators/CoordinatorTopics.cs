using System.Globalization;
using Grpc.Core;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Protos.Configs;
using StreamPlatform.Protos.Groups;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka.Messages;
using Ctl = StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.Gateway.Coordinators;

/// <summary>
/// The coordinators' internal topics, __consumer_offsets (groups) and __transaction_state
/// (transactional ids): where a key's coordinator is (the leader of partition
/// abs(hash(key)) % partitions, the formula Kafka and our brokers use), and their creation on
/// first use (FindCoordinator), as Kafka's coordinators create them: the partition count and
/// replication factor from the broker configs, and never with fewer live brokers than the
/// replication factor (the topic would stay under-replicated for ever; COORDINATOR_NOT_AVAILABLE
/// until enough brokers are up, with a rate-limited warning).
/// </summary>
public sealed class CoordinatorTopics(TopicAdmin admin, TimeProvider time, ILogger<CoordinatorTopics> logger) : IDisposable
{
    /// <summary>How often the "too few brokers" warning of one topic may repeat (clients retry FindCoordinator often).</summary>
    public const long TooFewBrokersLogIntervalMs = 30_000;

    /// <summary>How long a FindCoordinator waits for a just-created topic to get leaders before answering COORDINATOR_NOT_AVAILABLE (clients retry).</summary>
    public static readonly TimeSpan TopicWaitMax = TimeSpan.FromSeconds(5);

    /// <summary>Kafka's offsets.topic.segment.bytes default (not configurable here).</summary>
    private const string OffsetsSegmentBytes = "104857600";

    private readonly SemaphoreSlim _createGate = new(1, 1);
    // Per kind: when the "too few brokers" warning was last logged.
    private readonly long[] _tooFewBrokersLoggedMs = [long.MinValue / 2, long.MinValue / 2];

    public MetadataWatcher Watcher => admin.Watcher;

    /// <summary>The internal topic of a coordinator kind.</summary>
    public static string TopicOf(CoordinatorKind kind) => kind switch
    {
        CoordinatorKind.Group => OffsetsTopic.Name,
        CoordinatorKind.Transaction => TransactionStateTopic.Name,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown coordinator kind"),
    };

    /// <summary>The broker config that sets the topic's replication factor (named in the warning, as Kafka does).</summary>
    private static string ReplicationFactorConfig(CoordinatorKind kind)
        => kind == CoordinatorKind.Group ? "offsets.topic.replication.factor" : "transaction.state.log.replication.factor";

    /// <summary>How Kafka's warning names the topic.</summary>
    private static string Description(CoordinatorKind kind) => kind == CoordinatorKind.Group ? "offsets topic" : "transactions state topic";

    /// <summary>The coordinator broker of <paramref name="key"/>, or the error a client should see (COORDINATOR_NOT_AVAILABLE: no topic, or no live leader).</summary>
    public static (ErrorCode Error, BrokerInfo? Broker) Coordinator(ClusterMetadata metadata, CoordinatorKind kind, string key)
    {
        if (!metadata.TopicsByName.TryGetValue(TopicOf(kind), out var topic) || topic.Partitions.Count == 0)
            return (ErrorCode.CoordinatorNotAvailable, null);
        // The same formula for both topics (TransactionStateTopic.PartitionFor is OffsetsTopic's).
        var index = kind == CoordinatorKind.Group
            ? OffsetsTopic.PartitionFor(key, topic.Partitions.Count)
            : TransactionStateTopic.PartitionFor(key, topic.Partitions.Count);
        var partition = topic.Partitions.FirstOrDefault(p => p.Partition == index);
        var leader = partition is null ? null : metadata.LeaderOf(partition);
        return leader is null ? (ErrorCode.CoordinatorNotAvailable, null) : (ErrorCode.None, leader);
    }

    /// <summary>A broker config as an int: the cluster's value, else the catalog default.</summary>
    private static int IntConfig(IReadOnlyDictionary<string, string> configs, string name)
        => int.Parse(configs.TryGetValue(name, out var v) ? v : ConfigCatalog.Broker[name].DefaultValue!, CultureInfo.InvariantCulture);

    /// <summary>
    /// The topic as its coordinator creates it, from the cluster's broker configs. Both are
    /// compacted (only the newest record per key matters). __transaction_state as Kafka's
    /// TransactionStateManager makes it: min.insync.replicas from transaction.state.log.min.isr
    /// (capped at the replication factor, so a small cluster's topic stays writable),
    /// segment.bytes from transaction.state.log.segment.bytes, uncompressed, and never an
    /// unclean leader (a lost transaction state could commit half a transaction).
    /// </summary>
    public static Ctl.CreatableTopic Build(CoordinatorKind kind, IReadOnlyDictionary<string, string> brokerConfigs)
    {
        var replicationFactor = IntConfig(brokerConfigs, ReplicationFactorConfig(kind));
        var topic = new Ctl.CreatableTopic { Name = TopicOf(kind), ReplicationFactor = replicationFactor, Internal = true };
        topic.Configs.Add("cleanup.policy", "compact");
        if (kind == CoordinatorKind.Group)
        {
            topic.NumPartitions = IntConfig(brokerConfigs, "offsets.topic.num.partitions");
            topic.Configs.Add("segment.bytes", OffsetsSegmentBytes);
            return topic;
        }
        topic.NumPartitions = IntConfig(brokerConfigs, "transaction.state.log.num.partitions");
        var minIsr = Math.Min(IntConfig(brokerConfigs, "transaction.state.log.min.isr"), replicationFactor);
        topic.Configs.Add("min.insync.replicas", minIsr.ToString(CultureInfo.InvariantCulture));
        topic.Configs.Add("segment.bytes", IntConfig(brokerConfigs, "transaction.state.log.segment.bytes").ToString(CultureInfo.InvariantCulture));
        topic.Configs.Add("compression.type", "uncompressed");
        topic.Configs.Add("unclean.leader.election.enable", "false");
        return topic;
    }

    /// <summary>Creates the kind's topic when it does not exist yet (FindCoordinator's first use), then waits briefly for its leaders.</summary>
    public async Task EnsureAsync(CoordinatorKind kind, CancellationToken cancellationToken)
    {
        var name = TopicOf(kind);
        if (admin.Watcher.Current.TopicsByName.ContainsKey(name)) return;
        await _createGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var metadata = admin.Watcher.Current;
            if (!metadata.TopicsByName.ContainsKey(name))
            {
                var topic = Build(kind, metadata.Snapshot.BrokerConfigs);
                var liveBrokers = metadata.Snapshot.Brokers.Count(b => !b.Fenced);
                if (liveBrokers < topic.ReplicationFactor)
                {
                    // As Kafka: never create the topic with fewer replicas than configured. The
                    // client gets COORDINATOR_NOT_AVAILABLE and retries until enough brokers are up.
                    LogTooFewBrokers(kind, liveBrokers, topic.ReplicationFactor);
                    return;
                }
                try
                {
                    var response = await admin.CreateAsync(new Ctl.CreateTopicsRequest { Topics = { topic } }, 0, cancellationToken).ConfigureAwait(false);
                    foreach (var r in response.Results)
                        if (r.ErrorCode != 0 && r.ErrorCode != (int)ErrorCode.TopicAlreadyExists)
                            logger.LogWarning("Creating {Topic} failed: {Code} {Message}", name, r.ErrorCode, r.ErrorMessage);
                        else
                            logger.LogInformation("Created {Topic} with {Partitions} partitions", name, topic.NumPartitions);
                }
                catch (RpcException ex)
                {
                    ControllerConnection.LogFailure(logger, $"Creating {name}", ex, cancellationToken);
                    return;
                }
            }
        }
        finally
        {
            _createGate.Release();
        }
        await admin.WaitForAsync(m => m.TopicsByName.TryGetValue(name, out var t) && t.Partitions.All(p => p.Leader >= 0),
            TopicWaitMax, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Kafka's message for a cluster still starting up; logged at most once per <see cref="TooFewBrokersLogIntervalMs"/> per topic.</summary>
    private void LogTooFewBrokers(CoordinatorKind kind, int liveBrokers, int replicationFactor)
    {
        var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        ref var loggedMs = ref _tooFewBrokersLoggedMs[(int)kind];
        var last = Interlocked.Read(ref loggedMs);
        if (nowMs - last < TooFewBrokersLogIntervalMs || Interlocked.CompareExchange(ref loggedMs, nowMs, last) != last) return;
        logger.LogWarning("Number of alive brokers '{Live}' does not meet the required replication factor '{Rf}' for the {Topic} " +
            "(configured via '{Config}'). This error can be ignored if the cluster is starting up and not all brokers are up yet.",
            liveBrokers, replicationFactor, Description(kind), ReplicationFactorConfig(kind));
    }

    public void Dispose() => _createGate.Dispose();
}
