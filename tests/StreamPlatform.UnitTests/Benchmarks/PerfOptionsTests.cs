using StreamPlatform.Benchmarks.Perf;

namespace StreamPlatform.UnitTests.Benchmarks;

public class PerfOptionsTests
{
    [Theory]
    [InlineData("1024", 1024L)]
    [InlineData("64M", 64L << 20)]
    [InlineData("1G", 1L << 30)]
    [InlineData("1GiB", 1L << 30)]
    [InlineData("1.5k", 1536L)]
    public void Byte_sizes_accept_binary_suffixes(string text, long expected) =>
        Assert.Equal(expected, PerfOptions.ParseBytes("--consume-size", text, 1, 1L << 40));

    [Theory]
    [InlineData("--records", "0")]
    [InlineData("--partitions", "x")]
    [InlineData("--acks", "2")]
    [InlineData("--compression", "brotli")]
    [InlineData("--record-size", "8")]
    [InlineData("--runs", "51")]
    [InlineData("--producer-config", "novalue")]
    public void Bad_values_are_rejected_with_a_message(string option, string value)
    {
        var e = Assert.Throws<PerfOptionsException>(() => PerfOptions.Parse([option, value]));
        Assert.Contains(option, e.Message);
    }

    [Fact]
    public void Unknown_options_scenarios_and_missing_values_are_rejected()
    {
        Assert.Contains("produce-2k", Assert.Throws<PerfOptionsException>(() => PerfOptions.Parse(["--scenarios", "produce-2k"])).Message);
        Assert.Throws<PerfOptionsException>(() => PerfOptions.Parse(["--bogus"]));
        Assert.Throws<PerfOptionsException>(() => PerfOptions.Parse(["--runs"]));
    }

    [Fact]
    public void Defaults_run_every_scenario_with_six_partitions_and_a_1_GiB_consume()
    {
        var o = PerfOptions.Parse([]);
        Assert.Equal(ScenarioCatalog.DefaultNames, o.Scenarios);
        Assert.Equal(6, o.Partitions);
        Assert.Equal(1L << 30, o.ConsumeBytes);
        Assert.Equal(1, o.Runs);
        var names = ScenarioCatalog.Resolve(o).Select(s => s.Name).ToList();
        Assert.Equal(["ceiling-loopback", "ceiling-disk", "ceiling-sink-100b", "ceiling-sink-1k", "ceiling-sink-consume-1k", "produce-100b", "produce-1k", "produce-1k-alone", "produce-1k-all-rf3",
            "produce-1k-all-rf3-alone", "latency-1k-10mbs", "latency-1k-10mbs-all-rf3", "consume-from-start",
            "produce-1k-all-rf3-idempotent-alone", "txn-100x1k-all-rf3"], names);
    }

    [Fact]
    public void Overrides_apply_to_every_scenario_and_the_sink_ceiling_follows_the_record_size()
    {
        var o = PerfOptions.Parse(["--scenarios", "ceiling-sink,latency-1k-10mbs-all-rf3", "--record-size", "512", "--acks", "-1", "--rate", "2.5"]);
        var specs = ScenarioCatalog.Resolve(o);
        Assert.Equal(["ceiling-sink-512b", "latency-1k-10mbs-all-rf3"], specs.Select(s => s.Name));
        var latency = specs[1];
        Assert.Equal(512, latency.RecordBytes);
        Assert.Equal("all", latency.Acks);
        Assert.Equal(3, latency.ReplicationFactor);
        Assert.Equal(2.5, latency.RateMBps);
    }

    [Fact]
    public void No_ceilings_drops_the_ceiling_scenarios()
    {
        var specs = ScenarioCatalog.Resolve(PerfOptions.Parse(["--no-ceilings"]));
        Assert.DoesNotContain(specs, s => s.IsCeiling);
        Assert.Equal(10, specs.Count);
        string[] alone = ["produce-1k-alone", "produce-1k-all-rf3-alone", "produce-1k-all-rf3-idempotent-alone", "txn-100x1k-all-rf3"];
        Assert.All(specs, s => Assert.Equal(!alone.Contains(s.Name), s.WithConsumer));
    }

    [Theory]
    [InlineData(new[] { 3.0 }, 3.0)]
    [InlineData(new[] { 5.0, 1.0, 3.0 }, 3.0)]
    [InlineData(new[] { 4.0, 1.0, 3.0, 2.0 }, 2.5)]
    public void Median_of_odd_and_even_counts(double[] values, double expected) =>
        Assert.Equal(expected, PerfCommand.MedianOf(values));
}
