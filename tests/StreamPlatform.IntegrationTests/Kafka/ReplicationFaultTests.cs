using System.Globalization;
using StreamPlatform.Faults;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Kafka;

/// <summary>
/// Issue 10's acceptance fault test: an acks=all producer writes to a topic with RF 3 and
/// min.insync.replicas 2 (6 partitions) while the leader of a partition is killed -9, restarted,
/// then another, three rounds. Every acknowledged record must be read back at its offset, in
/// order, no offset used twice, and every restarted broker must be back in every ISR. The
/// scenario and its checks are <see cref="FaultScenario"/> and <see cref="AckChecker"/>, the same
/// code the benchmark tool's `fault` command runs with more seeds and rounds.
/// The seed is printed; STREAMPLATFORM_FAULT_SEED repeats a run.
/// </summary>
public sealed class ReplicationFaultTests(ITestOutputHelper output)
{
    private const string SeedVariable = "STREAMPLATFORM_FAULT_SEED";

    [Fact]
    public async Task Killing_partition_leaders_under_acks_all_load_loses_no_acknowledged_record_and_every_restarted_broker_rejoins_the_isr()
    {
        var seed = Environment.GetEnvironmentVariable(SeedVariable) is { Length: > 0 } text
            ? int.Parse(text, CultureInfo.InvariantCulture)
            : Random.Shared.Next(1, 1_000_000);
        output.WriteLine($"{SeedVariable}={seed}");

        await using var cluster = await TestCluster.StartAsync(FaultClusterSettings.Apply);
        var scenario = new FaultScenario(cluster.Orchestrator, new FaultScenarioOptions { Seed = seed, Rounds = 3, Partitions = 6 }, Log);
        FaultReport report;
        try
        {
            report = await scenario.RunAsync();
        }
        catch
        {
            cluster.WriteCapturedOutput(output);
            throw;
        }

        if (!report.Passed)
            cluster.WriteCapturedOutput(output);
        var check = Assert.IsType<AckCheckResult>(report.Check);
        Assert.True(report.ReadError is null, $"seed {seed}: {report.ReadError}");
        Assert.True(check.Lost.Count == 0, $"seed {seed}: acknowledged records lost: {check.Lost}");
        Assert.True(check.OffsetsReused.Count == 0, $"seed {seed}: offsets used twice: {check.OffsetsReused}");
        Assert.True(check.OrderViolations.Count == 0, $"seed {seed}: per-partition order broken: {check.OrderViolations}");
        Assert.True(check.Corrupt.Count == 0, $"seed {seed}: records read back corrupt: {check.Corrupt}");
        Assert.True(report.IsrNotRestored.Count == 0, $"seed {seed}: {string.Join("; ", report.IsrNotRestored)}");
        Assert.Equal(3, report.Rounds.Count);
        // Failover is part of the guarantee: each round's partition must take writes again under a new leader while its old one is dead.
        Assert.All(report.Rounds, r => Assert.True(r.Problems.Count == 0, $"seed {seed}: {r}"));
        // The kills happened under load: records were acknowledged before the first kill and after the last failover.
        Assert.True(report.Rounds[0].AckedAtKill > 0, $"seed {seed}: nothing acknowledged before the first kill");
        Assert.True(check.Acked > report.Rounds[^1].AckedAtKill, $"seed {seed}: nothing acknowledged after the last kill");
        Assert.True(report.Passed, string.Join(Environment.NewLine, report.Problems()));
    }

    private void Log(string line)
    {
        try
        {
            output.WriteLine(line);
        }
        catch (InvalidOperationException)
        {
            // The producer's progress timer may fire after the test ended; xunit no longer takes output then.
        }
    }
}
