namespace StreamPlatform.Benchmarks.Perf;

public enum ScenarioKind
{
    /// <summary>Raw loopback TCP throughput.</summary>
    Loopback,
    /// <summary>Appending to a new file (what every stored byte costs at least).</summary>
    Disk,
    /// <summary>The producer against the in-process sink broker.</summary>
    Sink,
    /// <summary>The consumer reading from the start of the in-process sink broker's template data.</summary>
    SinkConsume,
    /// <summary>One producer and one consumer on the cluster at the same time.</summary>
    ProduceConsume,
    /// <summary>Fill a topic, then consume it from the start.</summary>
    ConsumeFromStart,
    /// <summary>A transactional producer: begin, RecordsPerTransaction records, commit, again.</summary>
    Transactions,
}

/// <summary>One scenario: what to produce, how, and to what kind of topic.</summary>
public sealed record ScenarioSpec(
    string Name,
    ScenarioKind Kind,
    int RecordBytes,
    string Acks,
    short ReplicationFactor,
    double? RateMBps,
    string Description,
    bool WithConsumer = true,
    bool Idempotent = false,
    int RecordsPerTransaction = 0)
{
    public bool IsCeiling => Kind is ScenarioKind.Loopback or ScenarioKind.Disk or ScenarioKind.Sink or ScenarioKind.SinkConsume;
}

public static class ScenarioCatalog
{
    public const string Loopback = "ceiling-loopback";
    public const string Disk = "ceiling-disk";
    public const string Sink = "ceiling-sink";

    public static readonly IReadOnlyList<string> DefaultNames =
    [
        Loopback, Disk, Sink, "produce-100b", "produce-1k", "produce-1k-alone", "produce-1k-all-rf3",
        "produce-1k-all-rf3-alone",
        "latency-1k-10mbs", "latency-1k-10mbs-all-rf3", "consume-from-start",
        "produce-1k-all-rf3-idempotent-alone", "txn-100x1k-all-rf3",
    ];

    public static IReadOnlyList<string> ParseNames(string list)
    {
        var names = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (names.Length == 0)
            throw new PerfOptionsException("--scenarios needs at least one name.");
        if (names.Contains("all"))
            return DefaultNames;
        foreach (var name in names)
        {
            if (!DefaultNames.Contains(name))
                throw new PerfOptionsException($"Unknown scenario '{name}'. Known: {string.Join(", ", DefaultNames)}.");
        }
        return names.Distinct().ToArray();
    }

    /// <summary>
    /// The scenarios to run, in order: ceilings first (the sink ceiling once per record size the
    /// producing scenarios use), then the cluster scenarios as listed. Options override sizes/acks/rate.
    /// </summary>
    public static IReadOnlyList<ScenarioSpec> Resolve(PerfOptions options)
    {
        var cluster = new List<ScenarioSpec>();
        foreach (var name in options.Scenarios)
        {
            if (name is Loopback or Disk or Sink)
                continue;
            var spec = Base(name, options.RateMBps ?? 10);
            if (options.RecordBytes is { } size)
                spec = spec with { RecordBytes = size };
            // Idempotence and transactions require acks=all (librdkafka refuses anything else).
            if (options.Acks is { } acks && !spec.Idempotent)
                spec = spec with { Acks = acks };
            cluster.Add(spec);
        }

        var result = new List<ScenarioSpec>();
        var wantCeilings = options.Ceilings;
        if (wantCeilings && options.Scenarios.Contains(Loopback))
            result.Add(new ScenarioSpec(Loopback, ScenarioKind.Loopback, 1 << 20, "-", 0, null, "raw loopback TCP, 1 MiB writes"));
        if (wantCeilings && options.Scenarios.Contains(Disk))
            result.Add(new ScenarioSpec(Disk, ScenarioKind.Disk, 1 << 20, "-", 0, null, "appending --consume-size bytes to a new file, 1 MiB writes, no fsync"));
        if (wantCeilings && options.Scenarios.Contains(Sink))
        {
            var sizes = cluster.Where(s => s.Kind == ScenarioKind.ProduceConsume).Select(s => s.RecordBytes).Distinct().Order().ToList();
            if (sizes.Count == 0)
                sizes.AddRange(options.RecordBytes is { } one ? [one] : [100, 1024]);
            foreach (var size in sizes)
            {
                result.Add(new ScenarioSpec($"{Sink}-{SizeName(size)}", ScenarioKind.Sink, size, options.Acks ?? "1", 1, null,
                    "producer against the in-process sink broker (client ceiling)"));
            }
        }
        if (wantCeilings && options.Scenarios.Contains(Sink))
        {
            foreach (var size in cluster.Where(s => s.Kind == ScenarioKind.ConsumeFromStart).Select(s => s.RecordBytes).Distinct().Order())
            {
                result.Add(new ScenarioSpec($"{Sink}-consume-{SizeName(size)}", ScenarioKind.SinkConsume, size, "-", 1, null,
                    "consumer reading --consume-size bytes from the in-process sink broker (client consume ceiling)"));
            }
        }
        result.AddRange(cluster);
        return result;
    }

    public static string SizeName(int bytes) => bytes % 1024 == 0 ? $"{bytes / 1024}k" : $"{bytes}b";

    private static ScenarioSpec Base(string name, double rate) => name switch
    {
        "produce-100b" => new(name, ScenarioKind.ProduceConsume, 100, "1", 1, null, "max throughput, 100 B, acks=1, RF 1"),
        "produce-1k" => new(name, ScenarioKind.ProduceConsume, 1024, "1", 1, null, "max throughput, 1 KiB, acks=1, RF 1"),
        "produce-1k-alone" => new(name, ScenarioKind.ProduceConsume, 1024, "1", 1, null, "max throughput, 1 KiB, acks=1, RF 1, no consumer",
            WithConsumer: false),
        "produce-1k-all-rf3" => new(name, ScenarioKind.ProduceConsume, 1024, "all", 3, null,
            "max throughput, 1 KiB, acks=all, RF 3 (two followers replicate; acknowledged once the high watermark passes)"),
        "produce-1k-all-rf3-alone" => new(name, ScenarioKind.ProduceConsume, 1024, "all", 3, null,
            "max throughput, 1 KiB, acks=all, RF 3, no consumer (compare with produce-1k-alone)", WithConsumer: false),
        "latency-1k-10mbs" => new(name, ScenarioKind.ProduceConsume, 1024, "1", 1, rate, $"fixed {rate} MB/s, 1 KiB, acks=1, RF 1"),
        "latency-1k-10mbs-all-rf3" => new(name, ScenarioKind.ProduceConsume, 1024, "all", 3, rate,
            $"fixed {rate} MB/s, 1 KiB, acks=all, RF 3 (replicated)"),
        "consume-from-start" => new(name, ScenarioKind.ConsumeFromStart, 1024, "1", 1, null, "consume a filled topic from the start"),
        "produce-1k-all-rf3-idempotent-alone" => new(name, ScenarioKind.ProduceConsume, 1024, "all", 3, null,
            "max throughput, 1 KiB, acks=all, RF 3, enable.idempotence=true, no consumer (compare with produce-1k-all-rf3-alone)",
            WithConsumer: false, Idempotent: true),
        "txn-100x1k-all-rf3" => new(name, ScenarioKind.Transactions, 1024, "all", 3, null,
            "transactions of 100 x 1 KiB records one after another (begin, produce, commit), RF 3; latency = begin until commit returned",
            WithConsumer: false, Idempotent: true, RecordsPerTransaction: 100),
        _ => throw new PerfOptionsException($"Unknown scenario '{name}'."),
    };
}
