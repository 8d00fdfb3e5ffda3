using System.Text;
using Confluent.Kafka;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Kafka;

/// <summary>kill -9 of a broker in the middle of heavy produce loses no acknowledged record.</summary>
[Collection(ClusterCollection.Name)]
public sealed class CrashSafetyTests : IDisposable, IClassFixture<HarnessClusterFixture>
{
    private readonly HarnessClusterFixture _fixture;
    private readonly ITestOutputHelper _output;
    private readonly IDisposable _attach;

    public CrashSafetyTests(HarnessClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _output = output;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    [Fact]
    public async Task BrokerKilledDuringHeavyProduceKeepsEveryAcknowledgedRecord()
    {
        const int partitions = 6;
        var bootstrap = _fixture.BootstrapServers;
        var topic = KafkaHelpers.UniqueTopic("crash");
        // flush.messages=1: fsync after every append, as the issue asks ("acks=all, flush on").
        await KafkaHelpers.CreateTopicAsync(bootstrap, topic, partitions, configs: new() { ["flush.messages"] = "1" });

        var acknowledged = new List<(int Partition, long Offset, string Value)>();
        var failed = 0;
        var config = KafkaHelpers.ProducerConfig(bootstrap);
        config.MessageTimeoutMs = 60_000;
        using var producer = new ProducerBuilder<string, string>(config).Build();
        using var stop = new CancellationTokenSource();
        var sent = 0;
        var pump = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var i = Interlocked.Increment(ref sent);
                try
                {
                    producer.Produce(topic, new Message<string, string> { Key = $"k{i}", Value = $"value-{i}" }, r =>
                    {
                        lock (acknowledged)
                        {
                            if (r.Error.IsError) failed++;
                            else acknowledged.Add((r.Partition.Value, r.Offset.Value, r.Message.Value));
                        }
                    });
                }
                catch (ProduceException<string, string> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                {
                    await Task.Delay(5);
                }
            }
        });

        // Heavy produce is under way when the broker dies.
        await WaitUntilAsync(() => { lock (acknowledged) return acknowledged.Count >= 5_000; }, TimeSpan.FromSeconds(60));
        await _fixture.Orchestrator.KillServiceAsync("broker-2");
        int atKill;
        lock (acknowledged) atKill = acknowledged.Count;
        await Task.Delay(1_000);
        await _fixture.Orchestrator.StartServiceAsync("broker-2");
        await WaitUntilAsync(() => { lock (acknowledged) return acknowledged.Count >= atKill + 5_000; }, TimeSpan.FromSeconds(60));
        await stop.CancelAsync();
        await pump;
        producer.Flush(TimeSpan.FromSeconds(90));

        List<(int Partition, long Offset, string Value)> expected;
        lock (acknowledged) expected = [.. acknowledged];
        _output.WriteLine($"acknowledged {expected.Count}, failed {failed}, acknowledged before the kill {atKill}");

        using var admin = KafkaHelpers.Admin(bootstrap);
        await KafkaHelpers.WaitForLeadersAsync(admin, topic, partitions);
        var read = KafkaHelpers.ReadAll(bootstrap, topic, partitions, expected.Count, TimeSpan.FromSeconds(120))
            .ToDictionary(r => (r.Partition.Value, r.Offset.Value), r => Encoding.UTF8.GetString(r.Message.Value));
        var missing = expected.Where(e => !read.TryGetValue((e.Partition, e.Offset), out var v) || v != e.Value).ToList();
        Assert.True(missing.Count == 0,
            $"{missing.Count} acknowledged records missing or different after kill -9, e.g. {string.Join(", ", missing.Take(5))}");
    }

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"condition not met in {timeout}");
            await Task.Delay(20);
        }
    }
}
