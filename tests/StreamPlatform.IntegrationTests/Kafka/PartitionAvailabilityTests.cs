using System.Diagnostics;
using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;
using Wire = StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.IntegrationTests.Kafka;

/// <summary>
/// When partitions are available and who leads them: a dead leader's partitions wait for it
/// (replication does not exist yet, so no other replica holds the data), new topics are writable
/// when CreateTopics answers, and a broker restart affects only that broker's partitions.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class PartitionAvailabilityTests : IDisposable
{
    private readonly ClusterFixture _fixture;
    private readonly ITestOutputHelper _output;
    private readonly IDisposable _attach;

    public PartitionAvailabilityTests(ClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _output = output;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    private string Bootstrap => _fixture.BootstrapServers;

    [Fact]
    public async Task KilledLeaderKeepsItsPartitionLeaderlessAndLeadsAgainWithAllItsRecords()
    {
        var topic = KafkaHelpers.UniqueTopic("failover");
        using var admin = KafkaHelpers.Admin(Bootstrap);
        // RF 3 with broker 3 first: it leads, brokers 1 and 2 are replicas that hold nothing.
        await admin.CreateTopicsAsync([new TopicSpecification
        {
            Name = topic,
            ReplicasAssignment = new Dictionary<int, List<int>> { [0] = [3, 1, 2] },
        }]);
        await KafkaHelpers.WaitForLeadersAsync(admin, topic, 1);
        using (var producer = new ProducerBuilder<string, string>(KafkaHelpers.ProducerConfig(Bootstrap)).Build())
        {
            for (var i = 0; i < 10; i++)
            {
                var r = await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<string, string> { Key = $"k{i}", Value = $"before-{i}" });
                Assert.Equal(i, r.Offset.Value);
            }
        }

        await _fixture.Orchestrator.KillServiceAsync("broker-3");
        try
        {
            // Once the controller fences broker 3 (session timeout), the partition is offline:
            // Metadata says LEADER_NOT_AVAILABLE with leader -1, as Kafka does.
            var deadline = DateTime.UtcNow.AddSeconds(45);
            while (true)
            {
                var p = PartitionMetadata(admin, topic);
                if (p.Leader == -1 && p.Error.Code == ErrorCode.LeaderNotAvailable) break;
                Assert.True(DateTime.UtcNow < deadline, $"partition still led by {p.Leader} ({p.Error.Code}) after broker 3 died");
                await Task.Delay(200);
            }
            // And it stays so: no empty replica takes over while its leader is away.
            await using var connection = await RawKafkaConnection.ConnectAsync(Bootstrap);
            for (var i = 0; i < 5; i++)
            {
                var p = PartitionMetadata(admin, topic);
                Assert.Equal((-1, ErrorCode.LeaderNotAvailable), (p.Leader, p.Error.Code));
                Assert.Equal((short)Wire.ErrorCode.NotLeaderOrFollower, await RawProduceAsync(connection, topic, "while-away"));
                await Task.Delay(400);
            }
        }
        finally
        {
            await _fixture.Orchestrator.StartServiceAsync("broker-3");
        }

        await KafkaHelpers.WaitForLeadersAsync(admin, topic, 1);
        var read = KafkaHelpers.ReadAll(Bootstrap, topic, 1, 10, TimeSpan.FromSeconds(60));
        Assert.Equal(Enumerable.Range(0, 10).Select(i => ((long)i, $"before-{i}")),
            read.Select(r => (r.Offset.Value, Encoding.UTF8.GetString(r.Message.Value))));
        using var after = new ProducerBuilder<string, string>(KafkaHelpers.ProducerConfig(Bootstrap)).Build();
        for (var i = 0; i < 3; i++)
        {
            var r = await after.ProduceAsync(new TopicPartition(topic, 0), new Message<string, string> { Key = "a", Value = $"after-{i}" });
            Assert.Equal(10 + i, r.Offset.Value);
        }
    }

    private static PartitionMetadata PartitionMetadata(IAdminClient admin, string topic)
        => admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics.Single(t => t.Topic == topic).Partitions.Single(p => p.PartitionId == 0);

    /// <summary>One acks=-1 Produce of one record to partition 0; returns the partition's error code.</summary>
    private static async Task<short> RawProduceAsync(RawKafkaConnection connection, string topic, string value, int partition = 0)
    {
        using var builder = new StreamPlatform.Protos.Records.RecordBatchBuilder();
        builder.Append(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), (byte[]?)null, Encoding.UTF8.GetBytes(value));
        var response = await connection.SendAsync<Wire.ProduceResponse>(new Wire.ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 10_000,
            TopicData = [new Wire.ProduceRequest.TopicProduceData
            {
                Name = topic, PartitionData = [new Wire.ProduceRequest.PartitionProduceData { Index = partition, Records = builder.ToArray() }],
            }],
        }, 9);
        return Assert.Single(Assert.Single(response.Responses).PartitionResponses).ErrorCode;
    }
}
