using System.Globalization;
using System.Text;
using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.Benchmarks.Perf;

/// <summary>
/// <c>perf --against-kafka</c>: the same client, the same scenario, against the reference Apache
/// Kafka and against our cluster on the same machine, one after the other and alternating which
/// goes first (so slow drift of the machine hits both alike), --runs times each; medians of both
/// and the ratio us/Kafka per figure. Both systems stay up for the whole comparison; the one not
/// being measured is idle.
/// </summary>
public static class KafkaComparison
{
    /// <summary>The scenarios Kafka 0.9 can run the same way as we do (acks 0/1, RF 1, no idempotence).</summary>
    public static readonly IReadOnlyList<string> DefaultScenarios = ["produce-100b", "produce-1k", "produce-1k-alone", "consume-from-start"];

    private const string KafkaName = "kafka";
    private const string UsName = "streamplatform";

    public static async Task<int> RunAsync(PerfOptions options)
    {
        IReadOnlyList<ScenarioSpec> specs;
        try
        {
            specs = Resolve(options);
        }
        catch (PerfOptionsException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }

        var summary = new PerfSummary
        {
            CommandLine = options.CommandLine,
            StartedAt = DateTimeOffset.UtcNow,
            Target = $"side by side: Apache Kafka 0.9.0.1 (1 broker, {ReferenceKafka.BootstrapServers}) and " +
                     (options.Bootstrap ?? $"our cluster (1 controller, {options.Brokers} broker(s), 1 gateway)"),
            Machine = new MachineInfo(),
            Runs = options.Runs,
            DurationSeconds = options.DurationSeconds,
            RecordsPerRun = options.Records,
            WarmupSeconds = options.WarmupSeconds,
            Comparisons = [],
        };
        Console.Error.WriteLine($"perf: {summary.Machine.ProcessorCount} cpu ({summary.Machine.CpuModel}), {summary.Machine.MemoryBytes / (1 << 20)} MiB, " +
                                $"{summary.Machine.Runtime}, librdkafka {summary.Machine.Librdkafka}, load {summary.Machine.LoadAverage1m}");
        Console.Error.WriteLine($"perf: against Kafka: {string.Join(", ", specs.Select(s => s.Name))} at {string.Join(" and ", options.PartitionCounts)} partition(s); " +
                                $"{options.Runs} run(s) of each on each system");

        ReferenceKafka? reference = null;
        ClusterHost? cluster = null;
        var failed = false;
        try
        {
            try
            {
                reference = await ReferenceKafka.StartAsync(ReferenceKafka.ResolveStartScript(options.ReferenceKafkaScript));
                if (options.Bootstrap is null)
                    cluster = await ClusterHost.StartAsync(options);
            }
            catch (Exception e) when (e is InvalidOperationException or OrchestrationException or TimeoutException or ArgumentException)
            {
                Console.Error.WriteLine($"perf: cannot start the systems to compare: {e.Message}");
                return 1;
            }
            var ourBootstrap = options.Bootstrap ?? cluster!.BootstrapServers;

            foreach (var spec in specs)
            {
                foreach (var partitions in options.PartitionCounts)
                {
                    var scenarioOptions = options.WithPartitions(partitions);
                    var comparison = new Comparison
                    {
                        Scenario = spec.Name,
                        Partitions = partitions,
                        Kafka = NewResult(spec, partitions, options),
                        Us = NewResult(spec, partitions, options),
                    };
                    summary.Comparisons.Add(comparison);
                    var onKafka = new KafkaScenarios(scenarioOptions, ReferenceKafka.ClientSettings);
                    var onUs = new KafkaScenarios(scenarioOptions);
                    for (var run = 1; run <= options.Runs; run++)
                    {
                        // Odd runs start with Kafka, even runs with us.
                        var kafkaFirst = run % 2 == 1;
                        foreach (var kafkaTurn in kafkaFirst ? new[] { true, false } : [false, true])
                        {
                            var name = kafkaTurn ? KafkaName : UsName;
                            var pids = kafkaTurn ? reference.ProcessIds : cluster?.ProcessIds;
                            var cpu = CpuUsage.Start(pids);
                            var result = kafkaTurn
                                ? await RunOnceAsync(spec, partitions, onKafka, ReferenceKafka.BootstrapServers, run,
                                    topic => reference.CreateTopicAsync(topic, partitions))
                                : await RunOnceAsync(spec, partitions, onUs, ourBootstrap, run,
                                    topic => onUs.CreateTopicAsync(ourBootstrap, topic, partitions, spec.ReplicationFactor));
                            result.Cpu = cpu.Stop();
                            result.LoadAverage1m = MachineInfo.ReadLoadAverage();
                            (kafkaTurn ? comparison.Kafka : comparison.Us).Runs.Add(result);
                            Console.Error.WriteLine($"  {spec.Name} p{partitions} {name} run {run}: {PerfCommand.Describe(result)}");
                            failed |= !result.Ok;
                        }
                    }
                    comparison.Kafka.Median = PerfCommand.Median(comparison.Kafka.Runs.Where(r => r.Ok).ToList());
                    comparison.Us.Median = PerfCommand.Median(comparison.Us.Runs.Where(r => r.Ok).ToList());
                    comparison.Ratios = Ratios(comparison.Us.Median, comparison.Kafka.Median);
                    Console.Error.WriteLine($"  {spec.Name} p{partitions}: us/Kafka {F(comparison.Ratios?.MBPerSec, "F2")}x MB/s" +
                                            (comparison.Ratios?.ConsumerMBPerSec is { } c && spec.Kind == ScenarioKind.ProduceConsume ? $", consumer {c:F2}x" : ""));
                }
            }
        }
        finally
        {
            if (cluster is not null)
                await cluster.DisposeAsync();
            if (reference is not null)
                await reference.DisposeAsync();
        }

        summary.FinishedAt = DateTimeOffset.UtcNow;
        Console.Error.WriteLine();
        Console.Error.Write(Table(summary));
        await PerfCommand.WriteOutputsAsync(summary, options, Markdown);
        return failed ? 1 : 0;
    }

