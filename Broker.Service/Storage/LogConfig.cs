using System.Globalization;
using StreamPlatform.Protos.Configs;

namespace StreamPlatform.Broker.Storage;

/// <summary>
/// The topic configs a partition log obeys, resolved (topic value, else the catalog default).
/// Immutable: a config change swaps the whole object, so an append sees one consistent set.
/// </summary>
public sealed record LogConfig
{
    public int SegmentBytes { get; init; } = 1073741824;
    public long SegmentMs { get; init; } = 604800000;
    public int SegmentIndexBytes { get; init; } = 10485760;
    public int IndexIntervalBytes { get; init; } = 4096;
    /// <summary>max.message.bytes: the largest single record batch accepted on append.</summary>
    public int MaxMessageBytes { get; init; } = 1048588;
    public bool LogAppendTime { get; init; }
    /// <summary>flush.messages: fsync after this many messages (default: never, rely on roll/close).</summary>
    public long FlushMessages { get; init; } = long.MaxValue;
    /// <summary>flush.ms: fsync when the oldest unflushed message is this old (seam; see PartitionLog.MaybeFlush).</summary>
    public long FlushMs { get; init; } = long.MaxValue;

    /// <summary>message.timestamp.before.max.ms: oldest accepted CreateTime, relative to now.</summary>
    public long TimestampBeforeMaxMs { get; init; } = long.MaxValue;
    /// <summary>message.timestamp.after.max.ms: furthest accepted CreateTime in the future.</summary>
    public long TimestampAfterMaxMs { get; init; } = long.MaxValue;

    /// <summary>cleanup.policy includes compact: every record needs a key, and the cleaner keeps the latest per key.</summary>
    public bool Compacted { get; init; }
    /// <summary>cleanup.policy includes delete: retention.ms / retention.bytes apply.</summary>
    public bool DeleteEnabled { get; init; } = true;
    /// <summary>retention.ms: segments whose newest record is older than this are deleted (-1: forever).</summary>
    public long RetentionMs { get; init; } = 604800000;
    /// <summary>retention.bytes: oldest segments are deleted while the log stays at or above this size without them (-1: no limit).</summary>
    public long RetentionBytes { get; init; } = -1;
    /// <summary>file.delete.delay.ms: a deleted segment's files stay (renamed .deleted) this long, so reads in flight finish.</summary>
    public long FileDeleteDelayMs { get; init; } = 60000;
    /// <summary>delete.retention.ms: how long a tombstone survives after the cleaner first saw it in the cleaned part.</summary>
    public long DeleteRetentionMs { get; init; } = 86400000;
    /// <summary>min.cleanable.dirty.ratio: dirty bytes / cleanable bytes before the cleaner runs on a log.</summary>
    public double MinCleanableDirtyRatio { get; init; } = 0.5;
    /// <summary>min.compaction.lag.ms: records younger than this are never compacted.</summary>
    public long MinCompactionLagMs { get; init; }
    /// <summary>max.compaction.lag.ms: a log whose oldest dirty record is older than this is cleaned whatever its dirty ratio.</summary>
    public long MaxCompactionLagMs { get; init; } = long.MaxValue;

    /// <summary>producer.id.expiration.ms (broker config): an idle producer without an open transaction is forgotten after this long.</summary>
    public long ProducerIdExpirationMs { get; init; } = 86400000;
    /// <summary>producer.id.expiration.check.interval.ms (broker config): how often expired producers are looked for.</summary>
    public long ProducerIdExpirationCheckIntervalMs { get; init; } = 600000;

    public static readonly LogConfig Default = new();

    /// <summary>
    /// From a topic's explicit configs; broker-wide defaults (message.max.bytes, log.segment.bytes)
    /// apply when the topic does not set its own value.
    /// </summary>
    public static LogConfig From(IReadOnlyDictionary<string, string> topicConfigs, IReadOnlyDictionary<string, string>? brokerConfigs = null)
    {
        string Get(string topicName, string? brokerName = null)
        {
            if (topicConfigs.TryGetValue(topicName, out var v) && ConfigCatalog.Topic[topicName].Validate(v) is null) return v;
            if (brokerName is not null && brokerConfigs is not null && brokerConfigs.TryGetValue(brokerName, out var b)
                && ConfigCatalog.Broker[brokerName].Validate(b) is null) return b;
            return ConfigCatalog.Topic[topicName].DefaultValue!;
        }
        int I(string n, string? b = null) => int.Parse(Get(n, b), CultureInfo.InvariantCulture);
        long L(string n, string? b = null) => long.Parse(Get(n, b), CultureInfo.InvariantCulture);
        // Broker-only configs (no topic-level name).
        long B(string n) => long.Parse(brokerConfigs is not null && brokerConfigs.TryGetValue(n, out var v) && ConfigCatalog.Broker[n].Validate(v) is null
            ? v : ConfigCatalog.Broker[n].DefaultValue!, CultureInfo.InvariantCulture);
        return new LogConfig
        {
            SegmentBytes = I("segment.bytes", "log.segment.bytes"),
            SegmentMs = L("segment.ms"),
            SegmentIndexBytes = I("segment.index.bytes"),
            IndexIntervalBytes = I("index.interval.bytes"),
            MaxMessageBytes = I("max.message.bytes", "message.max.bytes"),
            LogAppendTime = Get("message.timestamp.type") == "LogAppendTime",
            FlushMessages = L("flush.messages"),
            FlushMs = L("flush.ms"),
            TimestampBeforeMaxMs = L("message.timestamp.before.max.ms"),
            Compacted = Get("cleanup.policy").Split(',', StringSplitOptions.TrimEntries).Contains("compact"),
            DeleteEnabled = Get("cleanup.policy").Split(',', StringSplitOptions.TrimEntries).Contains("delete"),
            RetentionMs = L("retention.ms", "log.retention.ms"),
            RetentionBytes = L("retention.bytes"),
            FileDeleteDelayMs = L("file.delete.delay.ms"),
            DeleteRetentionMs = L("delete.retention.ms"),
            MinCleanableDirtyRatio = double.Parse(Get("min.cleanable.dirty.ratio"), CultureInfo.InvariantCulture),
            MinCompactionLagMs = L("min.compaction.lag.ms"),
            MaxCompactionLagMs = L("max.compaction.lag.ms"),
            TimestampAfterMaxMs = L("message.timestamp.after.max.ms"),
            ProducerIdExpirationMs = B("producer.id.expiration.ms"),
            ProducerIdExpirationCheckIntervalMs = B("producer.id.expiration.check.interval.ms"),
        };
    }
}
