using System.Collections.Frozen;
using System.Globalization;
using Google.Protobuf.Collections;
using StreamPlatform.Protos.Configs;
using StreamPlatform.Protos.Grpc;

namespace StreamPlatform.Broker.Groups;

/// <summary>
/// The broker configs the group coordinator uses (cluster-wide, from the controller's metadata),
/// and the per-group overrides of KIP-848 group configs (consumer.session.timeout.ms,
/// consumer.heartbeat.interval.ms) set by AlterConfigs on GROUP resources.
/// </summary>
public sealed record GroupConfig
{
    public int OffsetsTopicPartitions { get; init; } = 50;
    public int OffsetsTopicReplicationFactor { get; init; } = 3;
    /// <summary>offsets.commit.timeout.ms: how long a coordinator write waits for the high watermark before COORDINATOR_NOT_AVAILABLE.</summary>
    public int OffsetsCommitTimeoutMs { get; init; } = 5000;
    public int InitialRebalanceDelayMs { get; init; } = 3000;
    public int MinSessionTimeoutMs { get; init; } = 6000;
    public int MaxSessionTimeoutMs { get; init; } = 1_800_000;
    public int GroupMaxSize { get; init; } = int.MaxValue;
    public long OffsetsRetentionMs { get; init; } = 10080L * 60_000;
    public long OffsetsRetentionCheckIntervalMs { get; init; } = 600_000;
    public int OffsetMetadataMaxBytes { get; init; } = 4096;
    public int ConsumerSessionTimeoutMs { get; init; } = 45_000;
    public int ConsumerHeartbeatIntervalMs { get; init; } = 5_000;
    public int ConsumerGroupMaxSize { get; init; } = int.MaxValue;
    /// <summary>Groups with their own consumer session timeout / heartbeat interval.</summary>
    public FrozenDictionary<string, (int SessionTimeoutMs, int HeartbeatIntervalMs)> ConsumerGroupOverrides { get; init; }
        = FrozenDictionary<string, (int, int)>.Empty;

    /// <summary>The consumer.session.timeout.ms in force for <paramref name="groupId"/>.</summary>
    public int ConsumerSessionTimeoutMsOf(string groupId)
        => ConsumerGroupOverrides.TryGetValue(groupId, out var o) ? o.SessionTimeoutMs : ConsumerSessionTimeoutMs;

    /// <summary>The consumer.heartbeat.interval.ms in force for <paramref name="groupId"/>.</summary>
    public int ConsumerHeartbeatIntervalMsOf(string groupId)
        => ConsumerGroupOverrides.TryGetValue(groupId, out var o) ? o.HeartbeatIntervalMs : ConsumerHeartbeatIntervalMs;

    public static GroupConfig From(IReadOnlyDictionary<string, string> brokerConfigs, RepeatedField<ConfigSet>? groupConfigs = null)
    {
        long Get(string name)
        {
            var value = brokerConfigs.TryGetValue(name, out var v) ? v : ConfigCatalog.Broker[name].DefaultValue!;
            return long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed)
                ? parsed
                : long.Parse(ConfigCatalog.Broker[name].DefaultValue!, CultureInfo.InvariantCulture);
        }
        return new GroupConfig
        {
            OffsetsTopicPartitions = (int)Math.Clamp(Get("offsets.topic.num.partitions"), 1, 10_000),
            OffsetsTopicReplicationFactor = (int)Math.Clamp(Get("offsets.topic.replication.factor"), 1, 100),
            OffsetsCommitTimeoutMs = (int)Math.Clamp(Get("offsets.commit.timeout.ms"), 1, int.MaxValue),
            InitialRebalanceDelayMs = (int)Math.Clamp(Get("group.initial.rebalance.delay.ms"), 0, int.MaxValue),
            MinSessionTimeoutMs = (int)Math.Clamp(Get("group.min.session.timeout.ms"), 1, int.MaxValue),
            MaxSessionTimeoutMs = (int)Math.Clamp(Get("group.max.session.timeout.ms"), 1, int.MaxValue),
            GroupMaxSize = (int)Math.Clamp(Get("group.max.size"), 1, int.MaxValue),
            OffsetsRetentionMs = Math.Clamp(Get("offsets.retention.minutes"), 1, long.MaxValue / 60_000) * 60_000,
            OffsetsRetentionCheckIntervalMs = Math.Max(1, Get("offsets.retention.check.interval.ms")),
            OffsetMetadataMaxBytes = (int)Math.Clamp(Get("offset.metadata.max.bytes"), 0, int.MaxValue),
            ConsumerSessionTimeoutMs = (int)Math.Clamp(Get("group.consumer.session.timeout.ms"), 1, int.MaxValue),
            ConsumerHeartbeatIntervalMs = (int)Math.Clamp(Get("group.consumer.heartbeat.interval.ms"), 1, int.MaxValue),
            ConsumerGroupMaxSize = (int)Math.Clamp(Get("group.consumer.max.size"), 1, int.MaxValue),
            ConsumerGroupOverrides = (groupConfigs ?? []).ToFrozenDictionary(g => g.Name, g =>
                (Math.Max(1, GroupConfigValues.Effective(g.Configs, brokerConfigs, "consumer.session.timeout.ms")),
                 Math.Max(1, GroupConfigValues.Effective(g.Configs, brokerConfigs, "consumer.heartbeat.interval.ms"))), StringComparer.Ordinal),
        };
    }
}
