using System.Buffers.Binary;
using System.Text;
using StreamPlatform.IntegrationTests.Infrastructure;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.Protos.Records;
using KafkaError = StreamPlatform.Protos.Kafka.Messages.ErrorCode;

namespace StreamPlatform.IntegrationTests.Kafka;

/// <summary>
/// What a client library would not send: each gets the error code Apache Kafka returns, or a
/// closed connection where Kafka closes it, and the gateway keeps serving everyone else.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ProtocolErrorTests
{
    private readonly ClusterFixture _fixture;

    public ProtocolErrorTests(ClusterFixture fixture) => _fixture = fixture;

    private string Bootstrap => _fixture.BootstrapServers;

    private static byte[] Batch(int records, int valueBytes = 10)
    {
        using var builder = new RecordBatchBuilder();
        for (var i = 0; i < records; i++)
            builder.Append(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), Encoding.UTF8.GetBytes($"k{i}"), new byte[valueBytes]);
        return builder.ToArray();
    }

    private static ProduceRequest Produce(string topic, int partition, byte[] records) => new()
    {
        Acks = -1,
        TimeoutMs = 10000,
        TopicData =
        [
            new ProduceRequest.TopicProduceData
            {
                Name = topic,
                PartitionData = [new ProduceRequest.PartitionProduceData { Index = partition, Records = records }],
            },
        ],
    };

    private async Task<ProduceResponse.PartitionProduceResponse> ProduceOneAsync(string topic, int partition, byte[] records)
    {
        await using var connection = await RawKafkaConnection.ConnectAsync(Bootstrap);
        var response = await connection.SendAsync<ProduceResponse>(Produce(topic, partition, records), 9);
        return Assert.Single(Assert.Single(response.Responses).PartitionResponses);
    }

    [Fact]
    public async Task ApiVersionsAdvertisesOnlyWhatIsServedAndAValidProduceIsAccepted()
    {
        await using var connection = await RawKafkaConnection.ConnectAsync(Bootstrap);
        var versions = await connection.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest
        {
            ClientSoftwareName = "raw-test", ClientSoftwareVersion = "1.0",
        }, 3);
        Assert.Equal(0, versions.ErrorCode);
        var keys = versions.ApiKeys.Select(k => (ApiKey)k.ApiKey).ToHashSet();
        foreach (var required in new[] { ApiKey.Produce, ApiKey.Fetch, ApiKey.ListOffsets, ApiKey.Metadata, ApiKey.ApiVersions,
                     ApiKey.CreateTopics, ApiKey.DeleteTopics, ApiKey.DescribeConfigs, ApiKey.DescribeCluster })
            Assert.Contains(required, keys);
        var fetch = versions.ApiKeys.Single(k => k.ApiKey == (short)ApiKey.Fetch);
        Assert.Equal(4, fetch.MinVersion);
        Assert.True(fetch.MaxVersion >= 13);

        var topic = KafkaHelpers.UniqueTopic("raw-ok");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 1);
        var ok = await ProduceOneAsync(topic, 0, Batch(3));
        Assert.Equal((short)KafkaError.None, ok.ErrorCode);
        Assert.Equal(0, ok.BaseOffset);
    }

    [Fact]
    public async Task UnsupportedApiVersionsVersionGetsUnsupportedVersionInAVersion0Answer()
    {
        await using var connection = await RawKafkaConnection.ConnectAsync(Bootstrap);
        // Hand-built: ApiVersions v99 with a v2 header can't be encoded by our codec, which
        // refuses unknown versions; Kafka clients send exactly this when they are newer than the broker.
        var body = new byte[] { 0, 18, 0, 99, 0, 0, 0, 7, 0, 3, (byte)'a', (byte)'b', (byte)'c', 0 };
        var frame = new byte[4 + body.Length];
        BinaryPrimitives.WriteInt32BigEndian(frame, body.Length);
        body.CopyTo(frame, 4);
        await connection.WriteRawAsync(frame);
        var response = await connection.ReadFrameAsync();
        Assert.NotNull(response);
        var decoded = RawKafkaConnection.Decode<ApiVersionsResponse>(response, (short)ApiKey.ApiVersions, 0, 7);
        Assert.Equal((short)KafkaError.UnsupportedVersion, decoded.ErrorCode);
        Assert.Contains(decoded.ApiKeys, k => k.ApiKey == (short)ApiKey.ApiVersions && k.MinVersion == 0);
    }

    [Fact]
    public async Task ACorruptBatchIsCorruptMessageAndNothingIsAppended()
    {
        var topic = KafkaHelpers.UniqueTopic("raw-corrupt");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 1);
        var batch = Batch(5);
        batch[^1] ^= 0xFF; // a record byte: the CRC no longer matches
        var response = await ProduceOneAsync(topic, 0, batch);
        Assert.Equal((short)KafkaError.CorruptMessage, response.ErrorCode);

        var good = await ProduceOneAsync(topic, 0, Batch(1));
        Assert.Equal((short)KafkaError.None, good.ErrorCode);
        Assert.Equal(0, good.BaseOffset);
    }

    [Fact]
    public async Task AnUnknownPartitionIsUnknownTopicOrPartition()
    {
        var topic = KafkaHelpers.UniqueTopic("raw-partition");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 2);
        var response = await ProduceOneAsync(topic, 7, Batch(1));
        Assert.Equal((short)KafkaError.UnknownTopicOrPartition, response.ErrorCode);
    }

    [Fact]
    public async Task ABatchAboveMaxMessageBytesIsMessageTooLarge()
    {
        var topic = KafkaHelpers.UniqueTopic("raw-large");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 1, configs: new() { ["max.message.bytes"] = "1024" });
        var response = await ProduceOneAsync(topic, 0, Batch(4, valueBytes: 1000));
        Assert.Equal((short)KafkaError.MessageTooLarge, response.ErrorCode);
    }

    [Fact]
    public async Task FetchOfAnUnknownTopicIdIsUnknownTopicId()
    {
        await using var connection = await RawKafkaConnection.ConnectAsync(Bootstrap);
        var request = new FetchRequest
        {
            ReplicaId = -1, MaxWaitMs = 100, MinBytes = 1, MaxBytes = 1 << 20, SessionEpoch = -1,
            Topics =
            [
                new FetchRequest.FetchTopic
                {
                    TopicId = Guid.NewGuid(),
                    Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }],
                },
            ],
        };
        var response = await connection.SendAsync<FetchResponse>(request, 13);
        var partition = Assert.Single(Assert.Single(response.Responses).Partitions);
        Assert.Equal((short)KafkaError.UnknownTopicId, partition.ErrorCode);
    }

    [Fact]
    public async Task AMalformedFrameClosesOnlyThatConnection()
    {
        await using var bystander = await RawKafkaConnection.ConnectAsync(Bootstrap);
        await using (var bad = await RawKafkaConnection.ConnectAsync(Bootstrap))
        {
            // Metadata v1 header whose client id claims 300 bytes in a 12-byte frame.
            await bad.WriteRawAsync([0, 0, 0, 12, 0, 3, 0, 1, 0, 0, 0, 1, 1, 44, 0, 0]);
            Assert.True(await bad.IsClosedByPeerAsync());
        }
        await using (var huge = await RawKafkaConnection.ConnectAsync(Bootstrap))
        {
            // 1 GiB declared: refused by the frame limit before anything is buffered.
            await huge.WriteRawAsync([0x40, 0, 0, 0, 0, 18, 0, 0]);
            Assert.True(await huge.IsClosedByPeerAsync());
        }
        var versions = await bystander.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest(), 0);
        Assert.Equal(0, versions.ErrorCode);
    }
}
