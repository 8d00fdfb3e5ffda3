using System.Collections.Frozen;
using System.Globalization;

namespace StreamPlatform.Protos.Configs;

public enum ConfigType { Boolean, String, Int, Long, Double, List, Class, Password }

/// <summary>Kafka's DescribeConfigs source codes.</summary>
public enum ConfigSource : sbyte
{
    Unknown = 0,
    DynamicTopicConfig = 1,
    DynamicBrokerConfig = 2,
    DynamicDefaultBrokerConfig = 3,
    StaticBrokerConfig = 4,
    DefaultConfig = 5,
    DynamicBrokerLoggerConfig = 6,
    ClientMetricsConfig = 7,
    GroupConfig = 8,
}

/// <summary>One config the cluster understands: its name, type, default and validation.</summary>
public sealed record ConfigDefinition(
    string Name,
    ConfigType Type,
    string? DefaultValue,
    string Documentation,
    Func<string, bool>? IsValid = null,
    bool ReadOnly = false,
    bool Sensitive = false)
{
    /// <summary>Null when <paramref name="value"/> is acceptable, else the reason (INVALID_CONFIG).</summary>
    public string? Validate(string? value)
    {
        if (value is null) return null; // null resets to the default
        var typeOk = Type switch
        {
            ConfigType.Boolean => value is "true" or "false",
            ConfigType.Int => int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _),
            ConfigType.Long => long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _),
            ConfigType.Double => double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _),
            _ => true,
        };
        if (!typeOk) return $"Invalid value {value} for configuration {Name}: not a valid {Type.ToString().ToLowerInvariant()}.";
        if (IsValid is not null && !IsValid(value)) return $"Invalid value {value} for configuration {Name}.";
        return null;
    }
}

/// <summary>
/// The topic and broker configs StreamPlatform understands, with Kafka's names and defaults.
/// The controller validates CreateTopics/AlterConfigs against it, brokers read effective values
/// through it, and the gateway answers DescribeConfigs from it.
/// </summary>
public static class ConfigCatalog
{
    private static bool AtLeast(string v, long min) => long.TryParse(v, CultureInfo.InvariantCulture, out var x) && x >= min;
    private static bool OneOf(string v, params string[] options) => options.Contains(v, StringComparer.Ordinal);