    /// <summary>The scenarios to compare: the default list, or --scenarios limited to what Kafka 0.9 runs the same way.</summary>
    public static IReadOnlyList<ScenarioSpec> Resolve(PerfOptions options)
    {
        var names = options.ScenariosGiven ? options.Scenarios : DefaultScenarios;
        var specs = new List<ScenarioSpec>();
        foreach (var name in names)
        {
            if (name is ScenarioCatalog.Loopback or ScenarioCatalog.Disk or ScenarioCatalog.Sink)
                continue;
            var spec = ScenarioCatalog.Resolve(options.WithScenarios([name])).Single();
            if (spec.Kind is not (ScenarioKind.ProduceConsume or ScenarioKind.ConsumeFromStart) || spec.ReplicationFactor != 1
                || spec.Idempotent || spec.Acks == "all")
            {
                throw new PerfOptionsException(
                    $"Scenario '{name}' cannot run the same way on Kafka 0.9 (one broker, no idempotence, no transactions); " +
                    $"--against-kafka runs acks 0/1, RF 1 scenarios such as {string.Join(", ", DefaultScenarios)}.");
            }
            specs.Add(spec);
        }
        if (specs.Count == 0)
            throw new PerfOptionsException("--against-kafka needs at least one cluster scenario.");
        return specs;
    }

    private static async Task<RunResult> RunOnceAsync(ScenarioSpec spec, int partitions, KafkaScenarios kafka, string bootstrap, int run,
        Func<string, Task> createTopic)
    {
        try
        {
            var topic = KafkaScenarios.NewTopicName($"{spec.Name}-p{partitions}");
            await createTopic(topic);
            return spec.Kind == ScenarioKind.ConsumeFromStart
                ? await Task.Run(() => kafka.ConsumeFromStart(spec, bootstrap, topic, run))
                : await Task.Run(() => kafka.ProduceConsume(spec, bootstrap, topic, run, spec.WithConsumer));
        }
        catch (Exception e) when (e is Confluent.Kafka.KafkaException or TimeoutException or System.Net.Sockets.SocketException
                                      or InvalidOperationException or Confluent.Kafka.Admin.CreateTopicsException)
        {
            return new RunResult { Run = run, Error = $"{e.GetType().Name}: {e.Message}" };
        }
    }

    private static ScenarioResult NewResult(ScenarioSpec spec, int partitions, PerfOptions options) => new()
    {
        Name = spec.Name,
        Description = spec.Description,
        Kind = spec.Kind.ToString(),
        RecordBytes = spec.RecordBytes,
        Acks = spec.Acks,
        ReplicationFactor = spec.ReplicationFactor,
        ReplicationImplemented = true,
        Partitions = partitions,
        Compression = options.Compression,
    };

