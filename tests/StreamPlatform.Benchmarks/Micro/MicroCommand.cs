using System.Globalization;
using System.Reflection;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using Perfolizer.Horology;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace StreamPlatform.Benchmarks.Micro;

/// <summary>
/// <c>micro</c>: BenchmarkDotNet over the hot paths with MemoryDiagnoser, then the allocation
/// budget check (<see cref="AllocationBudgetAttribute"/>): a table of allocated bytes per
/// operation against each budget, exit code 1 when one is exceeded or a benchmark failed.
/// </summary>
public static class MicroCommand
{
    private const string Help = """
        micro: BenchmarkDotNet micro-benchmarks of the hot paths, with allocation budgets.

        Usage: dotnet run -c Release --project tests/StreamPlatform.Benchmarks -- micro [BenchmarkDotNet args]

        Default: every benchmark (--filter '*'), in process, 1 launch, 3 warmup and 5 measured
        iterations of 250 ms each, MemoryDiagnoser on (a few minutes on 2 cores). Any
        BenchmarkDotNet argument works, e.g. --filter '*Produce*', --list flat, --job short
        (a separate-process job; slower to start).
        Benchmarks: ProduceRequestCodecBenchmarks (ProduceRequest v9, 16 KiB records, decode/encode),
        FetchResponseCodecBenchmarks (FetchResponse v12, 6 x 64 KiB, encode/decode),
        RecordBatchValidatorBenchmarks (100 records, uncompressed/lz4), PartitionLogAppendBenchmarks
        (Append 16 KiB), PartitionLogReadBenchmarks (Read 1 MiB: locate, copy into a buffer, ToArray),
        GrpcHopBenchmarks (protobuf parse of the broker ProduceRequest 16 KiB / FetchResponse 6 x 64 KiB).
        After the run a table compares each benchmark's allocated bytes per operation with its
        [AllocationBudget]; exit code 1 when a budget is exceeded or a benchmark failed.
        """;

    public static int Run(string[] args)
    {
        if (args.Any(a => a is "-h" or "--help" or "-?"))
        {
            Console.WriteLine(Help);
            return 0;
        }
        if (!args.Any(a => a is "--filter" or "-f" or "--list" or "--info" or "--version"))
            args = [.. args, "--filter", "*"];

        var job = Job.Default
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithLaunchCount(1)
            .WithWarmupCount(3)
            .WithIterationCount(5)
            .WithIterationTime(TimeInterval.FromMilliseconds(250))
            .WithId("short-inprocess");
        var config = ManualConfig.Create(DefaultConfig.Instance)
            .AddJob(job)
            .AddDiagnoser(MemoryDiagnoser.Default)
            .WithArtifactsPath(Path.Combine(AppContext.BaseDirectory, "BenchmarkDotNet.Artifacts"));

        var summaries = BenchmarkSwitcher.FromAssembly(typeof(MicroCommand).Assembly).Run(args, config).ToList();
        if (summaries.Count == 0)
            return args.Any(a => a is "--list" or "--info" or "--version") ? 0 : 1;
        return CheckBudgets(summaries.SelectMany(s => s.Reports).ToList());
    }

    public static int CheckBudgets(IReadOnlyList<BenchmarkReport> reports)
    {
        var failed = 0;
        Console.WriteLine();
        Console.WriteLine("Allocation budgets (bytes allocated per operation, MemoryDiagnoser):");
        Console.WriteLine($"{"benchmark",-62} {"mean",12} {"allocated",10} {"budget",8}  result");
        foreach (var report in reports)
        {
            var method = report.BenchmarkCase.Descriptor.WorkloadMethod;
            var name = $"{method.DeclaringType?.Name}.{method.Name}{Parameters(report.BenchmarkCase)}";
            var budget = method.GetCustomAttribute<AllocationBudgetAttribute>();
            var allocated = report.GcStats.GetBytesAllocatedPerOperation(report.BenchmarkCase);
            var mean = report.ResultStatistics is { } stats ? FormatNs(stats.Mean) : "-";
            string verdict;
            if (!report.Success || allocated is null)
            {
                verdict = "FAILED (no result)";
                failed++;
            }
            else if (budget is null)
            {
                verdict = "no budget";
            }
            else if (allocated > budget.BytesPerOperationMax)
            {
                verdict = $"OVER BUDGET by {allocated - budget.BytesPerOperationMax} B ({budget.Reason})";
                failed++;
            }
            else
            {
                verdict = "ok";
            }
            Console.WriteLine($"{name,-62} {mean,12} {(allocated?.ToString(CultureInfo.InvariantCulture) ?? "-") + " B",10} " +
                              $"{(budget is null ? "-" : budget.BytesPerOperationMax + " B"),8}  {verdict}");
        }
        Console.WriteLine(failed == 0 ? "All allocation budgets met." : $"{failed} benchmark(s) failed or exceeded their allocation budget.");
        return failed == 0 ? 0 : 1;
    }

    private static string Parameters(BenchmarkCase benchmarkCase) =>
        benchmarkCase.HasParameters ? benchmarkCase.Parameters.DisplayInfo : "";

    private static string FormatNs(double ns) => ns switch
    {
        < 1_000 => $"{ns:F1} ns",
        < 1_000_000 => $"{ns / 1_000:F2} us",
        _ => $"{ns / 1_000_000:F2} ms",
    };
}
