using System.Runtime.InteropServices;

namespace StreamPlatform.Benchmarks.Perf;

/// <summary>Latency percentiles of one run, in milliseconds.</summary>
public sealed record LatencyFigures(long Count, double P50Ms, double P99Ms, double P999Ms, double MaxMs)
{
    public static LatencyFigures? From(LatencyHistogram h) => h.Count == 0
        ? null
        : new LatencyFigures(h.Count, h.PercentileMicros(50) / 1000, h.PercentileMicros(99) / 1000,
            h.PercentileMicros(99.9) / 1000, h.MaxMicros / 1000.0);
}

/// <summary>The figures of one run of one scenario.</summary>
public sealed class RunResult
{
    public int Run { get; init; }
    public bool Ok => Error is null;
    public string? Error { get; set; }
    /// <summary>Records measured (producer acks, or consumer records for consume-from-start).</summary>
    public long Records { get; set; }
    public long Bytes { get; set; }
    public double Seconds { get; set; }
    public double RecordsPerSec { get; set; }
    public double MBPerSec { get; set; }
    public double? ConsumerRecordsPerSec { get; set; }
    public double? ConsumerMBPerSec { get; set; }
    public LatencyFigures? Latency { get; set; }
    /// <summary>The producer's own latency breakdown and batching (librdkafka statistics).</summary>
    public ProducerStats? Producer { get; set; }
    public long DeliveryErrors { get; set; }
    public string? FirstDeliveryError { get; set; }
    /// <summary>consume-from-start: bytes filled before consuming, and how fast the fill went.</summary>
    public long? FilledBytes { get; set; }
    public double? FillMBPerSec { get; set; }
    /// <summary>Transactions scenarios: committed transactions per second (Latency is then begin-to-commit per transaction).</summary>
    public double? TransactionsPerSec { get; set; }
    /// <summary>CPU seconds and cores used during the run, per process (bench = this tool, the cluster's services) and machine-wide.</summary>
    public Dictionary<string, CpuFigure>? Cpu { get; set; }
    /// <summary>1-minute load average at the end of the run (other users of the machine show here).</summary>
    public double? LoadAverage1m { get; set; }
}

/// <summary>Medians over the runs (each figure separately) and ratios to the ceilings.</summary>
public sealed class MedianFigures
{
    public double RecordsPerSec { get; set; }
    public double MBPerSec { get; set; }
    public double? ConsumerRecordsPerSec { get; set; }
    public double? ConsumerMBPerSec { get; set; }
    public double? P50Ms { get; set; }
    public double? P99Ms { get; set; }
    public double? P999Ms { get; set; }
    public double? MaxMs { get; set; }
    public double? FillMBPerSec { get; set; }
    public double? TransactionsPerSec { get; set; }
}

public sealed class Ratios
{
    /// <summary>MB/s over the client ceiling (same producer against the sink, same record size).</summary>
    public double? ToClientCeiling { get; set; }
    /// <summary>MB/s over raw loopback TCP MB/s.</summary>
    public double? ToLoopback { get; set; }
    /// <summary>Fixed-rate runs: achieved MB/s over the target.</summary>
    public double? ToTargetRate { get; set; }
}

public sealed class ScenarioResult
{
    public required string Name { get; init; }
    public required string Description { get; init; }
    public required string Kind { get; init; }
    public int RecordBytes { get; init; }
    public string Acks { get; init; } = "";
    public short ReplicationFactor { get; init; }
    public bool ReplicationImplemented { get; init; }
    public int Partitions { get; init; }
    public string Compression { get; init; } = "none";
    public double? TargetMBPerSec { get; init; }
    public List<RunResult> Runs { get; } = [];
    public MedianFigures? Median { get; set; }
    public Ratios? Ratios { get; set; }
}

public sealed class MachineInfo
{
    public int ProcessorCount { get; init; } = Environment.ProcessorCount;
    public string CpuModel { get; init; } = ReadCpuModel();
    public long MemoryBytes { get; init; } = ReadMemTotal();
    public string Runtime { get; init; } = RuntimeInformation.FrameworkDescription;
    public string Os { get; init; } = RuntimeInformation.OSDescription;
    public string Librdkafka { get; init; } = Confluent.Kafka.Library.VersionString;
    public string ConfluentKafka { get; init; } = typeof(Confluent.Kafka.Library).Assembly.GetName().Version?.ToString() ?? "";
    public double? LoadAverage1m { get; init; } = ReadLoadAverage();

    private static string ReadCpuModel()
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))
                ?.Split(':', 2)[1].Trim() ?? "unknown";
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    private static long ReadMemTotal()
    {
        try
        {
            var line = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
            var kb = line?.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
            return kb is null ? -1 : long.Parse(kb, System.Globalization.CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException)
        {
            return -1;
        }
    }

    public static double? ReadLoadAverage()
    {
        try
        {
            var first = File.ReadAllText("/proc/loadavg").Split(' ')[0];
            return double.Parse(first, System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or FormatException)
        {
            return null;
        }
    }
}

public sealed class PerfSummary
{
    public required string CommandLine { get; init; }
    public required DateTimeOffset StartedAt { get; init; }
    public DateTimeOffset FinishedAt { get; set; }
    public required string Target { get; init; }
    public required MachineInfo Machine { get; init; }
    public int Runs { get; init; }
    public double DurationSeconds { get; init; }
    public long? RecordsPerRun { get; init; }
    public double WarmupSeconds { get; init; }
    public List<ScenarioResult> Scenarios { get; } = [];
    /// <summary>--against-kafka: each scenario and partition count against the reference Kafka and us.</summary>
    public List<Comparison>? Comparisons { get; set; }
}

/// <summary>One scenario at one partition count, run against the reference Kafka and against us.</summary>
public sealed class Comparison
{
    public required string Scenario { get; init; }
    public int Partitions { get; init; }
    public required ScenarioResult Kafka { get; init; }
    public required ScenarioResult Us { get; init; }
    /// <summary>Our median over Kafka's, per figure (throughput: above 1 is better; latency: below 1 is better).</summary>
    public ComparisonRatios? Ratios { get; set; }
}

public sealed class ComparisonRatios
{
    public double? MBPerSec { get; set; }
    public double? RecordsPerSec { get; set; }
    public double? ConsumerMBPerSec { get; set; }
    public double? P50Ms { get; set; }
    public double? P99Ms { get; set; }
}
