using StreamPlatform.Benchmarks.Perf;

namespace StreamPlatform.UnitTests.Benchmarks;

public class KafkaComparisonTests
{
    [Fact]
    public void Against_kafka_defaults_to_the_scenarios_kafka_09_runs_the_same_way_at_one_and_six_partitions()
    {
        var o = PerfOptions.Parse(["--against-kafka"]);
        Assert.True(o.AgainstKafka);
        Assert.Equal([1, 6], o.PartitionCounts);
        Assert.Equal(KafkaComparison.DefaultScenarios, KafkaComparison.Resolve(o).Select(s => s.Name));
        Assert.All(KafkaComparison.Resolve(o), s => Assert.Equal((short)1, s.ReplicationFactor));
    }

    [Fact]
    public void Scenario_and_partition_choices_are_kept_and_ceilings_are_skipped()
    {
        var o = PerfOptions.Parse(["--against-kafka", "--scenarios", "ceiling-sink,produce-100b", "--partition-counts", "3, 1,3",
            "--reference-kafka-start", "/opt/ref/start.sh", "--record-size", "512"]);
        Assert.Equal([3, 1], o.PartitionCounts);
        Assert.Equal("/opt/ref/start.sh", o.ReferenceKafkaScript);
        var spec = Assert.Single(KafkaComparison.Resolve(o));
        Assert.Equal(("produce-100b", 512), (spec.Name, spec.RecordBytes));
        Assert.Equal(6, o.Partitions);
        Assert.Equal(3, o.WithPartitions(3).Partitions);
        Assert.Equal(6, o.Partitions);
    }

    [Theory]
    [InlineData("produce-1k-all-rf3")]
    [InlineData("produce-1k-all-rf3-idempotent-alone")]
    [InlineData("txn-100x1k-all-rf3")]
    public void Scenarios_kafka_09_cannot_run_alike_are_refused_with_the_ones_it_can(string scenario)
    {
        var o = PerfOptions.Parse(["--against-kafka", "--scenarios", scenario]);
        var e = Assert.Throws<PerfOptionsException>(() => KafkaComparison.Resolve(o));
        Assert.Contains(scenario, e.Message);
        Assert.Contains("produce-1k-alone", e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("0")]
    [InlineData("1,x")]
    [InlineData("1,2,3,4,5,6,7,8,9")]
    public void Bad_partition_counts_are_refused(string value) =>
        Assert.Throws<PerfOptionsException>(() => PerfOptions.Parse(["--against-kafka", "--partition-counts", value]));

    [Fact]
    public void Ratios_are_ours_over_kafkas_and_missing_where_a_side_has_no_figure()
    {
        var us = new MedianFigures { MBPerSec = 150, RecordsPerSec = 150_000, ConsumerMBPerSec = 90, P50Ms = 4 };
        var kafka = new MedianFigures { MBPerSec = 100, RecordsPerSec = 100_000, ConsumerMBPerSec = 120, P50Ms = 2, P99Ms = 9 };
        var r = KafkaComparison.Ratios(us, kafka)!;
        Assert.Equal(1.5, r.MBPerSec!.Value, 6);
        Assert.Equal(1.5, r.RecordsPerSec!.Value, 6);
        Assert.Equal(0.75, r.ConsumerMBPerSec!.Value, 6);
        Assert.Equal(2.0, r.P50Ms!.Value, 6);
        Assert.Null(r.P99Ms);
        Assert.Null(KafkaComparison.Ratios(us, null));
        Assert.Null(KafkaComparison.Ratios(us, new MedianFigures { MBPerSec = 0 })!.MBPerSec);
    }

    [Fact]
    public void The_table_shows_both_medians_and_the_ratio_per_partition_count()
    {
        var summary = new PerfSummary
        {
            CommandLine = "perf --against-kafka",
            StartedAt = DateTimeOffset.UnixEpoch,
            Target = "t",
            Machine = new MachineInfo(),
            Runs = 4,
            Comparisons =
            [
                new Comparison
                {
                    Scenario = "consume-from-start",
                    Partitions = 1,
                    Kafka = new ScenarioResult { Name = "consume-from-start", Description = "", Kind = nameof(ScenarioKind.ConsumeFromStart), Median = new MedianFigures { MBPerSec = 402 } },
                    Us = new ScenarioResult { Name = "consume-from-start", Description = "", Kind = nameof(ScenarioKind.ConsumeFromStart), Median = new MedianFigures { MBPerSec = 192 } },
                    Ratios = new ComparisonRatios { MBPerSec = 192.0 / 402 },
                },
            ],
        };
        var markdown = KafkaComparison.Markdown(summary);
        Assert.Contains("| consume-from-start | 1 | 402.0 | 192.0 | **0.48x** |", markdown);
        Assert.Contains("consume-from-start         1       402.0     192.0   0.48", KafkaComparison.Table(summary));
    }
}
