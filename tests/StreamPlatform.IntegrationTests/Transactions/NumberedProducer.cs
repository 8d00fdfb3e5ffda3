using System.Collections.Concurrent;
using System.Diagnostics;
using Confluent.Kafka;

namespace StreamPlatform.IntegrationTests.Transactions;

/// <summary>
/// An idempotent acks=all Confluent.Kafka producer writing records 0..n-1 (key = the number,
/// record n to partition n % partitions) at a fixed rate, counting what was acknowledged where.
/// librdkafka retries without limit until message.timeout.ms, keeping order per partition.
/// </summary>
public sealed class NumberedProducer : IDisposable
{
    private readonly IProducer<byte[], byte[]> _producer;
    private readonly int _partitions;
    private readonly ConcurrentDictionary<string, long> _errors = new();
    private long _sent;
    private long _acked;
    private long _failed;

    public NumberedProducer(string bootstrap, string topic, int partitions, Action<string> log)
    {
        Topic = topic;
        _partitions = partitions;
        _producer = new ProducerBuilder<byte[], byte[]>(new ProducerConfig
        {
            BootstrapServers = bootstrap,
            EnableIdempotence = true,
            Acks = Acks.All,
            LingerMs = 5,
            MessageTimeoutMs = 120_000,
            RetryBackoffMs = 100,
            SocketTimeoutMs = 10_000,
        }).SetErrorHandler((_, e) =>
        {
            _errors.AddOrUpdate($"client {e.Code}{(e.IsFatal ? " (fatal)" : "")}", 1, (_, n) => n + 1);
            if (e.IsFatal)
                log($"FATAL producer error {e.Code}: {e.Reason}");
        }).Build();
    }

    public string Topic { get; }

    public long Sent => Interlocked.Read(ref _sent);

    public long Acked => Interlocked.Read(ref _acked);

    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>Record number -> offset its delivery report gave.</summary>
    public ConcurrentDictionary<long, long> AckedOffsets { get; } = new();

    public void Produce(int records, int recordsPerSecond, int valueBytes)
    {
        var value = new byte[valueBytes];
        Array.Fill(value, (byte)'v');
        var clock = Stopwatch.StartNew();
        for (long n = 0; n < records; n++)
        {
            while (n > clock.Elapsed.TotalSeconds * recordsPerSecond)
                Thread.Sleep(1);
            var number = n;
            while (true)
            {
                try
                {
                    _producer.Produce(new TopicPartition(Topic, (int)(n % _partitions)),
                        new Message<byte[], byte[]> { Key = ExactlyOnceCheck.Key(n), Value = value }, r => OnDelivery(number, r));
                    break;
                }
                catch (ProduceException<byte[], byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                {
                    Thread.Sleep(5);
                }
            }
            Interlocked.Increment(ref _sent);
        }
    }

    /// <summary>Waits until at least <paramref name="count"/> records were handed to the client.</summary>
    public async Task WaitSentAsync(long count)
    {
        while (Sent < count)
            await Task.Delay(10);
    }

    /// <summary>Records still undelivered after the timeout.</summary>
    public int Flush(TimeSpan timeout) => _producer.Flush(timeout);

    public string DescribeErrors() =>
        _errors.IsEmpty ? "none" : string.Join(", ", _errors.OrderByDescending(e => e.Value).Select(e => $"{e.Key} x{e.Value}"));

    public void Dispose() => _producer.Dispose();

    private void OnDelivery(long number, DeliveryReport<byte[], byte[]> report)
    {
        if (report.Error.IsError)
        {
            Interlocked.Increment(ref _failed);
            _errors.AddOrUpdate($"delivery {report.Error.Code}", 1, (_, n) => n + 1);
            return;
        }
        AckedOffsets[number] = report.Offset.Value;
        Interlocked.Increment(ref _acked);
    }
}
