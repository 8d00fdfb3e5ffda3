using Confluent.Kafka;
using Confluent.Kafka.Admin;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Kafka;

/// <summary>Everything acknowledged survives a full stop and start of the cluster on the same data.</summary>
[Collection(ClusterCollection.Name)]
public sealed class RestartTests : IDisposable, IClassFixture<HarnessClusterFixture>
{
    private readonly HarnessClusterFixture _fixture;
    private readonly IDisposable _attach;

    public RestartTests(HarnessClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    [Fact]
    public async Task DataAndTopicsSurviveAFullClusterRestart()
    {
        const int partitions = 6, count = 3000;
        var bootstrap = _fixture.BootstrapServers;
        var topic = KafkaHelpers.UniqueTopic("restart");
        await KafkaHelpers.CreateTopicAsync(bootstrap, topic, partitions);
        var acknowledged = new List<(int Partition, long Offset, string Key, string Value)>();
        using (var producer = new ProducerBuilder<string, string>(KafkaHelpers.ProducerConfig(bootstrap)).Build())
        {
            for (var i = 0; i < count; i++)
            {
                producer.Produce(topic, new Message<string, string> { Key = $"k{i}", Value = $"value-{i}" }, r =>
                {
                    Assert.False(r.Error.IsError, r.Error.ToString());
                    lock (acknowledged) acknowledged.Add((r.Partition.Value, r.Offset.Value, r.Message.Key, r.Message.Value));
                });
            }
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(60)));
        }
        string topicIdBefore;
        using (var admin = KafkaHelpers.Admin(bootstrap))
            topicIdBefore = (await admin.DescribeTopicsAsync(TopicCollection.OfTopicNames([topic])))
                .TopicDescriptions[0].TopicId.ToString();

        await _fixture.Orchestrator.StopAsync();
        await _fixture.Orchestrator.StartAsync();

        using (var admin = KafkaHelpers.Admin(bootstrap))
        {
            await KafkaHelpers.WaitForLeadersAsync(admin, topic, partitions);
            var described = await admin.DescribeTopicsAsync(TopicCollection.OfTopicNames([topic]));
            Assert.Equal(topicIdBefore, described.TopicDescriptions[0].TopicId.ToString());
        }
        var received = KafkaHelpers.ReadAll(bootstrap, topic, partitions, count, TimeSpan.FromSeconds(60));
        var got = received
            .Select(r => (r.Partition.Value, r.Offset.Value, System.Text.Encoding.UTF8.GetString(r.Message.Key), System.Text.Encoding.UTF8.GetString(r.Message.Value)))
            .OrderBy(x => x.Item1).ThenBy(x => x.Item2).ToList();
        Assert.Equal(acknowledged.OrderBy(x => x.Partition).ThenBy(x => x.Offset).ToList(), got);

        // And the restarted cluster takes new writes after the old ones.
        using var producer2 = new ProducerBuilder<string, string>(KafkaHelpers.ProducerConfig(bootstrap)).Build();
        var after = await producer2.ProduceAsync(new TopicPartition(topic, 0), new Message<string, string> { Key = "after", Value = "restart" });
        Assert.Equal(acknowledged.Count(a => a.Partition == 0), after.Offset.Value);
    }
}
