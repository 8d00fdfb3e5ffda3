using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;
using AlterPartitionReassignmentsRequest = StreamPlatform.Protos.Kafka.Messages.AlterPartitionReassignmentsRequest;
using AlterPartitionReassignmentsResponse = StreamPlatform.Protos.Kafka.Messages.AlterPartitionReassignmentsResponse;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.IntegrationTests.Kafka;

/// <summary>
/// Partition administration that needs replication: a reassignment whose new replica catches up
/// and joins the ISR before the old one leaves, and a preferred leader election once a restarted
/// broker is back in sync. Broker-level replicas, ISR and leaders come from the controller (the
/// gateway's Metadata names gateways).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ReplicatedPartitionAdminTests : IDisposable, IClassFixture<HarnessClusterFixture>
{
    private readonly HarnessClusterFixture _fixture;
    private readonly IDisposable _attach;

    public ReplicatedPartitionAdminTests(HarnessClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    private string Bootstrap => _fixture.BootstrapServers;

    private StreamPlatform.Protos.Grpc.PartitionInfo Controller(string topic)
    {
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(_fixture.Orchestrator.Controller.EndpointUri(StreamPlatform.AppHost.Orchestration.EndpointNames.Grpc));
        var snapshot = new StreamPlatform.Protos.Grpc.Controller.ControllerService.ControllerServiceClient(channel)
            .GetMetadata(new StreamPlatform.Protos.Grpc.Controller.GetMetadataRequest());
        return snapshot.Topics.Single(t => t.Name == topic).Partitions[0];
    }

    private async Task WaitForAsync(string topic, Func<StreamPlatform.Protos.Grpc.PartitionInfo, bool> condition, string what, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var p = Controller(topic);
            if (condition(p)) return;
            Assert.True(DateTime.UtcNow < deadline, $"{what}: after {seconds} s the partition is {p}");
            await Task.Delay(200);
        }
    }

    private async Task CreateAsync(string topic, params int[] replicas)
    {
        using var admin = KafkaHelpers.Admin(Bootstrap);
        await admin.CreateTopicsAsync([new TopicSpecification
        {
            Name = topic,
            NumPartitions = 1,
            ReplicationFactor = -1,
            ReplicasAssignments = new Dictionary<int, List<int>> { [0] = [.. replicas] },
        }]);
        await KafkaHelpers.WaitForLeadersAsync(admin, topic, 1);
    }

    private async Task ProduceAsync(string topic, int from, int count)
    {
        using var producer = new ProducerBuilder<byte[], byte[]>(KafkaHelpers.ProducerConfig(Bootstrap)).Build();
        for (var i = from; i < from + count; i++)
        {
            var r = await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[], byte[]> { Key = [], Value = Encoding.UTF8.GetBytes($"r{i}") });
            Assert.Equal(i, r.Offset.Value);
        }
    }

    private void AssertReads(string topic, int count)
        => Assert.Equal(Enumerable.Range(0, count).Select(i => $"r{i}"),
            KafkaHelpers.ReadAll(Bootstrap, topic, 1, count, TimeSpan.FromSeconds(60)).Select(r => Encoding.UTF8.GetString(r.Message.Value)));

    [Fact]
    public async Task AReassignedPartitionMovesToItsNewReplicasWithEveryRecord()
    {
        var topic = KafkaHelpers.UniqueTopic("reassign");
        await CreateAsync(topic, 1, 2);
        await ProduceAsync(topic, 0, 20);

        // Move from [1, 2] to [2, 3]: 3 is added, catches up, joins the ISR; then 1 (the leader) leaves.
        await using (var raw = await RawKafkaConnection.ConnectAsync(Bootstrap))
        {
            var response = await raw.SendAsync<AlterPartitionReassignmentsResponse>(new AlterPartitionReassignmentsRequest
            {
                TimeoutMs = 10_000,
                Topics = [new AlterPartitionReassignmentsRequest.ReassignableTopic
                {
                    Name = topic,
                    Partitions = [new AlterPartitionReassignmentsRequest.ReassignablePartition { PartitionIndex = 0, Replicas = [2, 3] }],
                }],
            }, 0);
            Assert.Equal(ErrorCodes.None, response.Responses.Single().Partitions.Single().ErrorCode);
        }
        await WaitForAsync(topic, p => p.AddingReplicas.Count == 0 && p.RemovingReplicas.Count == 0 && p.Replicas.SequenceEqual([2, 3]), "reassignment to [2, 3]");
        var moved = Controller(topic);
        Assert.Equal(2, moved.Leader);
        Assert.Equal([2, 3], moved.Isr.Order());

        using (var admin = KafkaHelpers.Admin(Bootstrap)) await KafkaHelpers.WaitForLeadersAsync(admin, topic, 1);
        await ProduceAsync(topic, 20, 5);
        AssertReads(topic, 25);
    }

    [Fact]
    public async Task PreferredElectionReturnsLeadershipOnceTheRestartedBrokerIsInSync()
    {
        var topic = KafkaHelpers.UniqueTopic("preferred");
        await CreateAsync(topic, 2, 3, 1);
        await ProduceAsync(topic, 0, 10);
        await _fixture.Orchestrator.KillServiceAsync("broker-2");
        try
        {
            await WaitForAsync(topic, p => p.Leader is >= 0 and not 2 && !p.Isr.Contains(2), "failover away from broker 2");
        }
        finally
        {
            await _fixture.Orchestrator.StartServiceAsync("broker-2");
        }
        using var admin = KafkaHelpers.Admin(Bootstrap);
        async Task<ErrorCode> ElectAsync()
        {
            try
            {
                return (await admin.ElectLeadersAsync(ElectionType.Preferred, [new TopicPartition(topic, 0)])).TopicPartitions.Single().Error.Code;
            }
            catch (ElectLeadersException ex)
            {
                return ex.Results.TopicPartitions.Single().Error.Code;
            }
        }
        // Until its leader has added it back to the ISR, broker 2 cannot lead.
        await WaitForAsync(topic, p => p.Isr.Contains(2), "broker 2 back in the ISR");
        Assert.Equal(ErrorCode.NoError, await ElectAsync());
        Assert.Equal(2, Controller(topic).Leader);
        Assert.Equal(ErrorCode.ElectionNotNeeded, await ElectAsync());
        await KafkaHelpers.WaitForLeadersAsync(admin, topic, 1);
        // Right after the move, a produce the old leader appended but could not commit before it
        // stepped down is answered NOT_LEADER_OR_FOLLOWER; if a follower already had it, the
        // (non-idempotent) client's retry lands after it: Kafka's at-least-once duplicate, not a loss.
        var lastOffset = await ProduceAfterMoveAsync(topic, 10, 5);
        var read = KafkaHelpers.ReadAll(Bootstrap, topic, 1, (int)lastOffset + 1, TimeSpan.FromSeconds(60)).Select(r => Encoding.UTF8.GetString(r.Message.Value)).ToList();
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"r{i}"), read.Take(10));
        Assert.Equal(Enumerable.Range(10, 5).Select(i => $"r{i}"), read.Skip(10).Distinct());
    }

    /// <summary>Every record acknowledged, at increasing offsets from <paramref name="from"/> on (duplicates allowed, see the caller).</summary>
    private async Task<long> ProduceAfterMoveAsync(string topic, int from, int count)
    {
        using var producer = new ProducerBuilder<byte[], byte[]>(KafkaHelpers.ProducerConfig(Bootstrap)).Build();
        var last = from - 1L;
        for (var i = from; i < from + count; i++)
        {
            var r = await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[], byte[]> { Key = [], Value = Encoding.UTF8.GetBytes($"r{i}") });
            Assert.True(r.Offset.Value > last, $"r{i} acknowledged at offset {r.Offset.Value}, not after {last}");
            last = r.Offset.Value;
        }
        return last;
    }
}
