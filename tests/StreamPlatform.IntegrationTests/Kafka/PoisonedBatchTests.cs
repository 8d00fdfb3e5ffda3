using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Confluent.Kafka;
using StreamPlatform.IntegrationTests.Infrastructure;
using StreamPlatform.Protos.Records;
using Xunit.Abstractions;
using Wire = StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.IntegrationTests.Kafka;

/// <summary>
/// Hand-made batches a client library would not send (issue 9, "data a client can poison"),
/// produced over a raw connection, then read by real consumers: what the broker refuses must not
/// reach them, and what it stores must be what Kafka would store.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class PoisonedBatchTests : IDisposable
{
    private const short ProduceVersion = 9;
    private readonly ClusterFixture _fixture;
    private readonly ITestOutputHelper _output;
    private readonly IDisposable _attach;

    public PoisonedBatchTests(ClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _output = output;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    private string Bootstrap => _fixture.BootstrapServers;

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    private static async Task<Wire.ProduceResponse.PartitionProduceResponse> ProduceRawAsync(RawKafkaConnection connection, string topic, byte[] batch)
    {
        var response = await connection.SendAsync<Wire.ProduceResponse>(new Wire.ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 30_000,
            TopicData = [new Wire.ProduceRequest.TopicProduceData { Name = topic, PartitionData = [new() { Index = 0, Records = batch }] }],
        }, ProduceVersion);
        return Assert.Single(Assert.Single(response.Responses).PartitionResponses);
    }

    private static byte[] GzipBatch(long timestamp, params string[] values)
    {
        using var builder = new RecordBatchBuilder { Compression = Protos.Records.CompressionType.Gzip };
        foreach (var v in values) builder.Append(timestamp, Utf8("k-" + v), Utf8(v));
        return builder.ToArray();
    }

    private static void FixCrc(byte[] batch)
        => BinaryPrimitives.WriteUInt32BigEndian(batch.AsSpan(RecordBatchHeader.CrcOffset), RecordBatchHeader.ComputeCrc(batch));

    [Fact]
    public async Task AGzipBatchWithoutItsTrailerIsRefusedAndConsumersReadTheGoodData()
    {
        var topic = KafkaHelpers.UniqueTopic("gzip-cut");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 1);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await using var connection = await RawKafkaConnection.ConnectAsync(Bootstrap);

        Assert.Equal(0, (await ProduceRawAsync(connection, topic, GzipBatch(now, "a", "b"))).ErrorCode);
        // The same kind of batch with the gzip trailer (CRC32, ISIZE) cut off and the batch CRC
        // recomputed, as the campaign sent it: librdkafka consumers spun on it, kafka-python
        // raised EOFError. Kafka answers UNKNOWN_SERVER_ERROR (its codec's EOFException).
        var good = GzipBatch(now, "poison-1", "poison-2");
        var cut = good[..^8];
        BinaryPrimitives.WriteInt32BigEndian(cut.AsSpan(RecordBatchHeader.BatchLengthOffset), cut.Length - RecordBatchHeader.LogOverhead);
        FixCrc(cut);
        var refused = await ProduceRawAsync(connection, topic, cut);
        _output.WriteLine($"cut gzip: error {refused.ErrorCode} {refused.ErrorMessage}");
        Assert.Equal((short)Wire.ErrorCode.UnknownServerError, refused.ErrorCode);
        Assert.Equal(-1, refused.BaseOffset);
        var after = await ProduceRawAsync(connection, topic, GzipBatch(now, "c"));
        Assert.Equal((0, 2L), (after.ErrorCode, after.BaseOffset));

        // librdkafka (kcat) reads exactly the good records and reaches the end.
        var kcat = await ExternalProcess.RunAsync("kcat", ["-b", Bootstrap, "-t", topic, "-C", "-o", "beginning", "-e", "-f", "%o %s\\n"],
            timeout: TimeSpan.FromSeconds(60));
        _output.WriteLine(kcat.ToString());
        Assert.Equal(0, kcat.ExitCode);
        Assert.Equal(["0 a", "1 b", "2 c"], kcat.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries));

        // kafka-python decodes the stored gzip batches without EOFError.
        var script = """
            import sys
            from kafka import KafkaConsumer, TopicPartition
            consumer = KafkaConsumer(bootstrap_servers=sys.argv[1], group_id=None, enable_auto_commit=False, consumer_timeout_ms=10000)
            tp = TopicPartition(sys.argv[2], 0)
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            values = []
            for m in consumer:
                values.append(m.value.decode())
                if len(values) == 3:
                    break
            consumer.close()
            print(' '.join(values))
            """;
        var python = await ExternalProcess.RunPythonAsync(script, [Bootstrap, topic], timeout: TimeSpan.FromSeconds(90));
        _output.WriteLine(python.ToString());
        Assert.Equal(0, python.ExitCode);
        Assert.Equal("a b c", python.StandardOutput.Trim());
    }

    [Fact]
    public async Task ABatchSentWithMaxTimestampMinusOneIsFoundByTimestamp()
    {
        var topic = KafkaHelpers.UniqueTopic("max-ts");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 1);
        var t0 = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 60_000;
        await using var connection = await RawKafkaConnection.ConnectAsync(Bootstrap);
        for (var b = 0; b < 3; b++)
        {
            using var builder = new RecordBatchBuilder();
            for (var r = 0; r < 2; r++) builder.Append(t0 + (b * 2 + r) * 1000, null, Utf8($"v{b * 2 + r}"));
            var batch = builder.ToArray();
            // What older sarama sends: no max timestamp in the header.
            BinaryPrimitives.WriteInt64BigEndian(batch.AsSpan(RecordBatchHeader.MaxTimestampOffset), -1);
            FixCrc(batch);
            Assert.Equal(0, (await ProduceRawAsync(connection, topic, batch)).ErrorCode);
        }

        using var consumer = new ConsumerBuilder<Ignore, string>(KafkaHelpers.ConsumerConfig(Bootstrap)).Build();
        var tp = new TopicPartition(topic, 0);
        var found = consumer.OffsetsForTimes([new TopicPartitionTimestamp(tp, new Timestamp(t0 + 2_500, Confluent.Kafka.TimestampType.CreateTime))], TimeSpan.FromSeconds(30));
        Assert.Equal(3, Assert.Single(found).Offset.Value);
        var first = consumer.OffsetsForTimes([new TopicPartitionTimestamp(tp, new Timestamp(t0, Confluent.Kafka.TimestampType.CreateTime))], TimeSpan.FromSeconds(30));
        Assert.Equal(0, Assert.Single(first).Offset.Value);
    }

    [Fact]
    public async Task KeylessRecordsOnACompactedTopicAreEachNamedInRecordErrors()
    {
        var topic = KafkaHelpers.UniqueTopic("compact-keys");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 1, configs: new() { ["cleanup.policy"] = "compact" });
        await using var connection = await RawKafkaConnection.ConnectAsync(Bootstrap);
        using var builder = new RecordBatchBuilder { Compression = Protos.Records.CompressionType.Lz4 };
        builder.Append(0, Utf8("k0"), Utf8("v0")).Append(0, null, Utf8("v1")).Append(0, Utf8("k2"), Utf8("v2")).Append(0, null, Utf8("v3"));
        var refused = await ProduceRawAsync(connection, topic, builder.ToArray());
        Assert.Equal((short)Wire.ErrorCode.InvalidRecord, refused.ErrorCode);
        Assert.Equal([1, 3], refused.RecordErrors.Select(e => e.BatchIndex));
        Assert.All(refused.RecordErrors, e => Assert.Contains("without key", e.BatchIndexErrorMessage));
        Assert.StartsWith("One or more records have been rejected due to 2 record errors", refused.ErrorMessage);
    }

    [Fact]
    public async Task ATransactionalBatchWithoutATransactionalIdIsRefusedAsKafkaDoes()
    {
        var topic = KafkaHelpers.UniqueTopic("txn-no-id");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 1);
        await using var connection = await RawKafkaConnection.ConnectAsync(Bootstrap);
        using var builder = new RecordBatchBuilder { IsTransactional = true, ProducerId = 7, ProducerEpoch = 0, BaseSequence = 0 };
        builder.Append(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), null, Utf8("v"));
        var refused = await ProduceRawAsync(connection, topic, builder.ToArray());
        Assert.Equal((short)Wire.ErrorCode.TransactionalIdAuthorizationFailed, refused.ErrorCode);
        using var consumer = new ConsumerBuilder<Ignore, string>(KafkaHelpers.ConsumerConfig(Bootstrap)).Build();
        Assert.Equal(0, consumer.QueryWatermarkOffsets(new TopicPartition(topic, 0), TimeSpan.FromSeconds(30)).High.Value);
    }
}
