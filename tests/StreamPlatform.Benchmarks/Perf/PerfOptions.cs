using System.Globalization;

namespace StreamPlatform.Benchmarks.Perf;

/// <summary>Command-line options of <c>perf</c>. Every option has a default and a bound.</summary>
public sealed class PerfOptions
{
    public const int RunsMax = 50;
    public const int PartitionsMax = 1000;
    public const int RecordBytesMin = 16; // the end-to-end timestamp takes the first 8 bytes
    public const int RecordBytesMax = 1024 * 1024;
    public const double DurationSecondsMax = 3600;

    public IReadOnlyList<string> Scenarios { get; private set; } = ScenarioCatalog.DefaultNames;

    /// <summary>Whether --scenarios was given (the side-by-side mode has its own default list).</summary>
    public bool ScenariosGiven { get; private set; }
    public int? RecordBytes { get; private set; }
    public long? Records { get; private set; }
    public double DurationSeconds { get; private set; } = 15;
    public double WarmupSeconds { get; private set; } = 2;
    public int Partitions { get; private set; } = 6;
    public string? Acks { get; private set; }
    public double? RateMBps { get; private set; }
    public string Compression { get; private set; } = "none";
    public string? Bootstrap { get; private set; }
    public int Brokers { get; private set; } = 3;
    public long ConsumeBytes { get; private set; } = 1L << 30;
    public int Runs { get; private set; } = 1;
    public string? JsonFile { get; private set; }
    public string? MarkdownFile { get; private set; }
    public bool Ceilings { get; private set; } = true;
    public double LoopbackSeconds { get; private set; } = 3;
    public bool ShowClusterLog { get; private set; }
    public Dictionary<string, string> ProducerConfig { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, string> ConsumerConfig { get; } = new(StringComparer.Ordinal);
    public bool HelpRequested { get; private set; }

    /// <summary>--against-kafka: every scenario against the reference Apache Kafka and our cluster, alternating.</summary>
    public bool AgainstKafka { get; private set; }

    /// <summary>The script that starts the reference Kafka (see <see cref="ReferenceKafka"/>).</summary>
    public string? ReferenceKafkaScript { get; private set; }

    /// <summary>Partition counts of the side-by-side mode; each scenario runs once per count.</summary>
    public IReadOnlyList<int> PartitionCounts { get; private set; } = [1, 6];

    /// <summary>A copy of these options with other scenarios.</summary>
    public PerfOptions WithScenarios(IReadOnlyList<string> scenarios)
    {
        var copy = (PerfOptions)MemberwiseClone();
        copy.Scenarios = scenarios;
        return copy;
    }

    /// <summary>A copy of these options with another partition count (the side-by-side mode runs several).</summary>
    public PerfOptions WithPartitions(int partitions)
    {
        var copy = (PerfOptions)MemberwiseClone();
        copy.Partitions = partitions;
        return copy;
    }

    public const string Help = """
        StreamPlatform perf: Confluent.Kafka producer + consumer benchmarks with the machine's own ceilings.

        Usage:
          dotnet run -c Release --project tests/StreamPlatform.Benchmarks -- perf [options]
          dotnet run -c Release --project tests/StreamPlatform.Benchmarks -- micro [BenchmarkDotNet args]

        Without --bootstrap, perf starts its own cluster through the AppHost orchestration library
        (1 controller, --brokers brokers, 1 gateway; dynamic ports; data in a temp folder deleted
        afterwards; services from the same build configuration, so use -c Release). Each scenario
        uses a new topic (bench-<scenario>-<id>) created with the scenario's partitions and
        replication factor. One producer and one consumer run in this process, so end-to-end
        latency (producer call -> consumer sees the record, timestamp in the first 8 value bytes)
        is measured on one clock.

        Scenarios (--scenarios, comma-separated; default: all):
          ceiling-loopback            raw loopback TCP: a socket pair pumping 1 MiB buffers
          ceiling-disk                appending --consume-size bytes to a new file in the temp folder in
                                      1 MiB writes, no fsync: what storing a byte costs at least here
          ceiling-sink                the same producer against an in-process sink broker (our codec,
                                      nothing stored): the client's own ceiling, run per record size used;
                                      with consume-from-start also ceiling-sink-consume-1k: the consumer
                                      reading --consume-size bytes the sink serves from memory
          produce-100b                max throughput, 100 B records, acks=1, RF 1, consumer alongside
          produce-1k                  max throughput, 1 KiB records, acks=1, RF 1, consumer alongside
          produce-1k-alone            the same without a consumer (the producer has the cluster to
                                      itself, as in Kafka's producer perf tool)
          produce-1k-all-rf3          max throughput, 1 KiB, acks=all, RF 3, consumer alongside (the two
                                      followers replicate; a record is acknowledged once the high
                                      watermark passes it, i.e. once every replica in the ISR holds it)
          produce-1k-all-rf3-alone    the same without a consumer: what replication costs the producer,
                                      next to produce-1k-alone
          latency-1k-10mbs            fixed rate 10 MB/s, 1 KiB, acks=1, RF 1: end-to-end latency
          latency-1k-10mbs-all-rf3    fixed rate 10 MB/s, 1 KiB, acks=all, RF 3
          consume-from-start          fill a topic with --consume-size bytes of 1 KiB records, then a new
                                      consumer reads it from the start (consumer throughput)
          produce-1k-all-rf3-idempotent-alone
                                      produce-1k-all-rf3-alone with enable.idempotence=true (sequence
                                      numbers, at most 5 requests in flight per partition leader)
          txn-100x1k-all-rf3          a transactional producer: begin, 100 x 1 KiB records, commit, over
                                      and over (RF 3): transactions/s, MB/s, and begin-to-commit latency

        Options:
          --scenarios LIST        scenarios to run (names above, or 'all')
          --record-size BYTES     override every scenario's record (value) size; 16..1048576
          --records N             stop producing after N records (instead of --duration)
          --duration SECONDS      measured produce time per scenario run (default 15)
          --warmup SECONDS        produce this long before measuring (default 2; not in the figures)
          --partitions N          partitions per topic (default 6)
          --acks 0|1|all          override every scenario's acks
          --rate MBPS             fixed rate of the latency scenarios in MB/s (default 10; 1 MB = 10^6 bytes)
          --compression TYPE      none|gzip|snappy|lz4|zstd (producer compression.type; default none)
          --bootstrap HOST:PORT   use a running cluster instead of starting one
          --brokers N             brokers of the cluster started here (default 3; RF 3 needs 3)
          --consume-size BYTES    bytes to fill for consume-from-start (default 1G; K/M/G suffixes, e.g. 64M)
          --runs N                run each scenario N times and report the median of each figure (default 1)
          --json FILE             write the JSON summary to FILE (default: stdout)
          --markdown FILE         also write the medians as a Markdown table (for docs/PERFORMANCE.md)
          --no-ceilings           skip ceiling-loopback, ceiling-disk and ceiling-sink (ratios are then omitted)
          --loopback-seconds S    duration of the loopback measurement (default 3)
          --producer-config K=V   extra librdkafka producer setting (repeatable), e.g. linger.ms=10
          --consumer-config K=V   extra librdkafka consumer setting (repeatable)
          --cluster-log           copy the started cluster's output to stderr
          -h, --help              this text

        Side by side with Apache Kafka (issue 15):
          --against-kafka         run each scenario against the reference Apache Kafka (0.9.0.1, one
                                  broker, started here with --reference-kafka-start and stopped at the
                                  end) and against our cluster, alternating which goes first, --runs
                                  times each; prints the medians of both and the ratio us/Kafka per
                                  figure (JSON: "comparisons"). Scenarios limited to acks=0/1, RF 1, no
                                  idempotence (what Kafka 0.9 has): default produce-100b, produce-1k,
                                  produce-1k-alone, consume-from-start. Ceilings are not run.
                                  librdkafka talks to Kafka 0.9 with api.version.request=false and
                                  broker.version.fallback=0.9.0.1.
          --partition-counts LIST partition counts of --against-kafka, comma-separated (default 1,6)
          --reference-kafka-start PATH
                                  the script that starts the reference Kafka (default:
                                  $REFERENCE_KAFKA_START, else ../shared/tools/reference-kafka-start.sh
                                  next to the repository); its stop script is the same path with
                                  -stop for -start

        Output: a progress line every second on stderr, a table of every figure with its ratio to
        the ceilings on stderr at the end, and the JSON summary on stdout (or --json FILE).
        MB/s counts record value bytes (10^6 bytes per MB), as Kafka's perf tools do.
        Exit code: 0 when every scenario ran, 1 when one failed, 2 on bad options.
        """;

    public static PerfOptions Parse(IReadOnlyList<string> args)
    {
        var o = new PerfOptions();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string Value()
            {
                if (i + 1 >= args.Count)
                    throw new PerfOptionsException($"{arg} needs a value.");
                return args[++i];
            }

            switch (arg)
            {
                case "-h" or "--help" or "-?":
                    o.HelpRequested = true;
                    break;
                case "--scenarios":
                    o.Scenarios = ScenarioCatalog.ParseNames(Value());
                    o.ScenariosGiven = true;
                    break;
                case "--record-size":
                    o.RecordBytes = (int)ParseBytes(arg, Value(), RecordBytesMin, RecordBytesMax);
                    break;
                case "--records":
                    o.Records = ParseLong(arg, Value(), 1, 10_000_000_000);
                    break;
                case "--duration":
                    o.DurationSeconds = ParseDouble(arg, Value(), 0.5, DurationSecondsMax);
                    break;
                case "--warmup":
                    o.WarmupSeconds = ParseDouble(arg, Value(), 0, 600);
                    break;
                case "--partitions":
                    o.Partitions = (int)ParseLong(arg, Value(), 1, PartitionsMax);
                    break;
                case "--acks":
                    var acks = Value();
                    o.Acks = acks is "0" or "1" or "all" or "-1"
                        ? (acks == "-1" ? "all" : acks)
                        : throw new PerfOptionsException($"--acks must be 0, 1 or all, got '{acks}'.");
                    break;
                case "--rate":
                    o.RateMBps = ParseDouble(arg, Value(), 0.001, 100_000);
                    break;
                case "--compression":
                    var c = Value().ToLowerInvariant();
                    o.Compression = c is "none" or "gzip" or "snappy" or "lz4" or "zstd"
                        ? c
                        : throw new PerfOptionsException($"--compression must be none, gzip, snappy, lz4 or zstd, got '{c}'.");
                    break;
                case "--bootstrap":
                    o.Bootstrap = Value();
                    break;
                case "--brokers":
                    o.Brokers = (int)ParseLong(arg, Value(), 1, 9);
                    break;
                case "--consume-size":
                    o.ConsumeBytes = ParseBytes(arg, Value(), 1024, 1L << 40);
                    break;
                case "--runs":
                    o.Runs = (int)ParseLong(arg, Value(), 1, RunsMax);
                    break;
                case "--json":
                    o.JsonFile = Value();
                    break;
                case "--markdown":
                    o.MarkdownFile = Value();
                    break;
                case "--no-ceilings":
                    o.Ceilings = false;
                    break;
                case "--loopback-seconds":
                    o.LoopbackSeconds = ParseDouble(arg, Value(), 0.5, 600);
                    break;
                case "--producer-config":
                    AddSetting(o.ProducerConfig, arg, Value());
                    break;
                case "--consumer-config":
                    AddSetting(o.ConsumerConfig, arg, Value());
                    break;
                case "--cluster-log":
                    o.ShowClusterLog = true;
                    break;
                case "--against-kafka":
                    o.AgainstKafka = true;
                    break;
                case "--partition-counts":
                    o.PartitionCounts = ParsePartitionCounts(arg, Value());
                    break;
                case "--reference-kafka-start":
                    o.ReferenceKafkaScript = Value();
                    break;
                default:
                    throw new PerfOptionsException($"Unknown option '{arg}' (see --help).");
            }
        }
        return o;
    }

