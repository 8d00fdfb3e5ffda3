using System.Text.Json;

namespace StreamPlatform.Benchmarks.Perf;

/// <summary>
/// Where a producer's latency goes, from librdkafka's statistics (statistics.interval.ms), as
/// medians over the snapshots taken in the measured window (each snapshot's window figures cover
/// the last interval): int_latency (produce() call until the record is in a request: queueing
/// and linger), outbuf_latency (request waiting to be sent), rtt (request sent until its
/// response: the server side, as the client sees it), and the batch sizes it managed to build.
/// Milliseconds and bytes.
/// </summary>
public sealed record ProducerStats(
    int Snapshots,
    double QueueLatencyAvgMs,
    double QueueLatencyP99Ms,
    double OutbufLatencyAvgMs,
    double RttAvgMs,
    double RttP99Ms,
    double BatchBytesAvg,
    double RecordsPerBatchAvg,
    double ProduceRequestsPerSec,
    double InFlightRequestsAvg);

public sealed class ProducerStatsCollector
{
    private readonly object _gate = new();
    private readonly List<Snapshot> _snapshots = [];
    private long _lastProduceRequests = -1;
    private long _lastTimeMicros = -1;

    /// <summary>Called with each statistics JSON; <paramref name="measuring"/> false = warmup or after the window.</summary>
    public void Add(string json, bool measuring)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            var time = root.GetProperty("time").GetInt64(); // seconds
            var ts = root.GetProperty("ts").GetInt64();     // microseconds (monotonic)
            _ = time;
            double queueAvg = 0, queueP99 = 0, outbufAvg = 0, rttAvg = 0, rttP99 = 0, inFlight = 0;
            long produceRequests = 0;
            var weight = 0L;
            foreach (var broker in root.GetProperty("brokers").EnumerateObject())
            {
                var b = broker.Value;
                if (b.GetProperty("nodeid").GetInt32() < 0)
                    continue; // bootstrap entries
                var requests = b.TryGetProperty("req", out var req) && req.TryGetProperty("Produce", out var p) ? p.GetInt64() : 0;
                produceRequests += requests;
                var rtt = b.GetProperty("rtt");
                var count = rtt.GetProperty("cnt").GetInt64();
                if (count == 0)
                    continue;
                // Weighted by the number of requests each broker answered in the interval.
                weight += count;
                rttAvg += rtt.GetProperty("avg").GetDouble() * count;
                rttP99 = Math.Max(rttP99, rtt.GetProperty("p99").GetDouble());
                var queue = b.GetProperty("int_latency");
                queueAvg += queue.GetProperty("avg").GetDouble() * count;
                queueP99 = Math.Max(queueP99, queue.GetProperty("p99").GetDouble());
                outbufAvg += b.GetProperty("outbuf_latency").GetProperty("avg").GetDouble() * count;
                inFlight += b.GetProperty("waitresp_cnt").GetInt64();
            }
            double batchBytes = 0, batchCount = 0;
            var topics = 0;
            foreach (var topic in root.GetProperty("topics").EnumerateObject())
            {
                var bs = topic.Value.GetProperty("batchsize");
                if (bs.GetProperty("cnt").GetInt64() == 0)
                    continue;
                batchBytes += bs.GetProperty("avg").GetDouble();
                batchCount += topic.Value.GetProperty("batchcnt").GetProperty("avg").GetDouble();
                topics++;
            }
            lock (_gate)
            {
                var requestsPerSec = _lastProduceRequests >= 0 && ts > _lastTimeMicros
                    ? (produceRequests - _lastProduceRequests) / ((ts - _lastTimeMicros) / 1e6)
                    : double.NaN;
                _lastProduceRequests = produceRequests;
                _lastTimeMicros = ts;
                if (!measuring || weight == 0)
                    return;
                _snapshots.Add(new Snapshot(queueAvg / weight / 1000, queueP99 / 1000, outbufAvg / weight / 1000, rttAvg / weight / 1000,
                    rttP99 / 1000, topics > 0 ? batchBytes / topics : 0, topics > 0 ? batchCount / topics : 0, requestsPerSec, inFlight));
            }
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            // A statistics layout this code does not know: no breakdown, the figures stand.
        }
    }

    public ProducerStats? Summary()
    {
        lock (_gate)
        {
            if (_snapshots.Count == 0)
                return null;
            double M(Func<Snapshot, double> f) => Math.Round(PerfCommand.MedianOf(_snapshots.Select(f).Where(v => !double.IsNaN(v))), 3);
            return new ProducerStats(_snapshots.Count, M(s => s.QueueAvgMs), M(s => s.QueueP99Ms), M(s => s.OutbufAvgMs), M(s => s.RttAvgMs),
                M(s => s.RttP99Ms), M(s => s.BatchBytes), M(s => s.BatchRecords), M(s => s.RequestsPerSec), M(s => s.InFlight));
        }
    }

    private sealed record Snapshot(double QueueAvgMs, double QueueP99Ms, double OutbufAvgMs, double RttAvgMs, double RttP99Ms,
        double BatchBytes, double BatchRecords, double RequestsPerSec, double InFlight);
}
