using System.Diagnostics.Metrics;
using StreamPlatform.Broker.Groups;
using StreamPlatform.Broker.Replication;
using StreamPlatform.Broker.Storage;

namespace StreamPlatform.Broker.Services;

/// <summary>The "StreamPlatform.Broker" meter.</summary>
public sealed class BrokerMetrics : IDisposable
{
    public const string MeterName = "StreamPlatform.Broker";
    private readonly Meter _meter = new(MeterName);

    public BrokerMetrics(LogManager logs)
    {
        BytesIn = _meter.CreateCounter<long>("broker.bytes_in", "By", "Record bytes appended by Produce.");
        BytesOut = _meter.CreateCounter<long>("broker.bytes_out", "By", "Record bytes returned by Fetch.");
        ProduceRequests = _meter.CreateCounter<long>("broker.produce.requests", "{request}", "Produce calls.");
        FetchRequests = _meter.CreateCounter<long>("broker.fetch.requests", "{request}", "Fetch calls.");
        ReplicationBytesOut = _meter.CreateCounter<long>("broker.replication.bytes_out", "By", "Record bytes sent to followers.");
        _meter.CreateObservableGauge("broker.log_end_offset", () => logs.Logs.Select(l => new Measurement<long>(l.LogEndOffset,
            new KeyValuePair<string, object?>("topic", l.TopicPartition.Topic), new KeyValuePair<string, object?>("partition", l.TopicPartition.Partition))),
            "{offset}", "Log end offset per partition.");
        _meter.CreateObservableGauge("broker.log_start_offset", () => logs.Logs.Select(l => new Measurement<long>(l.LogStartOffset,
            new KeyValuePair<string, object?>("topic", l.TopicPartition.Topic), new KeyValuePair<string, object?>("partition", l.TopicPartition.Partition))),
            "{offset}", "Log start offset per partition (moved by retention and DeleteRecords).");
        _meter.CreateObservableGauge("broker.log.size", () => logs.Logs.Select(l => new Measurement<long>(l.SizeBytes,
            new KeyValuePair<string, object?>("topic", l.TopicPartition.Topic), new KeyValuePair<string, object?>("partition", l.TopicPartition.Partition))),
            "By", "Bytes of segments per partition.");
        _meter.CreateObservableGauge("broker.partitions.read_only", () => logs.Logs.Count(l => l.ReadOnlyReason is not null),
            "{partition}", "Partitions refusing appends after a failed write or fsync (disk full, I/O error).");
    }

    /// <summary>
    /// The replication gauges of <paramref name="replicas"/> (Kafka's UnderReplicatedPartitions,
    /// UnderMinIsrPartitionCount, IsrShrinksPerSec/IsrExpandsPerSec, and per partition the ISR
    /// size and each follower's lag in records and ms). Called once by the ReplicaManager.
    /// </summary>
    public void ObserveReplication(ReplicaManager replicas)
    {
        _meter.CreateObservableGauge("broker.partitions", () => replicas.Partitions.Count(p => p.Role != ReplicaRole.None),
            "{partition}", "Partition replicas hosted here, led or followed (Kafka's PartitionCount).");
        _meter.CreateObservableGauge("broker.partitions.leader", () => replicas.Partitions.Count(p => p.Role == ReplicaRole.Leader),
            "{partition}", "Partitions led here (Kafka's LeaderCount).");
        _meter.CreateObservableGauge("broker.partitions.under_replicated", () => replicas.Summarize().UnderReplicated,
            "{partition}", "Partitions led here whose ISR lacks some of their replicas.");
        _meter.CreateObservableGauge("broker.partitions.under_min_isr", () => replicas.Summarize().UnderMinIsr,
            "{partition}", "Partitions led here whose ISR is below min.insync.replicas: acks=all writes are refused (offline for them).");
        _meter.CreateObservableCounter("broker.isr.shrinks", () => replicas.IsrShrinks, "{change}", "ISR shrinks the controller accepted.");
        _meter.CreateObservableCounter("broker.isr.expands", () => replicas.IsrExpands, "{change}", "ISR expansions the controller accepted.");
        _meter.CreateObservableGauge("broker.partition.isr_size", () => replicas.Summarize().Partitions.Select(p => new Measurement<int>(p.Isr.Count,
            new KeyValuePair<string, object?>("topic", p.Topic), new KeyValuePair<string, object?>("partition", p.Partition))),
            "{replica}", "ISR size per partition led here.");
        _meter.CreateObservableGauge("broker.follower.lag_records", () => replicas.Summarize().Partitions.SelectMany(p => p.Followers.Select(f => new Measurement<long>(f.LagRecords,
            new KeyValuePair<string, object?>("topic", p.Topic), new KeyValuePair<string, object?>("partition", p.Partition), new KeyValuePair<string, object?>("follower", f.BrokerId)))),
            "{record}", "Records a follower is behind the leader's log end (-1: not fetched yet).");
        _meter.CreateObservableGauge("broker.follower.lag_ms", () => replicas.Summarize().Partitions.SelectMany(p => p.Followers.Select(f => new Measurement<long>(f.LagMs,
            new KeyValuePair<string, object?>("topic", p.Topic), new KeyValuePair<string, object?>("partition", p.Partition), new KeyValuePair<string, object?>("follower", f.BrokerId)))),
            "ms", "Time since a follower was last caught up with the leader.");
    }

    /// <summary>
    /// Consumer lag of the groups coordinated here (Kafka's kafka-consumer-groups LAG): the
    /// partition's high watermark minus the group's committed offset, per group, topic and
    /// partition. Only partitions this broker holds a replica of are reported (a follower's high
    /// watermark trails the leader's by at most one fetch); others are left out rather than
    /// guessed. Called once by the group coordinator's registration.
    /// </summary>
    public void ObserveGroups(GroupCoordinator groups, ReplicaManager replicas)
    {
        _meter.CreateObservableGauge("broker.consumer_group.lag", () => ConsumerLag(groups, replicas),
            "{message}", "Records of a partition after the consumer group's committed offset (high watermark - committed offset).");
    }

    private static IEnumerable<Measurement<long>> ConsumerLag(GroupCoordinator groups, ReplicaManager replicas)
    {
        foreach (var (groupId, topic, partition, offset) in groups.CommittedOffsetsSnapshot())
        {
            if (offset < 0 || !replicas.TryGetPartition(new TopicPartition(topic, partition), out var replica)) continue;
            yield return new Measurement<long>(Math.Max(0, replica.HighWatermark - offset),
                new KeyValuePair<string, object?>("messaging.consumer.group.name", groupId),
                new KeyValuePair<string, object?>("topic", topic), new KeyValuePair<string, object?>("partition", partition));
        }
    }

    public Counter<long> BytesIn { get; }
    public Counter<long> BytesOut { get; }
    public Counter<long> ProduceRequests { get; }
    public Counter<long> FetchRequests { get; }
    public Counter<long> ReplicationBytesOut { get; }

    public void Dispose() => _meter.Dispose();
}
