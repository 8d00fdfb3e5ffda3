using System.Text.Json;
using StreamPlatform.AppHost.Orchestration;
using StreamPlatform.Benchmarks.Perf;
using StreamPlatform.Faults;

namespace StreamPlatform.Benchmarks.Fault;

/// <summary>
/// <c>fault</c>: the replication fault scenario of the CI test (<see cref="FaultScenario"/>) over
/// several seeds and more rounds, one fresh cluster per seed, with a summary per seed.
/// </summary>
public static class FaultCommand
{
    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        FaultCommandOptions options;
        try
        {
            options = FaultCommandOptions.Parse(args);
        }
        catch (PerfOptionsException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }
        if (options.HelpRequested)
        {
            Console.WriteLine(FaultCommandOptions.Help);
            return 0;
        }

        Console.Error.WriteLine($"fault: seeds {string.Join(",", options.Seeds)}, {options.Rounds} round(s) each, {options.Partitions} partitions, " +
                                $"{options.RecordsPerSecond} records/s of {options.RecordBytes} B, at least {options.DurationSeconds} s per seed");
        var reports = new List<FaultReport>();
        var errors = new List<string>();
        foreach (var seed in options.Seeds)
        {
            try
            {
                await using var cluster = await ClusterHost.StartAsync("fault", options.Brokers, options.ShowClusterLog, FaultClusterSettings.Apply);
                var scenario = new FaultScenario(cluster.Orchestrator, options.ScenarioOptions(seed), line => Console.Error.WriteLine(line));
                reports.Add(await scenario.RunAsync());
            }
            catch (Exception e) when (e is OrchestrationException or InvalidOperationException or TimeoutException
                                          or Confluent.Kafka.KafkaException or Grpc.Core.RpcException or ArgumentException)
            {
                // A run that could not even be set up (cluster did not start, topic not in sync) is a failed seed, not a crash of the tool.
                errors.Add($"seed {seed}: {e.GetType().Name}: {e.Message}");
                Console.Error.WriteLine($"fault: seed {seed} did not run to the end: {e.Message}");
            }
        }

        Console.Error.WriteLine();
        Console.Error.WriteLine("Summary");
        foreach (var report in reports)
        {
            Console.Error.WriteLine("  " + report.Summary());
            foreach (var round in report.Rounds)
                Console.Error.WriteLine("    " + round);
            foreach (var problem in report.Problems())
                Console.Error.WriteLine("    PROBLEM: " + problem);
        }
        foreach (var error in errors)
            Console.Error.WriteLine("  " + error);
        var passed = errors.Count == 0 && reports.All(r => r.Passed);
        Console.Error.WriteLine(passed
            ? $"fault: all {reports.Count} seed(s) passed: no acknowledged record lost, no offset reused, every restarted broker back in every ISR"
            : $"fault: FAILED ({reports.Count(r => !r.Passed) + errors.Count} of {options.Seeds.Count} seed(s))");

        if (options.JsonFile is { } file)
        {
            var json = JsonSerializer.Serialize(new
            {
                options.Seeds, options.Rounds, options.Partitions, options.DurationSeconds, options.RecordsPerSecond, options.RecordBytes,
                Passed = passed,
                Errors = errors,
                Reports = reports.Select(r => new
                {
                    r.Seed, r.Topic, r.Passed, r.ElapsedSeconds, r.Sent, Acked = r.Check?.Acked, r.DeliveryFailed, r.Undelivered, r.Errors,
                    Lost = r.Check?.Lost.Count, OffsetsReused = r.Check?.OffsetsReused.Count, OrderViolations = r.Check?.OrderViolations.Count,
                    Corrupt = r.Check?.Corrupt.Count, r.Check?.Duplicates, r.Check?.UnacknowledgedPresent, r.ReadError,
                    IsrRestored = r.IsrNotRestored.Count == 0, r.IsrNotRestored, r.FinalPartitions, Problems = r.Problems().ToList(),
                    r.Rounds,
                }),
            }, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase });
            await File.WriteAllTextAsync(file, json + Environment.NewLine);
            Console.Error.WriteLine($"fault: JSON written to {file}");
        }
        return passed ? 0 : 1;
    }
}
