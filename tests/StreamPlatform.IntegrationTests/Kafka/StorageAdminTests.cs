using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Kafka;

/// <summary>Confluent.Kafka's DeleteRecords and IncrementalAlterConfigs against the real cluster.</summary>
[Collection(ClusterCollection.Name)]
public sealed class StorageAdminTests : IDisposable
{
    private readonly ClusterFixture _fixture;
    private readonly IDisposable _attach;

    public StorageAdminTests(ClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    private string Bootstrap => _fixture.BootstrapServers;

    [Fact]
    public async Task DeleteRecordsMovesTheLowWatermarkAndAlteredConfigsAreDescribed()
    {
        var topic = KafkaHelpers.UniqueTopic("storage");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 1);
        using (var producer = new ProducerBuilder<byte[], byte[]>(KafkaHelpers.ProducerConfig(Bootstrap)).Build())
        {
            for (var i = 0; i < 10; i++)
                await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[], byte[]> { Key = Encoding.UTF8.GetBytes($"k{i}"), Value = Encoding.UTF8.GetBytes($"v{i}") });
        }
        using var admin = KafkaHelpers.Admin(Bootstrap);

        var deleted = await admin.DeleteRecordsAsync([new TopicPartitionOffset(topic, 0, 6)]);
        Assert.Equal(6, Assert.Single(deleted).Offset.Value);
        var beyond = await Assert.ThrowsAsync<DeleteRecordsException>(() => admin.DeleteRecordsAsync([new TopicPartitionOffset(topic, 0, 100)]));
        Assert.Equal(ErrorCode.OffsetOutOfRange, Assert.Single(beyond.Results).Error.Code);
        using (var consumer = new ConsumerBuilder<byte[], byte[]>(KafkaHelpers.ConsumerConfig(Bootstrap)).Build())
        {
            var watermarks = consumer.QueryWatermarkOffsets(new TopicPartition(topic, 0), TimeSpan.FromSeconds(10));
            Assert.Equal((6L, 10L), (watermarks.Low.Value, watermarks.High.Value));
            var read = KafkaHelpers.ReadAll(Bootstrap, topic, 1, 4, TimeSpan.FromSeconds(30));
            Assert.Equal(["v6", "v7", "v8", "v9"], read.Select(r => Encoding.UTF8.GetString(r.Message.Value)));
        }

        var resource = new ConfigResource { Type = ResourceType.Topic, Name = topic };
        await admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [resource] =
            [
                new ConfigEntry { Name = "retention.ms", Value = "123456", IncrementalOperation = AlterConfigOpType.Set },
                new ConfigEntry { Name = "cleanup.policy", Value = "compact", IncrementalOperation = AlterConfigOpType.Append },
            ],
        });
        var entries = Assert.Single(await admin.DescribeConfigsAsync([resource])).Entries;
        Assert.Equal(("123456", "delete,compact"), (entries["retention.ms"].Value, entries["cleanup.policy"].Value));

        var bad = await Assert.ThrowsAsync<IncrementalAlterConfigsException>(() => admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [resource] = [new ConfigEntry { Name = "retention.ms", Value = "not-a-number", IncrementalOperation = AlterConfigOpType.Set }],
        }));
        Assert.Equal(ErrorCode.InvalidConfig, Assert.Single(bad.Results).Error.Code);
    }
}
