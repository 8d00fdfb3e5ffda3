using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Kafka;

/// <summary>Other clients, as a new user would try them: kcat and kafka-python (Debian's packages).</summary>
[Collection(ClusterCollection.Name)]
public sealed class OtherClientsTests : IDisposable
{
    private readonly ClusterFixture _fixture;
    private readonly ITestOutputHelper _output;
    private readonly IDisposable _attach;

    public OtherClientsTests(ClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _output = output;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    private string Bootstrap => _fixture.BootstrapServers;

    [Fact]
    public async Task KcatListsMetadataProducesAndConsumes()
    {
        var topic = KafkaHelpers.UniqueTopic("kcat");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 3);

        var list = await ExternalProcess.RunAsync("kcat", ["-b", Bootstrap, "-L"]);
        _output.WriteLine(list.ToString());
        Assert.Equal(0, list.ExitCode);
        Assert.Contains("1 brokers:", list.StandardOutput);
        Assert.Contains($"topic \"{topic}\" with 3 partitions:", list.StandardOutput);

        var lines = Enumerable.Range(0, 100).Select(i => $"key{i}:value {i} ünïcode").ToArray();
        var produce = await ExternalProcess.RunAsync("kcat", ["-b", Bootstrap, "-t", topic, "-P", "-K:", "-z", "snappy"],
            standardInput: string.Join('\n', lines) + "\n");
        _output.WriteLine(produce.ToString());
        Assert.Equal(0, produce.ExitCode);

        var consume = await ExternalProcess.RunAsync("kcat",
            ["-b", Bootstrap, "-t", topic, "-C", "-o", "beginning", "-e", "-f", "%p %o %k:%s\\n"]);
        _output.WriteLine(consume.ToString());
        Assert.Equal(0, consume.ExitCode);
        var consumed = consume.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', 3)).ToList();
        Assert.Equal(lines.Order(), consumed.Select(c => c[2]).Order());
        // Within each partition offsets are 0..n-1 in order, and a key always lands in one partition.
        foreach (var partition in consumed.GroupBy(c => c[0]))
            Assert.Equal(Enumerable.Range(0, partition.Count()).Select(i => i.ToString()), partition.Select(c => c[1]));
    }

    [Fact]
    public async Task KafkaPythonProducerAndConsumerWorkWithAnAutoCreatedTopic()
    {
        var topic = KafkaHelpers.UniqueTopic("python");
        var script = $$"""
            import sys
            from kafka import KafkaProducer, KafkaConsumer, TopicPartition
            bootstrap, topic = sys.argv[1], sys.argv[2]
            producer = KafkaProducer(bootstrap_servers=bootstrap, acks='all', retries=5, compression_type='gzip')
            futures = [producer.send(topic, key=b'k%d' % i, value=b'v%d' % i) for i in range(200)]
            producer.flush(30)
            offsets = [f.get(timeout=30) for f in futures]
            producer.close()
            consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset='earliest',
                                     consumer_timeout_ms=10000, enable_auto_commit=False)
            seen = {}
            for m in consumer:
                seen[m.key] = m.value
                if len(seen) == 200:
                    break
            consumer.close()
            assert len(seen) == 200, 'consumed %d of 200' % len(seen)
            assert all(seen[b'k%d' % i] == b'v%d' % i for i in range(200)), 'values differ'
            print('OK', len(offsets), len(seen))
            """;
        var run = await ExternalProcess.RunPythonAsync(script, [Bootstrap, topic], timeout: TimeSpan.FromSeconds(120));
        _output.WriteLine(run.ToString());
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("OK 200 200", run.StandardOutput);

        // The topic was created by the first produce, with the cluster's default partition count.
        using var admin = KafkaHelpers.Admin(Bootstrap);
        var md = admin.GetMetadata(TimeSpan.FromSeconds(10));
        Assert.Contains(md.Topics, t => t.Topic == topic && t.Partitions.Count == 1);
    }
    [Fact]
    public async Task KafkaPythonDescribeConsumerGroupsShowsTheMembersClientHost()
    {
        var topic = KafkaHelpers.UniqueTopic("python-describe");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 1);
        var group = "python-describe-" + Guid.NewGuid().ToString("N");
        var script = """
            import sys, time
            from kafka import KafkaConsumer
            from kafka.admin import KafkaAdminClient
            bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
            consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, client_id='py-describer')
            deadline = time.time() + 60
            while not consumer.assignment() and time.time() < deadline:
                consumer.poll(timeout_ms=500)
            admin = KafkaAdminClient(bootstrap_servers=bootstrap)
            info = admin.describe_consumer_groups([group])[0]
            for m in info.members:
                print('MEMBER', info.state, m.client_id, m.client_host)
            consumer.close()
            admin.close()
            """;
        var run = await ExternalProcess.RunPythonAsync(script, [Bootstrap, topic, group], timeout: TimeSpan.FromSeconds(120));
        _output.WriteLine(run.ToString());
        Assert.True(run.ExitCode == 0, run.ToString());
        // Kafka reports the peer as Java's InetAddress.toString(): "/" and the address.
        var member = Assert.Single(run.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("MEMBER "));
        Assert.Equal("MEMBER Stable py-describer /127.0.0.1", member.Trim());
    }
}
