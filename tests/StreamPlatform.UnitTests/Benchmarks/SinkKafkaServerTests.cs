using System.Buffers.Binary;
using System.Net.Sockets;
using Confluent.Kafka;
using StreamPlatform.Benchmarks.Perf;

namespace StreamPlatform.UnitTests.Benchmarks;

/// <summary>The client-ceiling sink against a real librdkafka producer (Confluent.Kafka).</summary>
public class SinkKafkaServerTests
{
    private static ProducerConfig Config(string bootstrap, Acks acks) => new()
    {
        BootstrapServers = bootstrap,
        Acks = acks,
        LingerMs = 1,
        EnableIdempotence = false,
        MessageTimeoutMs = 20_000,
    };

    [Fact]
    public async Task Acknowledges_every_record_with_increasing_offsets_per_partition()
    {
        await using var sink = new SinkKafkaServer(partitions: 3);
        using var producer = new ProducerBuilder<Null, byte[]>(Config(sink.BootstrapServers, Acks.Leader)).Build();
        var reports = new List<DeliveryResult<Null, byte[]>>();
        for (var i = 0; i < 300; i++)
            reports.Add(await producer.ProduceAsync(new TopicPartition("sink-topic", i % 3), new Message<Null, byte[]> { Value = new byte[100] }));

        Assert.All(reports, r => Assert.Equal(PersistenceStatus.Persisted, r.Status));
        foreach (var partition in reports.GroupBy(r => r.Partition.Value))
            Assert.Equal(Enumerable.Range(0, 100).Select(i => (long)i), partition.Select(r => r.Offset.Value));
        Assert.Equal(300, sink.Records);
        // Magic-2 batches (61-byte header + the record): librdkafka only uses them when the
        // broker advertises Produce v3+ and Fetch v4+; with less it falls back to magic 0 sets.
        Assert.True(sink.RecordBytes >= 300 * (61 + 100), $"{sink.RecordBytes} bytes");
    }

    [Fact]
    public async Task Metadata_lists_the_sink_as_leader_of_every_partition()
    {
        await using var sink = new SinkKafkaServer(partitions: 6);
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = sink.BootstrapServers }).Build();
        var md = admin.GetMetadata("any-topic", TimeSpan.FromSeconds(10));
        var topic = Assert.Single(md.Topics);
        Assert.Equal(ErrorCode.NoError, topic.Error.Code);
        Assert.Equal(6, topic.Partitions.Count);
        Assert.All(topic.Partitions, p => Assert.Equal(SinkKafkaServer.NodeId, p.Leader));
        Assert.Equal(sink.Port, Assert.Single(md.Brokers).Port);
    }

    [Fact]
    public async Task Acks_zero_gets_no_responses_and_every_record_still_arrives()
    {
        await using var sink = new SinkKafkaServer(partitions: 1);
        using var producer = new ProducerBuilder<Null, byte[]>(Config(sink.BootstrapServers, Acks.None)).Build();
        for (var i = 0; i < 200; i++)
            producer.Produce("sink-topic", new Message<Null, byte[]> { Value = new byte[50] });
        Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(20)));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (sink.Records < 200 && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        Assert.Equal(200, sink.Records);
    }

    [Fact]
    public async Task Serves_every_record_of_every_partition_in_order_to_a_consumer()
    {
        const int partitions = 2;
        await using var sink = new SinkKafkaServer(partitions, fetchRecordsPerPartition: 1000, fetchRecordBytes: 200);
        var perPartition = sink.FetchRecordsPerPartition;
        Assert.Equal(1024, perPartition); // rounded up to whole 64-record batches
        using var consumer = new ConsumerBuilder<Ignore, byte[]>(new ConsumerConfig
        {
            BootstrapServers = sink.BootstrapServers, GroupId = "unused", EnableAutoCommit = false, EnablePartitionEof = true,
        }).Build();
        consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset("sink-topic", p, new Offset(0))));
        var offsets = Enumerable.Range(0, partitions).ToDictionary(p => p, _ => new List<long>());
        var eof = new HashSet<int>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (eof.Count < partitions && DateTime.UtcNow < deadline)
        {
            var r = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (r is null) continue;
            if (r.IsPartitionEOF)
            {
                eof.Add(r.Partition.Value);
                continue;
            }
            Assert.Equal(200, r.Message.Value.Length);
            offsets[r.Partition.Value].Add(r.Offset.Value);
        }
        consumer.Close();
        Assert.Equal(partitions, eof.Count);
        foreach (var (_, seen) in offsets)
            Assert.Equal(Enumerable.Range(0, (int)perPartition).Select(i => (long)i), seen);
        Assert.True(sink.FetchedBytes >= partitions * perPartition * 200);
    }

    [Fact]
    public async Task A_malformed_frame_closes_only_that_connection()
    {
        await using var sink = new SinkKafkaServer(partitions: 1);
        using (var bad = new TcpClient())
        {
            await bad.ConnectAsync("127.0.0.1", sink.Port);
            var frame = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(frame, -7);
            await bad.GetStream().WriteAsync(frame);
            var buffer = new byte[16];
            var read = await bad.GetStream().ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(0, read); // closed by the sink
        }

        using var producer = new ProducerBuilder<Null, byte[]>(Config(sink.BootstrapServers, Acks.Leader)).Build();
        var result = await producer.ProduceAsync("sink-topic", new Message<Null, byte[]> { Value = [1, 2, 3] });
        Assert.Equal(0, result.Offset.Value);
    }
}
