using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace StreamPlatform.IntegrationTests.Infrastructure;

public static class KafkaHelpers
{
    public static string UniqueTopic(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 13, 249)];

    public static IAdminClient Admin(string bootstrap) =>
        new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap, SocketTimeoutMs = 30000 }).Build();

    public static async Task CreateTopicAsync(string bootstrap, string topic, int partitions, short replicationFactor = 1,
        Dictionary<string, string>? configs = null)
    {
        using var admin = Admin(bootstrap);
        await admin.CreateTopicsAsync([new TopicSpecification
        {
            Name = topic,
            NumPartitions = partitions,
            ReplicationFactor = replicationFactor,
            Configs = configs,
        }]);
        await WaitForLeadersAsync(admin, topic, partitions);
    }

    /// <summary>Metadata shows every partition with a leader (clients would retry until then too).</summary>
    public static async Task WaitForLeadersAsync(IAdminClient admin, string topic, int partitions)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var md = admin.GetMetadata(topic, TimeSpan.FromSeconds(10));
            var t = md.Topics.SingleOrDefault(x => x.Topic == topic);
            if (t is not null && t.Error.Code == ErrorCode.NoError && t.Partitions.Count == partitions
                && t.Partitions.All(p => p.Leader >= 0 && p.Error.Code == ErrorCode.NoError))
                return;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Topic {topic} has no leader for every partition after 30 s: {t?.Error}");
            await Task.Delay(100);
        }
    }

    public static ProducerConfig ProducerConfig(string bootstrap, Confluent.Kafka.CompressionType compression = Confluent.Kafka.CompressionType.None) => new()
    {
        BootstrapServers = bootstrap,
        Acks = Acks.All,
        CompressionType = compression,
        LingerMs = 5,
        MessageTimeoutMs = 60000,
        // The test checks per-partition order; a plain producer with retries could reorder.
        EnableIdempotence = false,
        MaxInFlight = 1,
    };

    public static ConsumerConfig ConsumerConfig(string bootstrap) => new()
    {
        BootstrapServers = bootstrap,
        GroupId = "unused-manual-assignment",
        EnableAutoCommit = false,
        AutoOffsetReset = AutoOffsetReset.Earliest,
        EnablePartitionEof = true,
    };

    /// <summary>Reads everything from the start of the given partitions until each reports end of partition.</summary>
    /// <param name="isolation">librdkafka's default is read_committed: records of open or aborted transactions are not read.</param>
    public static List<ConsumeResult<byte[], byte[]>> ReadAll(string bootstrap, string topic, int partitions, int expected,
        TimeSpan timeout, IsolationLevel isolation = IsolationLevel.ReadCommitted)
    {
        var config = ConsumerConfig(bootstrap);
        config.IsolationLevel = isolation;
        using var consumer = new ConsumerBuilder<byte[], byte[]>(config).Build();
        consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var results = new List<ConsumeResult<byte[], byte[]>>(expected);
        var eof = new HashSet<int>();
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline && (results.Count < expected || eof.Count < partitions))
        {
            var r = consumer.Consume(TimeSpan.FromMilliseconds(500));
            if (r is null) continue;
            if (r.IsPartitionEOF)
            {
                eof.Add(r.Partition.Value);
                continue;
            }
            eof.Remove(r.Partition.Value);
            results.Add(r);
        }
        consumer.Close();
        return results;
    }
}