    public static readonly FrozenDictionary<string, ConfigDefinition> Topic = new ConfigDefinition[]
    {
        new("cleanup.policy", ConfigType.List, "delete", "delete, compact, or both (comma separated).",
            v => v.Split(',', StringSplitOptions.TrimEntries).All(p => p is "delete" or "compact")),
        new("compression.type", ConfigType.String, "producer", "Final compression of the topic's batches.",
            v => OneOf(v, "producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")),
        new("delete.retention.ms", ConfigType.Long, "86400000", "How long tombstones are kept on compacted topics.", v => AtLeast(v, 0)),
        new("file.delete.delay.ms", ConfigType.Long, "60000", "Delay before a deleted segment file is removed.", v => AtLeast(v, 0)),
        new("flush.messages", ConfigType.Long, "9223372036854775807", "fsync after this many messages.", v => AtLeast(v, 1)),
        new("flush.ms", ConfigType.Long, "9223372036854775807", "fsync after this much time.", v => AtLeast(v, 0)),
        new("index.interval.bytes", ConfigType.Int, "4096", "Bytes between offset index entries.", v => AtLeast(v, 0)),
        new("max.compaction.lag.ms", ConfigType.Long, "9223372036854775807", "Longest a record stays uncompacted.", v => AtLeast(v, 1)),
        new("max.message.bytes", ConfigType.Int, "1048588", "Largest record batch accepted.", v => AtLeast(v, 0)),
        new("message.timestamp.type", ConfigType.String, "CreateTime", "CreateTime or LogAppendTime.",
            v => OneOf(v, "CreateTime", "LogAppendTime")),
        new("message.timestamp.before.max.ms", ConfigType.Long, "9223372036854775807", "Largest accepted age of a record timestamp.", v => AtLeast(v, 0)),
        new("message.timestamp.after.max.ms", ConfigType.Long, "9223372036854775807", "Largest accepted future skew of a record timestamp.", v => AtLeast(v, 0)),
        new("min.cleanable.dirty.ratio", ConfigType.Double, "0.5", "Dirty share of the log before compaction runs.",
            v => double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d is >= 0 and <= 1),
        new("min.compaction.lag.ms", ConfigType.Long, "0", "Youngest a record may be to be compacted.", v => AtLeast(v, 0)),
        new("min.insync.replicas", ConfigType.Int, "1", "Replicas that must acknowledge an acks=all write.", v => AtLeast(v, 1)),
        new("preallocate", ConfigType.Boolean, "false", "Preallocate segment files."),
        new("retention.bytes", ConfigType.Long, "-1", "Largest partition size before old segments are deleted (-1: no limit).", v => AtLeast(v, -1)),
        new("retention.ms", ConfigType.Long, "604800000", "Longest a segment is kept (-1: forever).", v => AtLeast(v, -1)),
        new("segment.bytes", ConfigType.Int, "1073741824", "Segment file size before a roll.", v => AtLeast(v, 14)),
        new("segment.index.bytes", ConfigType.Int, "10485760", "Largest offset index file.", v => AtLeast(v, 4)),
        new("segment.jitter.ms", ConfigType.Long, "0", "Random jitter subtracted from segment.ms.", v => AtLeast(v, 0)),
        new("segment.ms", ConfigType.Long, "604800000", "Age of a segment before a roll.", v => AtLeast(v, 1)),
        new("unclean.leader.election.enable", ConfigType.Boolean, "false", "Allow an out-of-sync replica to lead."),
        new("message.downconversion.enable", ConfigType.Boolean, "true", "Kept for compatibility; StreamPlatform never down-converts."),
    }.ToFrozenDictionary(d => d.Name, StringComparer.Ordinal);

