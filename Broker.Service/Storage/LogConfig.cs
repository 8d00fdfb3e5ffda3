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

    /// <summary>cleanup.policy includes compact: every record needs a key.</summary>
    public bool Compacted { get; init; }

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
            TimestampAfterMaxMs = L("message.timestamp.after.max.ms"),
        };
    }
}
