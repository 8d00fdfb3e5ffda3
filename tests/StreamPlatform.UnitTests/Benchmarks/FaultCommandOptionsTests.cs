using StreamPlatform.Benchmarks.Fault;
using StreamPlatform.Benchmarks.Perf;

namespace StreamPlatform.UnitTests.Benchmarks;

public class FaultCommandOptionsTests
{
    [Fact]
    public void Options_become_the_scenario_of_each_seed_with_the_duration_spread_over_the_rounds()
    {
        var o = FaultCommandOptions.Parse(["--seeds", "4, 9,-2", "--rounds", "10", "--partitions", "12", "--duration", "300",
            "--rate", "500", "--record-size", "1K", "--brokers", "5", "--json", "f.json"]);
        Assert.Equal([4, 9, -2], o.Seeds);
        var scenario = o.ScenarioOptions(9);
        Assert.Equal((9, 10, 12, 500, 1024), (scenario.Seed, scenario.Rounds, scenario.Partitions, scenario.RecordsPerSecond, scenario.RecordBytes));
        Assert.Equal(TimeSpan.FromSeconds(30), scenario.RoundSpacing);
        Assert.Equal((5, (short)3, 2), (o.Brokers, scenario.ReplicationFactor, scenario.MinInsyncReplicas));
        Assert.Equal("f.json", o.JsonFile);
    }

    [Fact]
    public void Defaults_are_three_seeds_of_five_back_to_back_rounds()
    {
        var o = FaultCommandOptions.Parse([]);
        Assert.Equal([1, 2, 3], o.Seeds);
        Assert.Equal(TimeSpan.Zero, o.ScenarioOptions(1).RoundSpacing);
        Assert.Equal(5, o.ScenarioOptions(1).Rounds);
        Assert.False(o.HelpRequested);
        Assert.True(FaultCommandOptions.Parse(["--help"]).HelpRequested);
    }

    [Theory]
    [InlineData("--seeds", "")]
    [InlineData("--seeds", "1,x")]
    [InlineData("--rounds", "0")]
    [InlineData("--partitions", "1001")]
    [InlineData("--duration", "-1")]
    [InlineData("--rate", "0")]
    [InlineData("--record-size", "16")]
    [InlineData("--brokers", "2")]
    public void Bad_values_are_rejected_with_a_message(string option, string value)
    {
        var e = Assert.Throws<PerfOptionsException>(() => FaultCommandOptions.Parse([option, value]));
        Assert.Contains(option, e.Message);
    }

    [Fact]
    public void Unknown_options_and_missing_values_are_rejected()
    {
        Assert.Throws<PerfOptionsException>(() => FaultCommandOptions.Parse(["--bogus"]));
        Assert.Throws<PerfOptionsException>(() => FaultCommandOptions.Parse(["--seeds"]));
    }
}
