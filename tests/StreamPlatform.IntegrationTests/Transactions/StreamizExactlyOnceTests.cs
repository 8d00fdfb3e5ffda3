using System.Globalization;
using System.Text;
using Confluent.Kafka;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Transactions;

/// <summary>
/// Issue 13 tried as a new user would: a Streamiz.Kafka.Net (NuGet) application with processing
/// guarantee exactly-once (tests/StreamPlatform.EosApps `count`) counts records by key into an
/// in-memory store backed by a changelog topic and writes every new count to a result topic. It
/// is killed -9 in the middle of the run (seeded point, printed; STREAMPLATFORM_FAULT_SEED
/// repeats it) and restarted; more input arrives meanwhile. The result topic read with
/// read_committed must end with each key's exact count, each key's counts rising one by one: no
/// record counted twice (a replay after the kill) and none skipped.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class StreamizExactlyOnceTests : IDisposable
{
    private const string SeedVariable = "STREAMPLATFORM_FAULT_SEED";
    private const int Partitions = 3;
    private const int Keys = 12;
    private const int Records = 3_000;
    private const int RecordsPerSecond = 400;
    private static readonly TimeSpan FinishTimeout = TimeSpan.FromSeconds(60);

    private readonly ClusterFixture _fixture;
    private readonly ITestOutputHelper _output;
    private readonly IDisposable _attach;
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();

    public StreamizExactlyOnceTests(ClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _output = output;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    [Fact]
    public async Task Streamiz_exactly_once_count_by_key_gives_exact_counts_after_the_application_is_killed_mid_run()
    {
        var seed = Environment.GetEnvironmentVariable(SeedVariable) is { Length: > 0 } text
            ? int.Parse(text, CultureInfo.InvariantCulture)
            : Random.Shared.Next(1, 1_000_000);
        _output.WriteLine($"{SeedVariable}={seed}");
        var random = new Random(seed);
        var bootstrap = _fixture.BootstrapServers;
        var input = KafkaHelpers.UniqueTopic("streamiz-in");
        var result = KafkaHelpers.UniqueTopic("streamiz-counts");
        await KafkaHelpers.CreateTopicAsync(bootstrap, input, Partitions, replicationFactor: 3);
        await KafkaHelpers.CreateTopicAsync(bootstrap, result, Partitions, replicationFactor: 3);
        var applicationId = $"streamiz-eos-{Guid.NewGuid():N}"[..24];
        // Keys and the pace drawn up front from the seed: the input is the same for a repeated seed.
        var keys = Enumerable.Range(0, Records).Select(_ => $"key-{random.Next(Keys)}").ToArray();
        var expected = keys.GroupBy(k => k).ToDictionary(g => g.Key, g => (long)g.Count());
        var killAfter = TimeSpan.FromMilliseconds(1000 + random.Next(2000));
        var downFor = TimeSpan.FromMilliseconds(random.Next(1000));

        string[] arguments = ["count", bootstrap, applicationId, input, result];
        var app = EosAppProcess.Start("streamiz-1", arguments, Log);
        var produced = 0;
        Task? produce = null;
        try
        {
            Assert.True(await app.WaitForLineAsync(l => l.Contains("->RUNNING", StringComparison.Ordinal), TimeSpan.FromSeconds(60)),
                $"seed {seed}: the Streamiz application did not reach RUNNING within 60 s");
            // Input arrives at a steady pace for the whole run, before, during and after the kill.
            produce = Task.Run(() =>
            {
                using var producer = new ProducerBuilder<string, string>(new ProducerConfig
                {
                    BootstrapServers = bootstrap, EnableIdempotence = true, Acks = Acks.All, LingerMs = 5,
                }).Build();
                var clock = System.Diagnostics.Stopwatch.StartNew();
                foreach (var key in keys)
                {
                    while (produced > clock.Elapsed.TotalSeconds * RecordsPerSecond)
                        Thread.Sleep(2);
                    producer.Produce(input, new Message<string, string> { Key = key, Value = "v" });
                    Interlocked.Increment(ref produced);
                }
                Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(60)));
            });

            var firstCounts = await WaitForResultsAsync(bootstrap, result, r => r.Count > 0, TimeSpan.FromSeconds(60));
            Assert.True(firstCounts.Count > 0, $"seed {seed}: no committed count within 60 s of starting");
            await Task.Delay(killAfter);
            app.Kill();
            var producedAtKill = Volatile.Read(ref produced);
            Log($"killed -9 with {producedAtKill} of {Records} records produced");
            Assert.True(producedAtKill < Records, $"seed {seed}: the input was complete before the kill (too slow a start for this test's pace)");
            await Task.Delay(downFor);
            app.Dispose();
            app = EosAppProcess.Start("streamiz-2", arguments, Log);
            await produce;

            var final = await WaitForResultsAsync(bootstrap, result, r => Latest(r).Values.Sum() >= Records, FinishTimeout);
            var latest = Latest(final);
            Log($"final counts: {string.Join(", ", latest.OrderBy(k => k.Key).Select(k => $"{k.Key}={k.Value}"))}");
            Assert.Equal(expected.OrderBy(k => k.Key), latest.OrderBy(k => k.Key));
            // Without caching every record emits its key's new count: 1, 2, 3, ... exactly once each.
            foreach (var key in expected.Keys)
            {
                var counts = final.Where(r => r.Key == key).Select(r => r.Count).ToList();
                Assert.True(counts.SequenceEqual(Enumerable.Range(1, counts.Count).Select(n => (long)n)),
                    $"seed {seed}: {key}'s counts are not 1..{counts.Count} in order: {string.Join(",", counts.Take(50))}");
            }
        }
        finally
        {
            app.Dispose();
            if (produce is not null)
                await Task.WhenAny(produce, Task.Delay(TimeSpan.FromSeconds(60)));
        }
    }

    private sealed record CountRecord(int Partition, long Offset, string Key, long Count);

    /// <summary>Each key's last count (keys live in one partition each: the highest offset is the latest).</summary>
    private static Dictionary<string, long> Latest(IEnumerable<CountRecord> records) =>
        records.GroupBy(r => r.Key).ToDictionary(g => g.Key, g => g.MaxBy(r => (r.Partition, r.Offset))!.Count);

    private static async Task<List<CountRecord>> WaitForResultsAsync(string bootstrap, string topic, Func<List<CountRecord>, bool> done, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var read = KafkaHelpers.ReadAll(bootstrap, topic, Partitions, 0, TimeSpan.FromSeconds(10))
                .Select(r => new CountRecord(r.Partition.Value, r.Offset.Value, Encoding.UTF8.GetString(r.Message.Key),
                    long.Parse(Encoding.UTF8.GetString(r.Message.Value), CultureInfo.InvariantCulture)))
                .OrderBy(r => r.Partition).ThenBy(r => r.Offset).ToList();
            if (done(read) || DateTime.UtcNow >= deadline)
                return read;
            await Task.Delay(500);
        }
    }

    private void Log(string line)
    {
        try
        {
            _output.WriteLine($"[test {_clock.Elapsed.TotalSeconds,6:F1}s] {line}");
        }
        catch (InvalidOperationException)
        {
            // The application's output may arrive after the test ended.
        }
    }
}
