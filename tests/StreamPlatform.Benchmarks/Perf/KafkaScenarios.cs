using System.Buffers.Binary;
using System.Diagnostics;
using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace StreamPlatform.Benchmarks.Perf;

/// <summary>The end-to-end stamp the consumer reads back: producer Stopwatch ticks and the value size.</summary>
public readonly record struct Stamp(long Ticks, int Bytes);

/// <summary>Reads only the first 8 bytes of the value: no byte[] per consumed record.</summary>
public sealed class StampDeserializer : IDeserializer<Stamp>
{
    public Stamp Deserialize(ReadOnlySpan<byte> data, bool isNull, SerializationContext context) =>
        isNull || data.Length < 8 ? new Stamp(-1, data.Length) : new Stamp(BinaryPrimitives.ReadInt64LittleEndian(data), data.Length);
}

/// <summary>
/// One producer and (optionally) one consumer in this process, driven on dedicated threads.
/// The producer writes <see cref="Stopwatch.GetTimestamp"/> into the first 8 bytes of the value
/// just before each Produce call (librdkafka copies the value at once, so one buffer is reused);
/// the consumer subtracts it from its own clock: end-to-end latency on one clock.
/// </summary>
/// <param name="clientSettings">librdkafka settings this target needs (e.g. the reference Kafka's
/// protocol fallback), applied to every producer and consumer before the user's own.</param>
public sealed class KafkaScenarios(PerfOptions options, IReadOnlyDictionary<string, string>? clientSettings = null)
{
    /// <summary>A consumer that makes no progress this long is declared stuck.</summary>
    private static readonly TimeSpan ConsumerStallTimeout = TimeSpan.FromSeconds(60);

    private static readonly TimeSpan FlushTimeout = TimeSpan.FromSeconds(120);

    /// <summary>librdkafka statistics every second, for the producer latency breakdown.</summary>
    private const int StatisticsIntervalMs = 1000;

    private static readonly Dictionary<string, string> EmptySettings = [];

    public static string NewTopicName(string scenario) => $"bench-{scenario}-{Guid.NewGuid().ToString("N")[..8]}";

