using Confluent.Kafka;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Kafka;

/// <summary>
/// Consumers catching up on one partition many fetches long, with kcat and kafka-python: the case
/// the gateway's fetch read-ahead serves (Gateway.Service/Routing/FetchReadAhead.cs). Every record
/// arrives once, in offset order, whatever the client's fetch sizes and partition order.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class CatchingUpClientsTests : IDisposable
{
    // 16 MB: sixteen 1 MiB fetches (both clients' default max bytes per partition).
    private const int Records = 16_000;
    private const int ValueBytes = 1_000;
    private readonly ClusterFixture _fixture;
    private readonly ITestOutputHelper _output;
    private readonly IDisposable _attach;

    public CatchingUpClientsTests(ClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _output = output;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    private string Bootstrap => _fixture.BootstrapServers;

    /// <summary>A one-partition topic holding <see cref="Records"/> values "i:xxx…" at offsets i.</summary>
    private async Task<string> FilledTopicAsync(string prefix)
    {
        var topic = KafkaHelpers.UniqueTopic(prefix);
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 1);
        using var producer = new ProducerBuilder<Null, string>(KafkaHelpers.ProducerConfig(Bootstrap)).Build();
        var padding = new string('x', ValueBytes);
        for (var i = 0; i < Records; i++)
            producer.Produce(new TopicPartition(topic, 0), new Message<Null, string> { Value = $"{i}:{padding}" });
        Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(60)));
        return topic;
    }

    /// <summary>Lines "offset value-index" in the order read: every offset once, in order, each with its own value.</summary>
    private static void AssertEveryRecordInOrder(IEnumerable<string> lines)
    {
        var read = lines.Select(l => l.Split(' ', 2)).Select(p => (Offset: long.Parse(p[0]), Index: long.Parse(p[1]))).ToList();
        Assert.Equal(Records, read.Count);
        Assert.Equal(Enumerable.Range(0, Records).Select(i => ((long)i, (long)i)), read.Select(r => (r.Offset, r.Index)));
    }

    [Fact]
    public async Task KcatReadsAPartitionManyFetchesLongOnceAndInOrder()
    {
        var topic = await FilledTopicAsync("catchup-kcat");
        var consume = await ExternalProcess.RunAsync("kcat",
            ["-b", Bootstrap, "-t", topic, "-p", "0", "-C", "-o", "beginning", "-e", "-f", "%o %s\\n"], timeout: TimeSpan.FromSeconds(120));
        Assert.True(consume.ExitCode == 0, consume.StandardError);
        AssertEveryRecordInOrder(consume.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l[..l.IndexOf(':')]));
    }

    [Fact]
    public async Task KafkaPythonReadsAPartitionManyFetchesLongOnceAndInOrder()
    {
        var topic = await FilledTopicAsync("catchup-python");
        var script = """
            import sys
            from kafka import KafkaConsumer, TopicPartition
            bootstrap, topic, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
            consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, consumer_timeout_ms=20000)
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            n = 0
            for m in consumer:
                print(m.offset, m.value.split(b':', 1)[0].decode())
                n += 1
                if n == expected:
                    break
            consumer.close()
            """;
        var run = await ExternalProcess.RunPythonAsync(script, [Bootstrap, topic, Records.ToString()], timeout: TimeSpan.FromSeconds(120));
        Assert.True(run.ExitCode == 0, run.StandardError);
        AssertEveryRecordInOrder(run.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