    private static int[] ParsePartitionCounts(string arg, string value)
    {
        var parts = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length is 0 or > 8)
            throw new PerfOptionsException($"{arg} takes 1 to 8 comma-separated counts, got '{value}'.");
        return parts.Select(p => (int)ParseLong(arg, p, 1, PartitionsMax)).Distinct().ToArray();
    }

    /// <summary>The original command line, for the JSON summary and docs.</summary>
    public string CommandLine { get; set; } = "";

    private static void AddSetting(Dictionary<string, string> settings, string arg, string value)
    {
        var eq = value.IndexOf('=');
        if (eq <= 0)
            throw new PerfOptionsException($"{arg} expects KEY=VALUE, got '{value}'.");
        settings[value[..eq]] = value[(eq + 1)..];
    }

    private static long ParseLong(string arg, string value, long min, long max)
    {
        if (!long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) || n < min || n > max)
            throw new PerfOptionsException($"{arg} must be an integer in {min}..{max}, got '{value}'.");
        return n;
    }

    private static double ParseDouble(string arg, string value, double min, double max)
    {
        if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || d < min || d > max)
            throw new PerfOptionsException($"{arg} must be a number in {min}..{max}, got '{value}'.");
        return d;
    }

    /// <summary>Bytes with an optional K/M/G suffix (binary: 1K = 1024).</summary>
    public static long ParseBytes(string arg, string value, long min, long max)
    {
        var text = value.Trim().ToUpperInvariant().TrimEnd('B', 'I');
        long multiplier = 1;
        if (text.Length > 0 && "KMG".Contains(text[^1]))
        {
            multiplier = text[^1] switch { 'K' => 1L << 10, 'M' => 1L << 20, _ => 1L << 30 };
            text = text[..^1];
        }
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || n * multiplier < min || n * multiplier > max)
            throw new PerfOptionsException($"{arg} must be {min}..{max} bytes (K/M/G suffixes allowed), got '{value}'.");
        return (long)(n * multiplier);
    }
}

public sealed class PerfOptionsException(string message) : Exception(message);
