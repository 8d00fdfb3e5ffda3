using StreamPlatform.Benchmarks.Perf;

namespace StreamPlatform.UnitTests.Benchmarks;

public class ProducerStatsCollectorTests
{
    // The parts of librdkafka's statistics JSON the collector reads (times in microseconds).
    private static string Stats(long tsMicros, long produceRequests, double rttAvgUs, double queueAvgUs, int rttCount = 10)
    {
        string N(double v) => v.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return "{\"time\": 1, \"ts\": " + tsMicros + ", \"brokers\": {"
            + "\"bootstrap\": {\"nodeid\": -1, \"req\": {\"Produce\": 0}, \"rtt\": {\"cnt\": 0, \"avg\": 0, \"p99\": 0},"
            + " \"int_latency\": {\"avg\": 0, \"p99\": 0}, \"outbuf_latency\": {\"avg\": 0}, \"waitresp_cnt\": 0},"
            + "\"127.0.0.1:9092/1\": {\"nodeid\": 1, \"req\": {\"Produce\": " + produceRequests + "},"
            + " \"rtt\": {\"cnt\": " + rttCount + ", \"avg\": " + N(rttAvgUs) + ", \"p99\": " + N(rttAvgUs * 2) + "},"
            + " \"int_latency\": {\"avg\": " + N(queueAvgUs) + ", \"p99\": " + N(queueAvgUs * 3) + "},"
            + " \"outbuf_latency\": {\"avg\": 100}, \"waitresp_cnt\": 4}},"
            + " \"topics\": {\"t\": {\"batchsize\": {\"cnt\": 5, \"avg\": 102400}, \"batchcnt\": {\"cnt\": 5, \"avg\": 100}}}}";
    }

    [Fact]
    public void Medians_of_the_measured_snapshots_in_milliseconds()
    {
        var c = new ProducerStatsCollector();
        c.Add(Stats(1_000_000, 100, 99_000, 99_000), measuring: false); // warmup: only the request counter baseline
        c.Add(Stats(2_000_000, 150, 2_000, 1_000), measuring: true);
        c.Add(Stats(3_000_000, 250, 4_000, 3_000), measuring: true);
        c.Add(Stats(4_000_000, 300, 3_000, 2_000), measuring: true);

        var s = Assert.IsType<ProducerStats>(c.Summary());
        Assert.Equal(3, s.Snapshots);
        Assert.Equal(3.0, s.RttAvgMs);
        Assert.Equal(6.0, s.RttP99Ms);
        Assert.Equal(2.0, s.QueueLatencyAvgMs);
        Assert.Equal(0.1, s.OutbufLatencyAvgMs);
        Assert.Equal(50.0, s.ProduceRequestsPerSec); // per second deltas 50, 100, 50
        Assert.Equal(4.0, s.InFlightRequestsAvg);
        Assert.Equal(102400.0, s.BatchBytesAvg);
        Assert.Equal(100.0, s.RecordsPerBatchAvg);
    }

    [Fact]
    public void Nothing_measured_or_unknown_layout_gives_no_summary()
    {
        var c = new ProducerStatsCollector();
        c.Add("{\"unexpected\": true}", measuring: true);
        c.Add("not json", measuring: true);
        c.Add(Stats(1_000_000, 1, 1_000, 1_000, rttCount: 0), measuring: true); // no request answered in the interval
        Assert.Null(c.Summary());
    }
}
