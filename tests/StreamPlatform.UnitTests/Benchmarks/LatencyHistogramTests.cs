using StreamPlatform.Benchmarks.Perf;

namespace StreamPlatform.UnitTests.Benchmarks;

public class LatencyHistogramTests
{
    [Fact]
    public void Empty_histogram_has_no_percentiles()
    {
        var h = new LatencyHistogram();
        Assert.Equal(0, h.Count);
        Assert.Equal(-1, h.PercentileMicros(50));
    }

    [Fact]
    public void Values_below_256_us_are_exact()
    {
        var h = new LatencyHistogram();
        for (var v = 1; v <= 200; v++)
            h.Record(v);
        Assert.Equal(100, h.PercentileMicros(50));
        Assert.Equal(198, h.PercentileMicros(99));
        Assert.Equal(200, h.PercentileMicros(100));
        Assert.Equal(200, h.MaxMicros);
    }

    [Fact]
    public void Large_values_are_within_one_percent_and_max_is_exact()
    {
        var h = new LatencyHistogram();
        for (var v = 1; v <= 1_000_000; v++)
            h.Record(v);
        Assert.InRange(h.PercentileMicros(50), 500_000, 505_000);
        Assert.InRange(h.PercentileMicros(99), 990_000, 999_900);
        Assert.InRange(h.PercentileMicros(99.9), 999_000, 1_000_000);
        Assert.Equal(1_000_000, h.MaxMicros);
        Assert.Equal(1_000_000, h.PercentileMicros(100));
    }

    [Fact]
    public void Negative_values_count_as_zero_and_huge_values_do_not_overflow()
    {
        var h = new LatencyHistogram();
        h.Record(-5);
        h.Record(long.MaxValue / 2);
        Assert.Equal(2, h.Count);
        Assert.Equal(0, h.PercentileMicros(50));
        Assert.Equal(long.MaxValue / 2, h.MaxMicros);
    }
}