    /// <summary>Our medians over Kafka's; null where either side has no figure.</summary>
    public static ComparisonRatios? Ratios(MedianFigures? us, MedianFigures? kafka)
    {
        if (us is null || kafka is null)
            return null;
        static double? Ratio(double? a, double? b) => a is { } x && b is { } y && y > 0 && !double.IsNaN(x) ? x / y : null;
        return new ComparisonRatios
        {
            MBPerSec = Ratio(us.MBPerSec, kafka.MBPerSec),
            RecordsPerSec = Ratio(us.RecordsPerSec, kafka.RecordsPerSec),
            ConsumerMBPerSec = Ratio(us.ConsumerMBPerSec, kafka.ConsumerMBPerSec),
            P50Ms = Ratio(us.P50Ms, kafka.P50Ms),
            P99Ms = Ratio(us.P99Ms, kafka.P99Ms),
        };
    }

    private static string F(double? v, string format) => v is { } x && !double.IsNaN(x) ? x.ToString(format, CultureInfo.InvariantCulture) : "-";

    /// <summary>The side-by-side medians, one line per scenario and partition count.</summary>
    public static string Table(PerfSummary summary)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"Medians of {summary.Runs} run(s) per system; ratio = us / Kafka (throughput: higher is better; latency: lower is better).");
        sb.AppendLine($"{"scenario",-22} {"parts",5} {"Kafka MB/s",11} {"our MB/s",9} {"ratio",6} {"Kafka cons",11} {"our cons",9} {"ratio",6} {"Kafka p50",10} {"our p50",8} {"Kafka p99",10} {"our p99",8}");
        foreach (var c in summary.Comparisons ?? [])
        {
            var k = c.Kafka.Median;
            var u = c.Us.Median;
            var consumer = c.Kafka.Kind == nameof(ScenarioKind.ProduceConsume);
            sb.AppendLine($"{c.Scenario,-22} {c.Partitions,5} {F(k?.MBPerSec, "F1"),11} {F(u?.MBPerSec, "F1"),9} {F(c.Ratios?.MBPerSec, "F2"),6} " +
                          $"{(consumer ? F(k?.ConsumerMBPerSec, "F1") : "-"),11} {(consumer ? F(u?.ConsumerMBPerSec, "F1") : "-"),9} " +
                          $"{(consumer ? F(c.Ratios?.ConsumerMBPerSec, "F2") : "-"),6} {F(k?.P50Ms, "F1"),10} {F(u?.P50Ms, "F1"),8} " +
                          $"{F(k?.P99Ms, "F1"),10} {F(u?.P99Ms, "F1"),8}");
        }
        return sb.ToString();
    }

    /// <summary>The same as a Markdown table for docs/PERFORMANCE.md, with the command and conditions.</summary>
    public static string Markdown(PerfSummary summary)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"Command: `dotnet run -c Release --project tests/StreamPlatform.Benchmarks -- {summary.CommandLine}`  ");
        sb.AppendLine($"Run {summary.StartedAt:yyyy-MM-dd HH:mm} UTC, {summary.Target}, medians of {summary.Runs} run(s) per system, " +
                      $"alternating which system goes first; load average {F(summary.Machine.LoadAverage1m, "F1")} at start.");
        sb.AppendLine();
        sb.AppendLine("| scenario | partitions | Kafka MB/s | our MB/s | us/Kafka | Kafka consumer MB/s | our consumer MB/s | us/Kafka | Kafka e2e p50 ms | our p50 ms | Kafka p99 ms | our p99 ms |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var c in summary.Comparisons ?? [])
        {
            var k = c.Kafka.Median;
            var u = c.Us.Median;
            var consumer = c.Kafka.Kind == nameof(ScenarioKind.ProduceConsume);
            sb.AppendLine($"| {c.Scenario} | {c.Partitions} | {F(k?.MBPerSec, "F1")} | {F(u?.MBPerSec, "F1")} | **{F(c.Ratios?.MBPerSec, "F2")}x** | " +
                          $"{(consumer ? F(k?.ConsumerMBPerSec, "F1") : "-")} | {(consumer ? F(u?.ConsumerMBPerSec, "F1") : "-")} | " +
                          $"{(consumer && c.Ratios?.ConsumerMBPerSec is { } cr ? F(cr, "F2") + "x" : "-")} | {F(k?.P50Ms, "F1")} | {F(u?.P50Ms, "F1")} | " +
                          $"{F(k?.P99Ms, "F1")} | {F(u?.P99Ms, "F1")} |");
        }
        return sb.ToString();
    }
}
