using System.Collections.Concurrent;
using System.Diagnostics;
using Confluent.Kafka;

namespace StreamPlatform.Faults;

/// <summary>
/// A Confluent.Kafka producer writing at a fixed rate on its own thread: acks=all, retries on
/// (librdkafka's default), not idempotent (not supported yet), one request in flight so a retry
/// cannot reorder a partition. Record seq goes to partition seq % partitions. Every delivery
/// report without error is remembered with its partition and offset.
/// </summary>
public sealed class ProducerPump : IDisposable
{
    /// <summary>Bounds the memory of the acknowledgement log (24 bytes a record): the pump stops sending at this many records.</summary>
    public const long SentRecordsMax = 4_000_000;

    /// <summary>A record that cannot be delivered this long fails (and may or may not be in the log: both are allowed).</summary>
    private const int MessageTimeoutMs = 60_000;

    /// <summary>Distinct delivery error texts kept; a broken cluster could produce many.</summary>
    private const int ErrorKindsMax = 32;

    private readonly IProducer<byte[], byte[]> _producer;
    private readonly string _topic;
    private readonly FaultScenarioOptions _options;
    private readonly List<AckedRecord> _acked = [];
    private readonly long[] _ackedByPartition;
    private readonly ConcurrentDictionary<string, long> _errors = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private Thread? _thread;
    private long _sent;
    private long _failed;

    public ProducerPump(string bootstrap, string topic, FaultScenarioOptions options)
    {
        _topic = topic;
        _options = options;
        _ackedByPartition = new long[options.Partitions];
        _producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig
        {
            BootstrapServers = bootstrap,
            Acks = Acks.All,
            EnableIdempotence = false,
            MaxInFlight = 1,
            LingerMs = 5,
            MessageTimeoutMs = MessageTimeoutMs,
        })
            .SetLogHandler((_, _) => { }) // connection errors while a broker is down are expected; delivery reports count what matters
            .SetErrorHandler((_, e) => CountError("client: " + e.Reason))
            .Build();
    }

    public long Sent => Interlocked.Read(ref _sent);

    public long Failed => Interlocked.Read(ref _failed);

    public long Acked
    {
        get
        {
            lock (_acked) return _acked.Count;
        }
    }

    public long AckedOn(int partition) => Interlocked.Read(ref _ackedByPartition[partition]);

    /// <summary>Delivery errors and client errors by text, with counts.</summary>
    public IReadOnlyDictionary<string, long> Errors => _errors;

    public void Start()
    {
        if (_thread is not null) throw new InvalidOperationException("The pump runs already.");
        _thread = new Thread(Run) { IsBackground = true, Name = "fault-producer" };
        _thread.Start();
    }

    /// <summary>Stops sending and waits for outstanding deliveries; returns how many are still undecided.</summary>
    public int StopAndFlush(TimeSpan timeout)
    {
        _stop.Cancel();
        _thread?.Join();
        return _producer.Flush(timeout);
    }

    public List<AckedRecord> AckedRecords()
    {
        lock (_acked) return [.. _acked];
    }

    private void Run()
    {
        var clock = Stopwatch.StartNew();
        long seq = 0;
        while (!_stop.IsCancellationRequested && seq < SentRecordsMax)
        {
            var due = Math.Min(SentRecordsMax, (long)(clock.Elapsed.TotalSeconds * _options.RecordsPerSecond));
            while (seq < due && !_stop.IsCancellationRequested)
            {
                var current = seq;
                var partition = (int)(current % _options.Partitions);
                try
                {
                    _producer.Produce(new TopicPartition(_topic, partition),
                        new Message<byte[], byte[]> { Key = FaultRecords.Key(current), Value = FaultRecords.Value(_options.Seed, current, _options.RecordBytes) },
                        report => OnDelivery(current, report));
                }
                catch (ProduceException<byte[], byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                {
                    // The client's own bounded queue is full (a partition is stalled): send the rest later, in order.
                    break;
                }
                seq++;
                Interlocked.Increment(ref _sent);
            }
            Thread.Sleep(1);
        }
    }

    private void OnDelivery(long seq, DeliveryReport<byte[], byte[]> report)
    {
        if (report.Error.IsError)
        {
            Interlocked.Increment(ref _failed);
            CountError(report.Error.Code.ToString());
            return;
        }
        lock (_acked)
            _acked.Add(new AckedRecord(seq, report.Partition.Value, report.Offset.Value));
        Interlocked.Increment(ref _ackedByPartition[report.Partition.Value]);
    }

    private void CountError(string text)
    {
        if (_errors.Count < ErrorKindsMax || _errors.ContainsKey(text))
            _errors.AddOrUpdate(text, 1, (_, n) => n + 1);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _thread?.Join();
        _producer.Dispose();
        _stop.Dispose();
    }
}
