using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.Benchmarks.Perf;

/// <summary>The <c>perf</c> command: ceilings, then the cluster scenarios, medians, table, JSON.</summary>
public static class PerfCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        PerfOptions options;
        try
        {
            options = PerfOptions.Parse(args);
        }
        catch (PerfOptionsException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }
        if (options.HelpRequested)
        {
            Console.WriteLine(PerfOptions.Help);
            return 0;
        }
        options.CommandLine = "perf " + string.Join(' ', args);
        if (options.AgainstKafka)
            return await KafkaComparison.RunAsync(options);

        var specs = ScenarioCatalog.Resolve(options);
        var needsCluster = specs.Any(s => !s.IsCeiling);
        var summary = new PerfSummary
        {
            CommandLine = options.CommandLine,
            StartedAt = DateTimeOffset.UtcNow,
            Target = options.Bootstrap ?? (needsCluster ? $"own cluster: 1 controller, {options.Brokers} broker(s), 1 gateway" : "none"),
            Machine = new MachineInfo(),
            Runs = options.Runs,
            DurationSeconds = options.DurationSeconds,
            RecordsPerRun = options.Records,
            WarmupSeconds = options.WarmupSeconds,
        };
        Console.Error.WriteLine($"perf: {summary.Machine.ProcessorCount} cpu ({summary.Machine.CpuModel}), {summary.Machine.MemoryBytes / (1 << 20)} MiB, " +
                                $"{summary.Machine.Runtime}, librdkafka {summary.Machine.Librdkafka}, load {summary.Machine.LoadAverage1m}");
        Console.Error.WriteLine($"perf: scenarios {string.Join(", ", specs.Select(s => s.Name))}; {options.Runs} run(s) each");

        var kafka = new KafkaScenarios(options);
        ClusterHost? cluster = null;
        var failed = false;
        try
        {
            foreach (var spec in specs)
            {
                var scenario = new ScenarioResult
                {
                    Name = spec.Name,
                    Description = spec.Description,
                    Kind = spec.Kind.ToString(),
                    RecordBytes = spec.RecordBytes,
                    Acks = spec.Acks,
                    ReplicationFactor = spec.ReplicationFactor,
                    ReplicationImplemented = true, // issue 10: followers replicate, acks=all waits for the high watermark
                    Partitions = spec.Kind is ScenarioKind.Loopback or ScenarioKind.Disk ? 0 : options.Partitions,
                    Compression = spec.Kind is ScenarioKind.Loopback or ScenarioKind.Disk ? "-" : options.Compression,
                    TargetMBPerSec = spec.RateMBps,
                };
                summary.Scenarios.Add(scenario);

                string? bootstrap = options.Bootstrap;
                if (!spec.IsCeiling && bootstrap is null)
                {
                    try
                    {
                        cluster ??= await ClusterHost.StartAsync(options);
                    }
                    catch (Exception e) when (e is OrchestrationException or ArgumentException or TimeoutException)
                    {
                        Console.Error.WriteLine($"perf: cannot start a cluster: {e.Message}");
                        scenario.Runs.Add(new RunResult { Run = 1, Error = "cluster did not start: " + e.Message });
                        failed = true;
                        continue;
                    }
                    bootstrap = cluster.BootstrapServers;
                }

                for (var run = 1; run <= options.Runs; run++)
                {
                    var cpu = CpuUsage.Start(spec.IsCeiling ? null : cluster?.ProcessIds);
                    var result = await RunOnceAsync(spec, options, kafka, bootstrap, run);
                    result.Cpu = cpu.Stop();
                    result.LoadAverage1m = MachineInfo.ReadLoadAverage();
                    scenario.Runs.Add(result);
                    Console.Error.WriteLine($"  {spec.Name} run {run}: {Describe(result)}");
                    failed |= !result.Ok;
                }
                scenario.Median = Median(scenario.Runs.Where(r => r.Ok).ToList());
            }
        }
        finally
        {
            if (cluster is not null)
                await cluster.DisposeAsync();
        }

        AddRatios(summary);
        summary.FinishedAt = DateTimeOffset.UtcNow;
        PrintTable(summary);
        await WriteOutputsAsync(summary, options, Markdown);
        return failed ? 1 : 0;
    }

    /// <summary>The Markdown table to --markdown when given, and the JSON summary to --json or stdout.</summary>
    internal static async Task WriteOutputsAsync(PerfSummary summary, PerfOptions options, Func<PerfSummary, string> markdown)
    {
        if (options.MarkdownFile is { } markdownFile)
        {
            await File.WriteAllTextAsync(markdownFile, markdown(summary));
            Console.Error.WriteLine($"perf: Markdown table written to {markdownFile}");
        }
        var json = JsonSerializer.Serialize(summary, JsonOptions);
        if (options.JsonFile is { } file)
        {
            await File.WriteAllTextAsync(file, json + Environment.NewLine);
            Console.Error.WriteLine($"perf: JSON summary written to {file}");
        }
        else
        {
            Console.WriteLine(json);
        }
    }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private static async Task<RunResult> RunOnceAsync(ScenarioSpec spec, PerfOptions options, KafkaScenarios kafka, string? bootstrap, int run)
    {
        try
        {
            switch (spec.Kind)
            {
                case ScenarioKind.Loopback:
                    return await Task.Run(() => LoopbackCeiling.Measure(run, TimeSpan.FromSeconds(options.LoopbackSeconds), TimeSpan.FromSeconds(0.5)));
                case ScenarioKind.Disk:
                    return await Task.Run(() => DiskCeiling.Measure(run, options.ConsumeBytes, Path.Combine(Path.GetTempPath(), "streamplatform-perf")));
                case ScenarioKind.Sink:
                {
                    await using var sink = new SinkKafkaServer(options.Partitions);
                    var topic = KafkaScenarios.NewTopicName(spec.Name);
                    return await Task.Run(() => kafka.ProduceConsume(spec, sink.BootstrapServers, topic, run, withConsumer: false));
                }
                case ScenarioKind.SinkConsume:
                    return await Task.Run(() => kafka.SinkConsume(spec, run));
                case ScenarioKind.ProduceConsume:
                {
                    var topic = KafkaScenarios.NewTopicName(spec.Name);
                    await kafka.CreateTopicAsync(bootstrap!, topic, options.Partitions, spec.ReplicationFactor);
                    return await Task.Run(() => kafka.ProduceConsume(spec, bootstrap!, topic, run, spec.WithConsumer));
                }
                case ScenarioKind.Transactions:
                {
                    var topic = KafkaScenarios.NewTopicName(spec.Name);
                    await kafka.CreateTopicAsync(bootstrap!, topic, options.Partitions, spec.ReplicationFactor);
                    return await Task.Run(() => kafka.Transactions(spec, bootstrap!, topic, run));
                }
                case ScenarioKind.ConsumeFromStart:
                {
                    var topic = KafkaScenarios.NewTopicName(spec.Name);
                    await kafka.CreateTopicAsync(bootstrap!, topic, options.Partitions, spec.ReplicationFactor);
                    return await Task.Run(() => kafka.ConsumeFromStart(spec, bootstrap!, topic, run));
                }
                default:
                    throw new InvalidOperationException($"Unknown scenario kind {spec.Kind}.");
            }
        }
        catch (Exception e) when (e is Confluent.Kafka.KafkaException or TimeoutException or System.Net.Sockets.SocketException
                                      or InvalidOperationException or Confluent.Kafka.Admin.CreateTopicsException)
        {
            return new RunResult { Run = run, Error = $"{e.GetType().Name}: {e.Message}" };
        }
    }

    internal static string Describe(RunResult r)
    {
        var text = $"{r.RecordsPerSec:N0} rec/s, {r.MBPerSec:F1} MB/s over {r.Seconds:F1} s";
        if (r.ConsumerMBPerSec is { } c)
            text += $"; consumer {c:F1} MB/s";
        if (r.Latency is { } l)
            text += $"; e2e p50 {l.P50Ms:F2} p99 {l.P99Ms:F2} p99.9 {l.P999Ms:F2} max {l.MaxMs:F2} ms";
        if (r.Producer is { } p)
            text += $"; producer queue avg {p.QueueLatencyAvgMs:F1} ms, request rtt avg {p.RttAvgMs:F1} p99 {p.RttP99Ms:F1} ms, " +
                    $"{p.ProduceRequestsPerSec:F0} req/s, batch {p.BatchBytesAvg / 1024:F0} KiB";
        if (r.FillMBPerSec is { } f)
            text += $"; fill {f:F1} MB/s";
        if (r.TransactionsPerSec is { } t)
            text += $"; {t:F1} transactions/s (latency = begin to commit)";
        if (r.Cpu is { Count: > 0 } cpu)
            text += "; cores used " + string.Join(" ", cpu.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $"{c.Key} {c.Value.CoresUsed:F2}"));
        if (r.Error is not null)
            text += $"; ERROR {r.Error}";
        return text;
    }

    public static double MedianOf(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return double.NaN;
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    private static double? MedianOrNull(IEnumerable<double?> values)
    {
        var present = values.Where(v => v.HasValue).Select(v => v!.Value).ToArray();
        return present.Length == 0 ? null : MedianOf(present);
    }

    internal static MedianFigures? Median(List<RunResult> runs)
    {
        if (runs.Count == 0) return null;
        return new MedianFigures
        {
            RecordsPerSec = MedianOf(runs.Select(r => r.RecordsPerSec)),
            MBPerSec = MedianOf(runs.Select(r => r.MBPerSec)),
            ConsumerRecordsPerSec = MedianOrNull(runs.Select(r => r.ConsumerRecordsPerSec)),
            ConsumerMBPerSec = MedianOrNull(runs.Select(r => r.ConsumerMBPerSec)),
            P50Ms = MedianOrNull(runs.Select(r => r.Latency?.P50Ms)),
            P99Ms = MedianOrNull(runs.Select(r => r.Latency?.P99Ms)),
            P999Ms = MedianOrNull(runs.Select(r => r.Latency?.P999Ms)),
            MaxMs = MedianOrNull(runs.Select(r => r.Latency?.MaxMs)),
            FillMBPerSec = MedianOrNull(runs.Select(r => r.FillMBPerSec)),
            TransactionsPerSec = MedianOrNull(runs.Select(r => r.TransactionsPerSec)),
        };
    }

    private static void AddRatios(PerfSummary summary)
    {
        var loopback = summary.Scenarios.FirstOrDefault(s => s.Name == ScenarioCatalog.Loopback)?.Median?.MBPerSec;
        var sinkBySize = summary.Scenarios.Where(s => s.Kind == nameof(ScenarioKind.Sink) && s.Median is not null)
            .ToDictionary(s => s.RecordBytes, s => s.Median!.MBPerSec);
        var sinkConsumeBySize = summary.Scenarios.Where(s => s.Kind == nameof(ScenarioKind.SinkConsume) && s.Median is not null)
            .ToDictionary(s => s.RecordBytes, s => s.Median!.MBPerSec);
        foreach (var s in summary.Scenarios)
        {
            if (s.Median is null || s.Name == ScenarioCatalog.Loopback) continue;
            var ratios = new Ratios();
            if (loopback is > 0)
                ratios.ToLoopback = s.Median.MBPerSec / loopback.Value;
            if (s.Kind == nameof(ScenarioKind.ProduceConsume) && sinkBySize.TryGetValue(s.RecordBytes, out var sink) && sink > 0)
                ratios.ToClientCeiling = s.Median.MBPerSec / sink;
            if (s.Kind == nameof(ScenarioKind.ConsumeFromStart) && sinkConsumeBySize.TryGetValue(s.RecordBytes, out var sinkConsume) && sinkConsume > 0)
                ratios.ToClientCeiling = s.Median.MBPerSec / sinkConsume;
            if (s.TargetMBPerSec is { } target && target > 0)
                ratios.ToTargetRate = s.Median.MBPerSec / target;
            s.Ratios = ratios;
        }
    }

    /// <summary>The medians as a Markdown table, with the command and the conditions of the run.</summary>
    public static string Markdown(PerfSummary summary)
    {
        static string F(double? v, string format) => v is { } x && !double.IsNaN(x) ? x.ToString(format, CultureInfo.InvariantCulture) : "-";
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"Command: `dotnet run -c Release --project tests/StreamPlatform.Benchmarks -- {summary.CommandLine}`  ");
        sb.AppendLine($"Run {summary.StartedAt:yyyy-MM-dd HH:mm} UTC, target {summary.Target}, medians of {summary.Runs} run(s), " +
                      $"{summary.DurationSeconds} s measured after {summary.WarmupSeconds} s warmup, load average {F(summary.Machine.LoadAverage1m, "F1")} at start.");
        sb.AppendLine();
        sb.AppendLine("| scenario | record | acks | RF | rec/s | MB/s | x client ceiling | x loopback | consumer MB/s | e2e p50 ms | p99 ms | p99.9 ms | max ms | cores used (median run) |");
        sb.AppendLine("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var s in summary.Scenarios)
        {
            var m = s.Median;
            var record = s.Kind is nameof(ScenarioKind.Loopback) or nameof(ScenarioKind.Disk) ? "1 MiB writes" : $"{s.RecordBytes} B";
            if (m is null)
            {
                sb.AppendLine($"| {s.Name} | {record} | {s.Acks} | {s.ReplicationFactor} | failed: {s.Runs.FirstOrDefault(r => !r.Ok)?.Error?.Replace('|', '/')} ||||||||||");
                continue;
            }
            var ok = s.Runs.Where(r => r.Ok).OrderBy(r => r.MBPerSec).ToList();
            var median = ok[ok.Count / 2];
            var cores = median.Cpu is { Count: > 0 } cpu
                ? string.Join(", ", cpu.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $"{c.Key} {c.Value.CoresUsed:F2}"))
                : "-";
            var mbs = F(m.MBPerSec, "F1") + (s.TargetMBPerSec is { } t ? $" (target {t})" : "") + (m.FillMBPerSec is { } f ? $" (fill {f:F1})" : "") +
                      (m.TransactionsPerSec is { } tps ? $" ({tps:F1} txn/s)" : "");
            sb.AppendLine($"| {s.Name} | {record} | {s.Acks} | {(s.ReplicationFactor == 0 ? "-" : s.ReplicationFactor)} | {F(m.RecordsPerSec, "N0")} | {mbs} | " +
                          $"{F(s.Ratios?.ToClientCeiling, "P0")} | {F(s.Ratios?.ToLoopback, "P1")} | {F(m.ConsumerMBPerSec, "F1")} | " +
                          $"{F(m.P50Ms, "F1")} | {F(m.P99Ms, "F1")} | {F(m.P999Ms, "F1")} | {F(m.MaxMs, "F1")} | {cores} |");
        }
        var withStats = summary.Scenarios.Where(s => s.Runs.Any(r => r.Ok && r.Producer is not null)).ToList();
        if (withStats.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("Producer latency breakdown (librdkafka statistics, median run): queue = produce() until in a request; " +
                          "rtt = request sent until answered (server side as the client sees it); in flight = requests awaiting a response.");
            sb.AppendLine();
            sb.AppendLine("| scenario | queue avg ms | queue p99 ms | rtt avg ms | rtt p99 ms | produce req/s | in flight | batch KiB | records/batch |");
            sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var s in withStats)
            {
                var ok = s.Runs.Where(r => r.Ok && r.Producer is not null).OrderBy(r => r.MBPerSec).ToList();
                var p = ok[ok.Count / 2].Producer!;
                sb.AppendLine($"| {s.Name} | {F(p.QueueLatencyAvgMs, "F1")} | {F(p.QueueLatencyP99Ms, "F1")} | {F(p.RttAvgMs, "F1")} | {F(p.RttP99Ms, "F1")} | " +
                              $"{F(p.ProduceRequestsPerSec, "F0")} | {F(p.InFlightRequestsAvg, "F0")} | {F(p.BatchBytesAvg / 1024, "F0")} | {F(p.RecordsPerBatchAvg, "F0")} |");
            }
        }
        return sb.ToString();
    }

    private static void PrintTable(PerfSummary summary)
    {
        static string F(double? v, string format) => v is { } x && !double.IsNaN(x) ? x.ToString(format, CultureInfo.InvariantCulture) : "-";
        var e = Console.Error;
        e.WriteLine();
        e.WriteLine($"Medians of {summary.Runs} run(s); ratios: MB/s over the client ceiling (ceiling-sink / ceiling-sink-consume, same record size) and over loopback TCP.");
        e.WriteLine($"{"scenario",-27} {"rec/s",12} {"MB/s",9} {"xClient",8} {"xLoop",7} {"cons MB/s",9} {"p50 ms",8} {"p99 ms",8} {"p99.9 ms",9} {"max ms",8}");
        foreach (var s in summary.Scenarios)
        {
            var m = s.Median;
            if (m is null)
            {
                e.WriteLine($"{s.Name,-27} FAILED: {s.Runs.FirstOrDefault(r => !r.Ok)?.Error}");
                continue;
            }
            e.WriteLine($"{s.Name,-27} {F(m.RecordsPerSec, "N0"),12} {F(m.MBPerSec, "F1"),9} {F(s.Ratios?.ToClientCeiling, "P0"),8} " +
                        $"{F(s.Ratios?.ToLoopback, "P1"),7} {F(m.ConsumerMBPerSec, "F1"),9} {F(m.P50Ms, "F2"),8} {F(m.P99Ms, "F2"),8} " +
                        $"{F(m.P999Ms, "F2"),9} {F(m.MaxMs, "F2"),8}");
        }
        e.WriteLine();
    }
}
