using System.Collections.Frozen;

namespace StreamPlatform.Protos.Grpc.Clients;

/// <summary>
/// An immutable, indexed view of one <see cref="MetadataSnapshot"/>: lookups by topic name, topic
/// id and broker id without scanning. Built once per snapshot by <see cref="MetadataWatcher"/>.
/// </summary>
public sealed class ClusterMetadata
{
    public static readonly ClusterMetadata Empty = new(new MetadataSnapshot());

    public ClusterMetadata(MetadataSnapshot snapshot)
    {
        Snapshot = snapshot;
        TopicsByName = snapshot.Topics.ToFrozenDictionary(t => t.Name, StringComparer.Ordinal);
        TopicsById = snapshot.Topics
            .Where(t => t.TopicId.Length == 16)
            .ToFrozenDictionary(t => TopicIds.ToGuid(t.TopicId));
        BrokersById = snapshot.Brokers.ToFrozenDictionary(b => b.BrokerId);
        LiveGateways = snapshot.Gateways.Where(g => !g.Fenced).OrderBy(g => g.NodeId).ToArray();
        // Merged once per snapshot: the per-broker sets are few and small, and brokers read them on hot paths.
        _perBrokerConfigs = snapshot.PerBrokerConfigs.ToFrozenDictionary(b => b.BrokerId, b =>
        {
            var merged = new Dictionary<string, string>(snapshot.BrokerConfigs, StringComparer.Ordinal);
            foreach (var (name, value) in b.Configs) merged[name] = value;
            return (IReadOnlyDictionary<string, string>)merged.ToFrozenDictionary(StringComparer.Ordinal);
        });
    }

    private readonly FrozenDictionary<int, IReadOnlyDictionary<string, string>> _perBrokerConfigs;

    /// <summary>
    /// The broker configs in force on broker <paramref name="brokerId"/>: its per-broker dynamic
    /// values (Kafka's DYNAMIC_BROKER_CONFIG) over the cluster-wide ones (catalog defaults not included).
    /// </summary>
    public IReadOnlyDictionary<string, string> BrokerConfigsFor(int brokerId)
        => _perBrokerConfigs.TryGetValue(brokerId, out var merged) ? merged : Snapshot.BrokerConfigs;

    public MetadataSnapshot Snapshot { get; }
    public long Epoch => Snapshot.MetadataEpoch;
    public FrozenDictionary<string, TopicInfo> TopicsByName { get; }
    public FrozenDictionary<Guid, TopicInfo> TopicsById { get; }
    public FrozenDictionary<int, BrokerInfo> BrokersById { get; }
    /// <summary>Unfenced gateways ordered by node id.</summary>
    public IReadOnlyList<GatewayInfo> LiveGateways { get; }

    public bool TryGetPartition(string topic, int partition, out TopicInfo topicInfo, out PartitionInfo partitionInfo)
    {
        partitionInfo = null!;
        if (!TopicsByName.TryGetValue(topic, out topicInfo!)) return false;
        if ((uint)partition >= (uint)topicInfo.Partitions.Count) return false;
        partitionInfo = topicInfo.Partitions[partition];
        return true;
    }

    /// <summary>The live broker leading a partition, or null (no leader, or leader fenced/unknown).</summary>
    public BrokerInfo? LeaderOf(PartitionInfo partition)
        => partition.Leader >= 0 && BrokersById.TryGetValue(partition.Leader, out var b) && !b.Fenced ? b : null;
}

/// <summary>Kafka topic ids: 16 bytes on the wire, big-endian, as <see cref="Guid"/> in code.</summary>
public static class TopicIds
{
    public static Guid ToGuid(Google.Protobuf.ByteString bytes) => new(bytes.Span, bigEndian: true);

    public static Google.Protobuf.ByteString ToByteString(Guid id)
    {
        Span<byte> buffer = stackalloc byte[16];
        id.TryWriteBytes(buffer, bigEndian: true, out _);
        return Google.Protobuf.ByteString.CopyFrom(buffer);
    }
}