    /// <summary>
    /// Broker configs. <see cref="ConfigDefinition.ReadOnly"/> = not dynamically updatable in Kafka
    /// (not in DynamicBrokerConfig.AllDynamicConfigs): AlterConfigs refuses them with
    /// INVALID_REQUEST and DescribeConfigs reports read_only. A null default is Kafka's too
    /// (log.retention.ms: Kafka derives it from log.retention.hours, 168).
    /// </summary>
    public static readonly FrozenDictionary<string, ConfigDefinition> Broker = new ConfigDefinition[]
    {
        new("auto.create.topics.enable", ConfigType.Boolean, "true", "Create a topic on first Metadata or Produce for it.", ReadOnly: true),
        new("num.partitions", ConfigType.Int, "1", "Partitions of an auto-created topic or of CreateTopics with -1.", v => AtLeast(v, 1), ReadOnly: true),
        new("default.replication.factor", ConfigType.Int, "1", "Replication factor when CreateTopics says -1.", v => AtLeast(v, 1), ReadOnly: true),
        new("delete.topic.enable", ConfigType.Boolean, "true", "Allow DeleteTopics.", ReadOnly: true),
        new("unclean.leader.election.enable", ConfigType.Boolean, "false", "Default of the topic config: allow an out-of-sync replica to lead (losing what it lacks)."),
        new("auto.leader.rebalance.enable", ConfigType.Boolean, "true", "Move leadership back to the preferred (first) replica when it is live and in sync.", ReadOnly: true),
        new("leader.imbalance.check.interval.seconds", ConfigType.Long, "300", "How often the controller checks for leader imbalance.", v => AtLeast(v, 1), ReadOnly: true),
        new("leader.imbalance.per.broker.percentage", ConfigType.Int, "10", "Share of a broker's partitions led elsewhere above which preferred leaders are elected.", v => AtLeast(v, 0), ReadOnly: true),
        new("message.max.bytes", ConfigType.Int, "1048588", "Default max.message.bytes of topics.", v => AtLeast(v, 0)),
        new("socket.request.max.bytes", ConfigType.Int, "104857600", "Largest request frame a gateway accepts.", v => AtLeast(v, 1), ReadOnly: true),
        new("offsets.topic.num.partitions", ConfigType.Int, "50", "Partitions of __consumer_offsets.", v => AtLeast(v, 1), ReadOnly: true),
        // Kafka's default: 3. The topic is not created while fewer brokers are live (FindCoordinator
        // answers COORDINATOR_NOT_AVAILABLE); a smaller cluster sets it lower (the AppHost passes min(3, brokers)).
        new("offsets.topic.replication.factor", ConfigType.Int, "3", "Replication factor of __consumer_offsets.", v => AtLeast(v, 1), ReadOnly: true),
        // Transactions and idempotence (issue 13), Kafka's names and defaults. The transaction
        // state topic follows the offsets topic's rules (created on first use, not while fewer
        // brokers than its replication factor are live; the AppHost passes min(3, brokers)).
        new("transaction.state.log.num.partitions", ConfigType.Int, "50", "Partitions of __transaction_state.", v => AtLeast(v, 1), ReadOnly: true),
        new("transaction.state.log.replication.factor", ConfigType.Int, "3", "Replication factor of __transaction_state.", v => AtLeast(v, 1), ReadOnly: true),
        new("transaction.state.log.min.isr", ConfigType.Int, "2", "min.insync.replicas of __transaction_state (capped at its replication factor).", v => AtLeast(v, 1), ReadOnly: true),
        new("transaction.state.log.segment.bytes", ConfigType.Int, "104857600", "segment.bytes of __transaction_state.", v => AtLeast(v, 14), ReadOnly: true),
        new("transaction.max.timeout.ms", ConfigType.Int, "900000", "Largest transaction.timeout.ms a producer may ask for (INVALID_TRANSACTION_TIMEOUT above).", v => AtLeast(v, 1), ReadOnly: true),
        new("transaction.abort.timed.out.transaction.cleanup.interval.ms", ConfigType.Int, "10000", "How often coordinators look for transactions open past their timeout, to abort them.", v => AtLeast(v, 1), ReadOnly: true),
        new("transactional.id.expiration.ms", ConfigType.Int, "604800000", "How long a transactional id with no transaction in progress is kept without use.", v => AtLeast(v, 1), ReadOnly: true),
        new("transaction.remove.expired.transaction.cleanup.interval.ms", ConfigType.Int, "3600000", "How often expired transactional ids are removed.", v => AtLeast(v, 1), ReadOnly: true),
        new("producer.id.expiration.ms", ConfigType.Int, "86400000", "How long a partition keeps an idle producer's state (de-duplication) after its last write.", v => AtLeast(v, 1)),
        new("producer.id.expiration.check.interval.ms", ConfigType.Int, "600000", "How often expired producer state is removed.", v => AtLeast(v, 1), ReadOnly: true),
        new("offsets.commit.timeout.ms", ConfigType.Int, "5000", "How long a group coordinator write (offset commit, group state) waits to be replicated before the request fails.", v => AtLeast(v, 1), ReadOnly: true),
        new("group.initial.rebalance.delay.ms", ConfigType.Int, "3000", "How long the first rebalance of an empty group waits for more members.", v => AtLeast(v, 0), ReadOnly: true),
        new("group.min.session.timeout.ms", ConfigType.Int, "6000", "Smallest session timeout a group member may ask for.", v => AtLeast(v, 1), ReadOnly: true),
        new("group.max.session.timeout.ms", ConfigType.Int, "1800000", "Largest session timeout a group member may ask for.", v => AtLeast(v, 1), ReadOnly: true),
        new("group.max.size", ConfigType.Int, "2147483647", "Most members a classic group may have.", v => AtLeast(v, 1), ReadOnly: true),
        new("group.consumer.session.timeout.ms", ConfigType.Int, "45000", "Session timeout of consumer-protocol (KIP-848) group members.", v => AtLeast(v, 1), ReadOnly: true),
        new("group.consumer.min.session.timeout.ms", ConfigType.Int, "45000", "Smallest consumer.session.timeout.ms a group config may set.", v => AtLeast(v, 1), ReadOnly: true),
        new("group.consumer.max.session.timeout.ms", ConfigType.Int, "60000", "Largest consumer.session.timeout.ms a group config may set.", v => AtLeast(v, 1), ReadOnly: true),
        new("group.consumer.heartbeat.interval.ms", ConfigType.Int, "5000", "How often consumer-protocol (KIP-848) members heartbeat.", v => AtLeast(v, 1), ReadOnly: true),
        new("group.consumer.min.heartbeat.interval.ms", ConfigType.Int, "5000", "Smallest consumer.heartbeat.interval.ms a group config may set.", v => AtLeast(v, 1), ReadOnly: true),
        new("group.consumer.max.heartbeat.interval.ms", ConfigType.Int, "15000", "Largest consumer.heartbeat.interval.ms a group config may set.", v => AtLeast(v, 1), ReadOnly: true),
        new("group.consumer.max.size", ConfigType.Int, "2147483647", "Most members a consumer-protocol (KIP-848) group may have.", v => AtLeast(v, 1), ReadOnly: true),
        new("group.share.session.timeout.ms", ConfigType.Int, "45000", "Session timeout of share group members (share groups are not served yet).", v => AtLeast(v, 1), ReadOnly: true),
        new("group.share.heartbeat.interval.ms", ConfigType.Int, "5000", "Heartbeat interval of share group members (share groups are not served yet).", v => AtLeast(v, 1), ReadOnly: true),
        new("group.share.record.lock.duration.ms", ConfigType.Int, "30000", "Share group record lock duration (share groups are not served yet).", v => AtLeast(v, 1000), ReadOnly: true),
        new("offsets.retention.minutes", ConfigType.Int, "10080", "How long an empty group's committed offsets are kept.", v => AtLeast(v, 1), ReadOnly: true),
        new("offsets.retention.check.interval.ms", ConfigType.Long, "600000", "How often expired offsets are looked for.", v => AtLeast(v, 1), ReadOnly: true),
        new("offset.metadata.max.bytes", ConfigType.Int, "4096", "Largest metadata string of a committed offset.", v => AtLeast(v, 0), ReadOnly: true),
        new("log.retention.ms", ConfigType.Long, null, "Default retention.ms of topics (unset: 168 hours, Kafka's log.retention.hours default).", v => AtLeast(v, -1)),
        new("log.segment.bytes", ConfigType.Int, "1073741824", "Default segment.bytes of topics.", v => AtLeast(v, 14)),
        new("log.dirs", ConfigType.String, null, "Where partition data lives.", ReadOnly: true),
        // Replication (issue 10). min.insync.replicas is dynamic in Kafka (a log config default);
        // the replica.* ones are not.
        new("min.insync.replicas", ConfigType.Int, "1", "Default min.insync.replicas of topics.", v => AtLeast(v, 1)),
        new("replica.lag.time.max.ms", ConfigType.Long, "30000", "A follower that has not caught up to the leader's log end for this long leaves the ISR.", v => AtLeast(v, 1), ReadOnly: true),
        new("replica.fetch.wait.max.ms", ConfigType.Int, "500", "Longest a follower's fetch waits at the leader for new records.", v => AtLeast(v, 0), ReadOnly: true),
        new("replica.fetch.max.bytes", ConfigType.Int, "1048576", "Record bytes a follower fetches per partition (at least one batch).", v => AtLeast(v, 0), ReadOnly: true),
        new("replica.fetch.response.max.bytes", ConfigType.Int, "10485760", "Record bytes of one follower fetch response (at least one batch).", v => AtLeast(v, 0), ReadOnly: true),
        new("replica.fetch.backoff.ms", ConfigType.Int, "1000", "Pause of a follower's fetcher after a failed fetch.", v => AtLeast(v, 0), ReadOnly: true),
    }.ToFrozenDictionary(d => d.Name, StringComparer.Ordinal);

