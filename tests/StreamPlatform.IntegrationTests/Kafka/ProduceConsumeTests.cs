using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;
using Wire = StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.IntegrationTests.Kafka;

/// <summary>Confluent.Kafka (librdkafka) against the real cluster: admin, produce and fetch.</summary>
[Collection(ClusterCollection.Name)]
public sealed class ProduceConsumeTests : IDisposable
{
    private const int Partitions = 6;
    private readonly ClusterFixture _fixture;
    private readonly IDisposable _attach;

    public ProduceConsumeTests(ClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    private string Bootstrap => _fixture.BootstrapServers;

    [Fact]
    public async Task AdminClientCreatesListsAndDescribesATopicWithSixPartitions()
    {
        var topic = KafkaHelpers.UniqueTopic("admin");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, Partitions, replicationFactor: 3,
            configs: new() { ["retention.ms"] = "3600000" });
        using var admin = KafkaHelpers.Admin(Bootstrap);

        // List: metadata for all topics names it with 6 led partitions.
        var all = admin.GetMetadata(TimeSpan.FromSeconds(10));
        var listed = Assert.Single(all.Topics, t => t.Topic == topic);
        Assert.Equal(Partitions, listed.Partitions.Count);
        Assert.Equal(Enumerable.Range(0, Partitions), listed.Partitions.Select(p => p.PartitionId).Order());
        var gatewayIds = all.Brokers.Select(b => b.BrokerId).ToHashSet();
        Assert.All(listed.Partitions, p => Assert.Contains(p.Leader, gatewayIds));

        // Describe: topic id and partitions.
        var described = await admin.DescribeTopicsAsync(TopicCollection.OfTopicNames([topic]));
        var d = Assert.Single(described.TopicDescriptions);
        Assert.Equal(topic, d.Name);
        Assert.Equal(ErrorCode.NoError, d.Error.Code);
        Assert.NotEqual(Guid.Empty.ToString(), d.TopicId.ToString());
        Assert.Equal(Partitions, d.Partitions.Count);

        // Configs: the explicit value with its source, and Kafka's defaults for the rest.
        var configs = await admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Topic, Name = topic }]);
        var entries = Assert.Single(configs).Entries;
        Assert.Equal("3600000", entries["retention.ms"].Value);
        Assert.False(entries["retention.ms"].IsDefault);
        Assert.Equal(ConfigSource.DynamicTopicConfig, entries["retention.ms"].Source);
        Assert.Equal("delete", entries["cleanup.policy"].Value);
        Assert.True(entries["cleanup.policy"].IsDefault);

        var brokerConfigs = await admin.DescribeConfigsAsync(
            [new ConfigResource { Type = ResourceType.Broker, Name = all.Brokers[0].BrokerId.ToString() }]);
        Assert.Equal("true", Assert.Single(brokerConfigs).Entries["auto.create.topics.enable"].Value);

        // The cluster: gateways are its brokers.
        var cluster = await admin.DescribeClusterAsync();
        Assert.False(string.IsNullOrEmpty(cluster.ClusterId));
        Assert.Equal(gatewayIds.Order(), cluster.Nodes.Select(n => n.Id).Order());

        // Creating it again is TOPIC_ALREADY_EXISTS.
        var again = await Assert.ThrowsAsync<CreateTopicsException>(() =>
            admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 1, ReplicationFactor = 1 }]));
        Assert.Equal(ErrorCode.TopicAlreadyExists, Assert.Single(again.Results).Error.Code);
    }

    [Theory]
    [InlineData(CompressionType.None)]
    [InlineData(CompressionType.Gzip)]
    [InlineData(CompressionType.Snappy)]
    [InlineData(CompressionType.Lz4)]
    [InlineData(CompressionType.Zstd)]
    public async Task TwentyThousandKeyedRecordsWithHeadersComeBackInPartitionOrderByteForByte(CompressionType compression)
    {
        const int count = 20_000;
        var topic = KafkaHelpers.UniqueTopic($"records-{compression.ToString().ToLowerInvariant()}");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, Partitions);

        var sent = new List<(Message<byte[], byte[]> Message, TopicPartitionOffset Position)>[Partitions];
        for (var p = 0; p < Partitions; p++) sent[p] = [];
        var failures = new List<string>();
        var baseTime = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - count;
        using (var producer = new ProducerBuilder<byte[], byte[]>(KafkaHelpers.ProducerConfig(Bootstrap, compression)).Build())
        {
            for (var i = 0; i < count; i++)
            {
                var message = MakeMessage(i, baseTime);
                producer.Produce(topic, message, report =>
                {
                    lock (sent)
                    {
                        if (report.Error.IsError) failures.Add(report.Error.ToString());
                        else sent[report.Partition.Value].Add((message, report.TopicPartitionOffset));
                    }
                });
            }
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(120)));
        }
        Assert.Empty(failures);
        Assert.Equal(count, sent.Sum(s => s.Count));
        // Keys hash over partitions: every partition got some.
        Assert.All(sent, s => Assert.NotEmpty(s));

        var received = KafkaHelpers.ReadAll(Bootstrap, topic, Partitions, count, TimeSpan.FromSeconds(120));
        Assert.Equal(count, received.Count);
        for (var p = 0; p < Partitions; p++)
        {
            var expected = sent[p].OrderBy(s => s.Position.Offset.Value).ToList();
            var actual = received.Where(r => r.Partition.Value == p).ToList();
            Assert.Equal(expected.Count, actual.Count);
            for (var i = 0; i < expected.Count; i++)
            {
                var (message, position) = expected[i];
                var got = actual[i];
                Assert.Equal(position.Offset.Value, got.Offset.Value);
                Assert.Equal(message.Key, got.Message.Key);
                Assert.Equal(message.Value, got.Message.Value);
                Assert.Equal(message.Timestamp.UnixTimestampMs, got.Message.Timestamp.UnixTimestampMs);
                Assert.Equal(TimestampType.CreateTime, got.Message.Timestamp.Type);
                Assert.Equal(message.Headers.Count, got.Message.Headers.Count);
                for (var h = 0; h < message.Headers.Count; h++)
                {
                    Assert.Equal(message.Headers[h].Key, got.Message.Headers[h].Key);
                    Assert.Equal(message.Headers[h].GetValueBytes(), got.Message.Headers[h].GetValueBytes());
                }
            }
            // Offsets are dense from 0 in a fresh partition.
            Assert.Equal(Enumerable.Range(0, actual.Count).Select(x => (long)x), actual.Select(a => a.Offset.Value));
        }
    }

    private static Message<byte[], byte[]> MakeMessage(int i, long baseTime)
    {
        var random = new Random(i);
        var value = new byte[random.Next(0, 400)];
        random.NextBytes(value);
        return new Message<byte[], byte[]>
        {
            Key = Encoding.UTF8.GetBytes($"key-{i % 997}"),
            Value = value,
            Timestamp = new Timestamp(baseTime + i, TimestampType.CreateTime),
            Headers = new Headers
            {
                { "seq", BitConverter.GetBytes(i) },
                { "kind", Encoding.UTF8.GetBytes(i % 2 == 0 ? "even" : "odd") },
            },
        };
    }

    [Fact]
    public async Task ManyPipelinedProduceRequestsOnOneConnectionKeepPerPartitionOrder()
    {
        // Small batches, no linger and a high in-flight limit: librdkafka pipelines many produce
        // requests per connection, which the gateway overlaps on its broker streams. No retries:
        // the order seen must be the gateway's doing, not a retry's. (How many requests were in
        // flight at once depends on timing; the raw test below pipelines deterministically.)
        const int count = 30_000;
        var topic = KafkaHelpers.UniqueTopic("pipelined");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, Partitions);
        var config = KafkaHelpers.ProducerConfig(Bootstrap);
        config.Acks = Acks.Leader;
        config.MaxInFlight = 1000;
        config.LingerMs = 0;
        config.BatchSize = 2048;
        config.MessageSendMaxRetries = 0;
        var failures = new List<string>();
        using (var producer = new ProducerBuilder<byte[], byte[]>(config).Build())
        {
            var value = new byte[200];
            for (var i = 0; i < count; i++)
            {
                var partition = i % Partitions;
                var seq = i / Partitions;
                BitConverter.TryWriteBytes(value, seq);
                producer.Produce(new TopicPartition(topic, partition), new Message<byte[], byte[]> { Value = (byte[])value.Clone() }, report =>
                {
                    if (report.Error.IsError) lock (failures) failures.Add(report.Error.ToString());
                });
            }
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(120)));
        }
        Assert.Empty(failures);

        var received = KafkaHelpers.ReadAll(Bootstrap, topic, Partitions, count, TimeSpan.FromSeconds(120));
        Assert.Equal(count, received.Count);
        for (var p = 0; p < Partitions; p++)
        {
            var seqs = received.Where(r => r.Partition.Value == p).Select(r => BitConverter.ToInt32(r.Message.Value)).ToList();
            Assert.Equal(Enumerable.Range(0, count / Partitions), seqs);
        }
    }

    [Fact]
    public async Task PipelinedRawProduceRequestsAreAppendedInRequestOrder()
    {
        // Every request is written before any response is read, so the gateway has all of them
        // in flight at once. Request k carries RecordsPerBatch records for every partition of a
        // new topic, so in request order its base offset on each partition is exactly
        // k * RecordsPerBatch; any reordering (between requests or across the broker streams)
        // shows as a different base offset, and the consumed values must count up per partition.
        const int Requests = 300;
        const int RecordsPerBatch = 5;
        var topic = KafkaHelpers.UniqueTopic("raw-pipelined");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, Partitions);
        await using var connection = await RawKafkaConnection.ConnectAsync(Bootstrap);
        var correlationIds = new List<int>(Requests);
        for (var k = 0; k < Requests; k++)
        {
            var data = new List<Wire.ProduceRequest.PartitionProduceData>();
            for (var p = 0; p < Partitions; p++)
            {
                using var builder = new StreamPlatform.Protos.Records.RecordBatchBuilder();
                for (var r = 0; r < RecordsPerBatch; r++)
                    builder.Append(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), (byte[]?)null, BitConverter.GetBytes(k * RecordsPerBatch + r));
                data.Add(new Wire.ProduceRequest.PartitionProduceData { Index = p, Records = builder.ToArray() });
            }
            correlationIds.Add(await connection.WriteRequestAsync(new Wire.ProduceRequest
            {
                Acks = 1,
                TimeoutMs = 30_000,
                TopicData = [new Wire.ProduceRequest.TopicProduceData { Name = topic, PartitionData = data }],
            }, 9));
        }
        for (var k = 0; k < Requests; k++)
        {
            var frame = await connection.ReadFrameAsync();
            Assert.NotNull(frame);
            var response = RawKafkaConnection.Decode<Wire.ProduceResponse>(frame, (short)Wire.ApiKey.Produce, 9, correlationIds[k]);
            foreach (var partition in Assert.Single(response.Responses).PartitionResponses)
            {
                Assert.Equal(0, partition.ErrorCode);
                Assert.Equal((long)k * RecordsPerBatch, partition.BaseOffset);
            }
        }

        var total = Requests * RecordsPerBatch * Partitions;
        var received = KafkaHelpers.ReadAll(Bootstrap, topic, Partitions, total, TimeSpan.FromSeconds(120));
        Assert.Equal(total, received.Count);
        for (var p = 0; p < Partitions; p++)
        {
            var values = received.Where(r => r.Partition.Value == p).Select(r => BitConverter.ToInt32(r.Message.Value)).ToList();
            Assert.Equal(Enumerable.Range(0, Requests * RecordsPerBatch), values);
        }
    }

    [Fact]
    public async Task ListOffsetsFindsTheFirstOffsetAtOrAfterATimestamp()
    {
        var topic = KafkaHelpers.UniqueTopic("times");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 1);
        var t0 = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 100_000;
        using (var producer = new ProducerBuilder<string, string>(KafkaHelpers.ProducerConfig(Bootstrap)).Build())
        {
            for (var i = 0; i < 50; i++)
            {
                await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<string, string>
                {
                    Key = $"k{i}", Value = $"v{i}", Timestamp = new Timestamp(t0 + i * 1000, TimestampType.CreateTime),
                });
            }
        }

        using var consumer = new ConsumerBuilder<string, string>(KafkaHelpers.ConsumerConfig(Bootstrap)).Build();
        var tp = new TopicPartition(topic, 0);
        var found = consumer.OffsetsForTimes(
        [
            new TopicPartitionTimestamp(tp, new Timestamp(t0 + 5_500, TimestampType.CreateTime)),
        ], TimeSpan.FromSeconds(10));
        Assert.Equal(6, Assert.Single(found).Offset.Value);

        var exact = consumer.OffsetsForTimes([new TopicPartitionTimestamp(tp, new Timestamp(t0 + 7_000, TimestampType.CreateTime))], TimeSpan.FromSeconds(10));
        Assert.Equal(7, Assert.Single(exact).Offset.Value);

        var beyond = consumer.OffsetsForTimes([new TopicPartitionTimestamp(tp, new Timestamp(t0 + 500_000, TimestampType.CreateTime))], TimeSpan.FromSeconds(10));
        Assert.Equal(Offset.End, Assert.Single(beyond).Offset);

        var watermarks = consumer.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(10));
        Assert.Equal(0, watermarks.Low.Value);
        Assert.Equal(50, watermarks.High.Value);
    }

    [Fact]
    public async Task ADeletedTopicIsGone()
    {
        var topic = KafkaHelpers.UniqueTopic("deleted");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 3);
        using (var producer = new ProducerBuilder<string, string>(KafkaHelpers.ProducerConfig(Bootstrap)).Build())
            await producer.ProduceAsync(topic, new Message<string, string> { Key = "k", Value = "v" });

        using var admin = KafkaHelpers.Admin(Bootstrap);
        await admin.DeleteTopicsAsync([topic]);

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (admin.GetMetadata(TimeSpan.FromSeconds(10)).Topics.Any(t => t.Topic == topic))
        {
            Assert.True(DateTime.UtcNow < deadline, "the deleted topic is still listed after 30 s");
            await Task.Delay(100);
        }
        var describe = await Assert.ThrowsAsync<DescribeTopicsException>(() =>
            admin.DescribeTopicsAsync(TopicCollection.OfTopicNames([topic])));
        Assert.Equal(ErrorCode.UnknownTopicOrPart, Assert.Single(describe.Results.TopicDescriptions).Error.Code);

        var deleteAgain = await Assert.ThrowsAsync<DeleteTopicsException>(() => admin.DeleteTopicsAsync([topic]));
        Assert.Equal(ErrorCode.UnknownTopicOrPart, Assert.Single(deleteAgain.Results).Error.Code);
    }
}