    public async Task CreateTopicAsync(string bootstrap, string topic, int partitions, short replicationFactor)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap, SocketTimeoutMs = 30000 }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = partitions, ReplicationFactor = replicationFactor }],
            new CreateTopicsOptions { RequestTimeout = TimeSpan.FromSeconds(30), OperationTimeout = TimeSpan.FromSeconds(30) });
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var md = admin.GetMetadata(topic, TimeSpan.FromSeconds(10));
            var t = md.Topics.SingleOrDefault(x => x.Topic == topic);
            if (t is not null && t.Error.Code == ErrorCode.NoError && t.Partitions.Count == partitions
                && t.Partitions.All(p => p.Leader >= 0 && p.Error.Code == ErrorCode.NoError))
                return;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Topic {topic} has no leader for every partition after 30 s: {t?.Error}");
            await Task.Delay(100);
        }
    }

    public ProducerConfig ProducerConfig(string bootstrap, string acks, bool idempotent = false)
    {
        var config = new ProducerConfig
        {
            BootstrapServers = bootstrap,
            Acks = acks switch { "0" => Acks.None, "1" => Acks.Leader, _ => Acks.All },
            CompressionType = options.Compression switch
            {
                "gzip" => CompressionType.Gzip,
                "snappy" => CompressionType.Snappy,
                "lz4" => CompressionType.Lz4,
                "zstd" => CompressionType.Zstd,
                _ => CompressionType.None,
            },
            LingerMs = 5,
            EnableIdempotence = idempotent,
            MessageTimeoutMs = 120_000,
            SocketNagleDisable = true,
        };
        foreach (var (k, v) in clientSettings ?? EmptySettings)
            config.Set(k, v);
        foreach (var (k, v) in options.ProducerConfig)
            config.Set(k, v);
        return config;
    }

    public ConsumerConfig ConsumerConfig(string bootstrap)
    {
        var config = new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            // Partitions are assigned by hand (no group coordination); librdkafka still wants an id.
            GroupId = "bench-" + Guid.NewGuid().ToString("N")[..8],
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnablePartitionEof = false,
            SocketNagleDisable = true,
        };
        foreach (var (k, v) in clientSettings ?? EmptySettings)
            config.Set(k, v);
        foreach (var (k, v) in options.ConsumerConfig)
            config.Set(k, v);
        return config;
    }

    /// <summary>
    /// Producer (and, with <paramref name="withConsumer"/>, a consumer of the same topic) for
    /// warmup + duration (or --records); records/s and MB/s from producer acknowledgements in the
    /// measured window; consumer figures and end-to-end latency of the records sent in that window.
    /// </summary>
    public RunResult ProduceConsume(ScenarioSpec spec, string bootstrap, string topic, int run, bool withConsumer)
    {
        var result = new RunResult { Run = run };
        var counters = new Counters();
        var histogram = new LatencyHistogram();
        var stats = new ProducerStatsCollector();
        var producerConfig = ProducerConfig(bootstrap, spec.Acks, spec.Idempotent);
        producerConfig.StatisticsIntervalMs ??= StatisticsIntervalMs;
        using var producer = new ProducerBuilder<Null, byte[]>(producerConfig)
            .SetErrorHandler((_, e) => counters.ClientError(e))
            .SetLogHandler((_, _) => { })
            .SetStatisticsHandler((_, json) => stats.Add(json, counters.InMeasuredWindow))
            .Build();

        IConsumer<Ignore, Stamp>? consumer = null;
        Thread? consumerThread = null;
        var stopConsumer = new CancellationTokenSource();
        if (withConsumer)
        {
            consumer = new ConsumerBuilder<Ignore, Stamp>(ConsumerConfig(bootstrap))
                .SetValueDeserializer(new StampDeserializer())
                .SetErrorHandler((_, e) => counters.ClientError(e))
                .SetLogHandler((_, _) => { })
                .Build();
            consumer.Assign(Enumerable.Range(0, options.Partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
            consumerThread = new Thread(() => ConsumeLoop(consumer, counters, histogram, stopConsumer.Token))
            {
                IsBackground = true, Name = "bench-consumer",
            };
            consumerThread.Start();
        }

        var progressRates = (produced: new RateMeter(), consumed: new RateMeter());
        var label = $"{spec.Name} run {run}";
        try
        {
            using (new Progress(label, () => Status(counters, spec.RecordBytes, progressRates.produced, progressRates.consumed, withConsumer, histogram)))
            {
                ProduceLoop(producer, spec, topic, counters);
                Volatile.Write(ref counters.ProduceLoopEnded, 1);
                var flushed = producer.Flush(FlushTimeout);
                counters.ProduceEndTicks = Stopwatch.GetTimestamp();
                if (flushed > 0)
                    result.Error = $"{flushed} record(s) still unacknowledged after {FlushTimeout.TotalSeconds} s.";

                if (withConsumer)
                {
                    // Wait until the consumer saw every acknowledged record, or stalls.
                    var lastSeen = -1L;
                    var lastProgress = Stopwatch.StartNew();
                    while (Interlocked.Read(ref counters.Consumed) < Interlocked.Read(ref counters.Acked))
                    {
                        var now = Interlocked.Read(ref counters.Consumed);
                        if (now != lastSeen)
                        {
                            lastSeen = now;
                            lastProgress.Restart();
                        }
                        else if (lastProgress.Elapsed > ConsumerStallTimeout)
                        {
                            result.Error ??= $"consumer stalled at {now} of {counters.Acked} records.";
                            break;
                        }
                        Thread.Sleep(20);
                    }
                }
            }
        }
        finally
        {
            stopConsumer.Cancel();
            consumerThread?.Join(TimeSpan.FromSeconds(30));
            consumer?.Close();
            consumer?.Dispose();
        }

        var seconds = (counters.ProduceEndTicks - counters.MeasureStartTicks) / (double)Stopwatch.Frequency;
        var acked = Interlocked.Read(ref counters.Acked) - counters.AckedAtStart;
        result.Records = acked;
        result.Bytes = acked * spec.RecordBytes;
        result.Seconds = seconds;
        result.RecordsPerSec = seconds > 0 ? acked / seconds : 0;
        result.MBPerSec = seconds > 0 ? result.Bytes / 1e6 / seconds : 0;
        result.DeliveryErrors = Interlocked.Read(ref counters.Failed);
        result.FirstDeliveryError = counters.FirstError;
        result.Producer = stats.Summary();
        if (withConsumer)
        {
            var consumed = Interlocked.Read(ref counters.Consumed) - counters.ConsumedAtStart;
            var consumeSeconds = (Interlocked.Read(ref counters.LastConsumeTicks) - counters.MeasureStartTicks) / (double)Stopwatch.Frequency;
            result.ConsumerRecordsPerSec = consumeSeconds > 0 ? consumed / consumeSeconds : 0;
            result.ConsumerMBPerSec = consumeSeconds > 0 ? consumed * (double)spec.RecordBytes / 1e6 / consumeSeconds : 0;
            result.Latency = LatencyFigures.From(histogram);
        }
        if (result.DeliveryErrors > 0)
            result.Error ??= $"{result.DeliveryErrors} delivery error(s), first: {counters.FirstError}";
        return result;
    }

    /// <summary>
    /// A transactional producer committing transactions of <see cref="ScenarioSpec.RecordsPerTransaction"/>
    /// records one after another for warmup + duration (or --records): committed records/s, MB/s
    /// and transactions/s in the measured window; latency = BeginTransaction until CommitTransaction
    /// returned (the records' round trips, AddPartitionsToTxn, EndTxn and its markers).
    /// </summary>
    public RunResult Transactions(ScenarioSpec spec, string bootstrap, string topic, int run)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(spec.RecordsPerTransaction, 1);
        var result = new RunResult { Run = run };
        var counters = new Counters();
        var histogram = new LatencyHistogram();
        var config = ProducerConfig(bootstrap, "all", idempotent: true);
        config.TransactionalId = $"bench-{spec.Name}-{Guid.NewGuid():N}";
        // librdkafka requires message.timeout.ms <= transaction.timeout.ms.
        config.TransactionTimeoutMs = config.MessageTimeoutMs;
        using var producer = new ProducerBuilder<Null, byte[]>(config)
            .SetErrorHandler((_, e) => counters.ClientError(e))
            .SetLogHandler((_, _) => { })
            .Build();
        producer.InitTransactions(TimeSpan.FromSeconds(60));

        var value = new byte[spec.RecordBytes];
        for (var i = 0; i < value.Length; i++)
            value[i] = (byte)('A' + Random.Shared.Next(26));
        var message = new Message<Null, byte[]> { Value = value };
        var frequency = (double)Stopwatch.Frequency;
        var start = Stopwatch.GetTimestamp();
        var warmupTicks = (long)(options.WarmupSeconds * frequency);
        var durationTicks = (long)(options.DurationSeconds * frequency);
        long transactions = 0;
        var meter = new RateMeter();
        using (new Progress($"{spec.Name} run {run}", () =>
                   $"committed {Interlocked.Read(ref transactions),9:N0} transactions {meter.PerSecond(Interlocked.Read(ref transactions)),7:F1}/s " +
                   $"{meter.PerSecond(Interlocked.Read(ref transactions)) * spec.RecordsPerTransaction * spec.RecordBytes / 1e6,7:F1} MB/s"))
        {
            while (true)
            {
                var now = Stopwatch.GetTimestamp();
                if (counters.MeasureStartTicks == 0 && now - start >= warmupTicks)
                {
                    counters.MeasureStartTicks = now;
                    Interlocked.Exchange(ref transactions, 0);
                }
                var measuring = counters.MeasureStartTicks != 0;
                if (measuring && (options.Records is { } limit
                        ? transactions * spec.RecordsPerTransaction >= limit
                        : now - counters.MeasureStartTicks >= durationTicks))
                    break;

                var began = Stopwatch.GetTimestamp();
                producer.BeginTransaction();
                for (var i = 0; i < spec.RecordsPerTransaction; i++)
                {
                    BinaryPrimitives.WriteInt64LittleEndian(value, Stopwatch.GetTimestamp());
                    producer.Produce(topic, message);
                }
                producer.CommitTransaction(FlushTimeout);
                var committed = Stopwatch.GetTimestamp();
                Interlocked.Increment(ref transactions);
                if (measuring)
                {
                    histogram.RecordTicks(committed - began);
                    counters.ProduceEndTicks = committed;
                }
            }
        }

        var seconds = (counters.ProduceEndTicks - counters.MeasureStartTicks) / frequency;
        var records = transactions * spec.RecordsPerTransaction;
        result.Records = records;
        result.Bytes = records * spec.RecordBytes;
        result.Seconds = seconds;
        result.RecordsPerSec = seconds > 0 ? records / seconds : 0;
        result.MBPerSec = seconds > 0 ? result.Bytes / 1e6 / seconds : 0;
        result.TransactionsPerSec = seconds > 0 ? transactions / seconds : 0;
        result.Latency = LatencyFigures.From(histogram);
        if (counters.FirstError is { } fatal)
            result.Error = fatal;
        return result;
    }

    /// <summary>Fills a topic with --consume-size bytes, then a new consumer reads it all from the start.</summary>
    public RunResult ConsumeFromStart(ScenarioSpec spec, string bootstrap, string topic, int run)
    {
        var records = Math.Max(1, (options.ConsumeBytes + spec.RecordBytes - 1) / spec.RecordBytes);
        var fill = spec with { RateMBps = null };
        var counters = new Counters();
        var result = new RunResult { Run = run };
        using (var producer = new ProducerBuilder<Null, byte[]>(ProducerConfig(bootstrap, spec.Acks))
                   .SetErrorHandler((_, e) => counters.ClientError(e))
                   .SetLogHandler((_, _) => { })
                   .Build())
        {
            var meter = new RateMeter();
            using (new Progress($"{spec.Name} run {run} fill", () =>
                       $"acked {Interlocked.Read(ref counters.Acked),11:N0}/{records:N0}  {meter.PerSecond(Interlocked.Read(ref counters.Acked)) * spec.RecordBytes / 1e6,7:F1} MB/s"))
            {
                ProduceLoop(producer, fill, topic, counters, recordsOverride: records, warmup: false);
                var left = producer.Flush(FlushTimeout);
                counters.ProduceEndTicks = Stopwatch.GetTimestamp();
                if (left > 0)
                {
                    result.Error = $"{left} record(s) unacknowledged after {FlushTimeout.TotalSeconds} s while filling.";
                    return result;
                }
            }
        }
        var filled = Interlocked.Read(ref counters.Acked);
        result.FilledBytes = filled * spec.RecordBytes;
        result.FillMBPerSec = result.FilledBytes / 1e6 / ((counters.ProduceEndTicks - counters.MeasureStartTicks) / (double)Stopwatch.Frequency);
        if (counters.Failed > 0)
        {
            result.Error = $"{counters.Failed} delivery error(s) while filling, first: {counters.FirstError}";
            return result;
        }

        ConsumeAll(spec, bootstrap, topic, run, filled, result);
        return result;
    }

    /// <summary>
    /// The client's consume ceiling: the same consumer reading --consume-size bytes from the
    /// in-process sink broker, which serves template batches from memory.
    /// </summary>
    public RunResult SinkConsume(ScenarioSpec spec, int run)
    {
        var perPartition = Math.Max(1, (options.ConsumeBytes / spec.RecordBytes + options.Partitions - 1) / options.Partitions);
        var sink = new SinkKafkaServer(options.Partitions, perPartition, spec.RecordBytes);
        try
        {
            var result = new RunResult { Run = run };
            ConsumeAll(spec, sink.BootstrapServers, NewTopicName(spec.Name), run, sink.FetchRecordsPerPartition * options.Partitions, result);
            return result;
        }
        finally
        {
            sink.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>A new consumer reads <paramref name="expected"/> records from the start of every partition.</summary>
    private void ConsumeAll(ScenarioSpec spec, string bootstrap, string topic, int run, long expected, RunResult result)
    {
        var counters = new Counters();
        var filled = expected;
        using var consumer = new ConsumerBuilder<Ignore, Stamp>(ConsumerConfig(bootstrap))
            .SetValueDeserializer(new StampDeserializer())
            .SetErrorHandler((_, e) => counters.ClientError(e))
            .SetLogHandler((_, _) => { })
            .Build();
        var consumed = 0L;
        var start = Stopwatch.GetTimestamp();
        var last = start;
        var consumeMeter = new RateMeter();
        using (new Progress($"{spec.Name} run {run} consume", () =>
                   $"consumed {Interlocked.Read(ref consumed),11:N0}/{filled:N0}  {consumeMeter.PerSecond(Interlocked.Read(ref consumed)) * spec.RecordBytes / 1e6,7:F1} MB/s"))
        {
            // Offset 0, not Offset.Beginning: the topic is new (starts at 0), and the sink has no ListOffsets to resolve "beginning".
            consumer.Assign(Enumerable.Range(0, options.Partitions).Select(p => new TopicPartitionOffset(topic, p, new Offset(0))));
            var idle = Stopwatch.StartNew();
            while (consumed < filled)
            {
                var r = consumer.Consume(TimeSpan.FromMilliseconds(200));
                if (r is null)
                {
                    if (idle.Elapsed > ConsumerStallTimeout)
                    {
                        result.Error = $"consumer stalled at {consumed} of {filled} records.";
                        break;
                    }
                    continue;
                }
                idle.Restart();
                Interlocked.Increment(ref consumed);
                last = Stopwatch.GetTimestamp();
            }
        }
        consumer.Close();
        var seconds = (last - start) / (double)Stopwatch.Frequency;
        result.Records = consumed;
        result.Bytes = consumed * spec.RecordBytes;
        result.Seconds = seconds;
        result.RecordsPerSec = seconds > 0 ? consumed / seconds : 0;
        result.MBPerSec = seconds > 0 ? result.Bytes / 1e6 / seconds : 0;
        result.ConsumerRecordsPerSec = result.RecordsPerSec;
        result.ConsumerMBPerSec = result.MBPerSec;
    }

    private void ProduceLoop(IProducer<Null, byte[]> producer, ScenarioSpec spec, string topic, Counters counters,
        long? recordsOverride = null, bool warmup = true)
    {
        var value = new byte[spec.RecordBytes];
        // Letters, like Kafka's perf tool: compressible a little, never all zeros.
        for (var i = 0; i < value.Length; i++)
            value[i] = (byte)('A' + Random.Shared.Next(26));
        var message = new Message<Null, byte[]> { Value = value };
        Action<DeliveryReport<Null, byte[]>> onDelivery = r =>
        {
            if (r.Error.IsError)
                counters.DeliveryFailed(r.Error);
            else
                Interlocked.Increment(ref counters.Acked);
        };

        var frequency = (double)Stopwatch.Frequency;
        var start = Stopwatch.GetTimestamp();
        var warmupTicks = warmup ? (long)(options.WarmupSeconds * frequency) : 0;
        var durationTicks = (long)(options.DurationSeconds * frequency);
        var recordsLimit = recordsOverride ?? options.Records;
        double? recordsPerSec = spec.RateMBps is { } mbps ? mbps * 1e6 / spec.RecordBytes : null;
        var measuring = false;
        long sent = 0, sentAtStart = 0;
        if (warmupTicks == 0)
            BeginMeasuring(start);

        void BeginMeasuring(long now)
        {
            measuring = true;
            counters.MeasureStartTicks = now;
            counters.AckedAtStart = Interlocked.Read(ref counters.Acked);
            counters.ConsumedAtStart = Interlocked.Read(ref counters.Consumed);
            Volatile.Write(ref counters.MeasureStartPublished, now);
            sentAtStart = sent;
        }

        while (true)
        {
            var now = Stopwatch.GetTimestamp();
            if (!measuring && now - start >= warmupTicks)
                BeginMeasuring(now);
            if (measuring && (recordsLimit is { } limit ? sent - sentAtStart >= limit : now - counters.MeasureStartTicks >= durationTicks))
                break;
            if (recordsPerSec is { } rate && sent >= (now - start) / frequency * rate)
            {
                Thread.Sleep(1); // ahead of schedule: the pacing resolution is about a millisecond
                continue;
            }
            BinaryPrimitives.WriteInt64LittleEndian(value, Stopwatch.GetTimestamp());
            try
            {
                producer.Produce(topic, message, onDelivery);
                sent++;
            }
            catch (ProduceException<Null, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
            {
                Thread.Sleep(1); // librdkafka's queue is full: the cluster is the bottleneck
            }
        }
    }

    private static void ConsumeLoop(IConsumer<Ignore, Stamp> consumer, Counters counters, LatencyHistogram histogram, CancellationToken stop)
    {
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var r = consumer.Consume(TimeSpan.FromMilliseconds(100));
                if (r is null)
                    continue;
                var now = Stopwatch.GetTimestamp();
                var stamp = r.Message.Value;
                var measureStart = Volatile.Read(ref counters.MeasureStartPublished);
                if (measureStart > 0 && stamp.Ticks >= measureStart)
                    histogram.RecordTicks(now - stamp.Ticks);
                Interlocked.Increment(ref counters.Consumed);
                Interlocked.Exchange(ref counters.LastConsumeTicks, now);
            }
        }
        catch (ConsumeException e)
        {
            counters.ClientError(e.Error);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static string Status(Counters c, int recordBytes, RateMeter produced, RateMeter consumed, bool withConsumer, LatencyHistogram _)
    {
        var acked = Interlocked.Read(ref c.Acked);
        var p = produced.PerSecond(acked);
        var line = $"acked {acked,11:N0} {p,9:N0} rec/s {p * recordBytes / 1e6,7:F1} MB/s";
        if (withConsumer)
        {
            var n = Interlocked.Read(ref c.Consumed);
            var r = consumed.PerSecond(n);
            line += $" | consumed {n,11:N0} {r * recordBytes / 1e6,7:F1} MB/s lag {acked - n,9:N0}";
        }
        if (Interlocked.Read(ref c.Failed) > 0)
            line += $" | {c.Failed} errors";
        return line;
    }

    private sealed class Counters
    {
        public long Acked;
        public long Failed;
        public long Consumed;
        public long LastConsumeTicks;
        public long MeasureStartTicks;
        public long MeasureStartPublished;
        public long AckedAtStart;
        public long ConsumedAtStart;
        public long ProduceEndTicks;
        public int ProduceLoopEnded;
        public string? FirstError;

        public bool InMeasuredWindow => Volatile.Read(ref MeasureStartPublished) > 0 && Volatile.Read(ref ProduceLoopEnded) == 0;

        public void DeliveryFailed(Error error)
        {
            Interlocked.Increment(ref Failed);
            Interlocked.CompareExchange(ref FirstError, $"{error.Code}: {error.Reason}", null);
        }

        public void ClientError(Error error)
        {
            // Transient client errors (a reconnect) show in the figures; fatal ones end the run.
            if (error.IsFatal)
                Interlocked.CompareExchange(ref FirstError, $"fatal {error.Code}: {error.Reason}", null);
        }
    }
}