    /// <summary>
    /// Group configs (KIP-848 GROUP config resources, Kafka's GroupConfig): per-group overrides of
    /// the broker config <see cref="GroupBrokerDefaults"/> names, checked by <see cref="GroupConfigValues.Validate"/>.
    /// </summary>
    public static readonly FrozenDictionary<string, ConfigDefinition> Group = new ConfigDefinition[]
    {
        new("consumer.session.timeout.ms", ConfigType.Int, "45000", "Session timeout of this consumer group's members.", v => AtLeast(v, 1)),
        new("consumer.heartbeat.interval.ms", ConfigType.Int, "5000", "How often this consumer group's members heartbeat.", v => AtLeast(v, 1)),
        new("share.session.timeout.ms", ConfigType.Int, "45000", "Session timeout of this share group's members.", v => AtLeast(v, 1)),
        new("share.heartbeat.interval.ms", ConfigType.Int, "5000", "How often this share group's members heartbeat.", v => AtLeast(v, 1)),
        new("share.record.lock.duration.ms", ConfigType.Int, "30000", "How long this share group's records stay locked.", v => AtLeast(v, 1000)),
    }.ToFrozenDictionary(d => d.Name, StringComparer.Ordinal);

    /// <summary>Topic config -> the cluster-wide broker config that supplies its default (Kafka's TOPIC_CONFIG_SYNONYMS).</summary>
    public static readonly FrozenDictionary<string, string> TopicBrokerSynonyms = new Dictionary<string, string>
    {
        ["max.message.bytes"] = "message.max.bytes",
        ["retention.ms"] = "log.retention.ms",
        ["segment.bytes"] = "log.segment.bytes",
        ["min.insync.replicas"] = "min.insync.replicas",
        ["unclean.leader.election.enable"] = "unclean.leader.election.enable",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>Group config -> the broker config that supplies its default.</summary>
    public static readonly FrozenDictionary<string, string> GroupBrokerDefaults = new Dictionary<string, string>
    {
        ["consumer.session.timeout.ms"] = "group.consumer.session.timeout.ms",
        ["consumer.heartbeat.interval.ms"] = "group.consumer.heartbeat.interval.ms",
        ["share.session.timeout.ms"] = "group.share.session.timeout.ms",
        ["share.heartbeat.interval.ms"] = "group.share.heartbeat.interval.ms",
        ["share.record.lock.duration.ms"] = "group.share.record.lock.duration.ms",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>Effective cluster-wide value of a broker config: recorded (static or dynamic), else the default (may be null).</summary>
    public static string? EffectiveBrokerValue(IReadOnlyDictionary<string, string> brokerConfigs, string name)
        => brokerConfigs.TryGetValue(name, out var v) ? v : Broker.TryGetValue(name, out var d) ? d.DefaultValue : null;

    /// <summary>Effective value of a topic config: the topic's own value, else the default.</summary>
    public static string? EffectiveTopicValue(IReadOnlyDictionary<string, string> topicConfigs, string name)
        => topicConfigs.TryGetValue(name, out var v) ? v : Topic.TryGetValue(name, out var d) ? d.DefaultValue : null;

    public static long GetLong(IReadOnlyDictionary<string, string> configs, string name)
        => long.Parse(EffectiveTopicValue(configs, name) ?? throw new KeyNotFoundException(name), CultureInfo.InvariantCulture);
}
