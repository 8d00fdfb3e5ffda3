using System.Diagnostics.Metrics;
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

    public Counter<long> BytesIn { get; }
    public Counter<long> BytesOut { get; }
    public Counter<long> ProduceRequests { get; }
    public Counter<long> FetchRequests { get; }

    public void Dispose() => _meter.Dispose();
}
