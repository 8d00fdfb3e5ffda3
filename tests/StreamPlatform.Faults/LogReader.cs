using Confluent.Kafka;

namespace StreamPlatform.Faults;

/// <summary>What one pass over every partition of the topic found.</summary>
public sealed class ReadResult
{
    public required List<ConsumedRecord> Records { get; init; }

    /// <summary>Each partition's high watermark when the read began: the pass reads up to it.</summary>
    public required IReadOnlyDictionary<int, long> EndOffsets { get; init; }

    /// <summary>Null when every partition was read to its end; otherwise why not.</summary>
    public string? Error { get; init; }
}

/// <summary>
/// Reads every partition from offset 0 up to its high watermark with a Confluent.Kafka consumer
/// (manual assignment, no group). auto.offset.reset=error: a consumer that silently jumped to
/// the start or the end would hide exactly the loss being looked for.
/// </summary>
public static class LogReader
{
    private static readonly TimeSpan WatermarkTimeout = TimeSpan.FromSeconds(15);

    public static ReadResult ReadAll(string bootstrap, string topic, FaultScenarioOptions options)
    {
        using var consumer = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "fault-check-" + Guid.NewGuid().ToString("N")[..8],
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Error,
            EnablePartitionEof = true,
        })
            .SetLogHandler((_, _) => { })
            .Build();

        var ends = new Dictionary<int, long>();
        for (var p = 0; p < options.Partitions; p++)
            ends[p] = consumer.QueryWatermarkOffsets(new TopicPartition(topic, p), WatermarkTimeout).High.Value;

        var records = new List<ConsumedRecord>((int)Math.Min(ends.Values.Sum(), int.MaxValue / 2));
        var next = Enumerable.Range(0, options.Partitions).ToDictionary(p => p, _ => 0L);
        consumer.Assign(Enumerable.Range(0, options.Partitions).Select(p => new TopicPartitionOffset(topic, p, new Offset(0))));
        var deadline = DateTime.UtcNow + options.ReadTimeout;
        string? error = null;
        try
        {
            while (next.Any(kv => kv.Value < ends[kv.Key]))
            {
                if (DateTime.UtcNow > deadline)
                {
                    error = $"not read to the end within {options.ReadTimeout.TotalSeconds} s: " +
                            string.Join(", ", next.Where(kv => kv.Value < ends[kv.Key]).Select(kv => $"p{kv.Key} at {kv.Value} of {ends[kv.Key]}"));
                    break;
                }
                var r = consumer.Consume(TimeSpan.FromMilliseconds(500));
                if (r is null)
                    continue;
                if (r.IsPartitionEOF)
                {
                    next[r.Partition.Value] = Math.Max(next[r.Partition.Value], r.Offset.Value);
                    if (r.Offset.Value < ends[r.Partition.Value])
                    {
                        // The partition ends below the high watermark it reported: records below it vanished.
                        error = $"p{r.Partition.Value} ended at {r.Offset.Value}, below its high watermark {ends[r.Partition.Value]}";
                        break;
                    }
                    continue;
                }
                var seq = FaultRecords.SeqOf(r.Message.Key);
                var valueMatches = seq >= 0 && FaultRecords.ValueMatches(options.Seed, seq, options.RecordBytes, r.Message.Value);
                records.Add(new ConsumedRecord(r.Partition.Value, r.Offset.Value, seq, valueMatches));
                next[r.Partition.Value] = r.Offset.Value + 1;
            }
        }
        catch (ConsumeException e)
        {
            error = $"consumer error: {e.Error.Code} {e.Error.Reason}";
        }
        consumer.Close();
        return new ReadResult { Records = records, EndOffsets = ends, Error = error };
    }
}
