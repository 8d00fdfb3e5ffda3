using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Grpc.Net.Client;
using StreamPlatform.AppHost.Orchestration;
using StreamPlatform.IntegrationTests.Infrastructure;
using StreamPlatform.Protos.Grpc.Controller;
using StreamPlatform.Protos.Records;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Kafka;

/// <summary>
/// Replication end to end, small and quick (the randomized fault test is elsewhere): acks=all
/// records are on every replica's disk, survive a kill -9 of the leader on the new leader, and
/// the restarted broker catches up and rejoins the ISR.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ReplicationTests : IDisposable, IClassFixture<HarnessClusterFixture>
{
    private readonly HarnessClusterFixture _fixture;
    private readonly ITestOutputHelper _output;
    private readonly IDisposable _attach;

    public ReplicationTests(HarnessClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _output = output;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    private string Bootstrap => _fixture.BootstrapServers;

    [Fact]
    public async Task AcknowledgedRecordsAreOnEveryReplicaSurviveTheLeadersDeathAndTheLeaderRejoins()
    {
        var topic = KafkaHelpers.UniqueTopic("replicated");
        using var admin = KafkaHelpers.Admin(Bootstrap);
        await admin.CreateTopicsAsync([new TopicSpecification
        {
            Name = topic,
            NumPartitions = 1,
            ReplicationFactor = 3,
            Configs = new Dictionary<string, string> { ["min.insync.replicas"] = "2" },
        }]);
        await KafkaHelpers.WaitForLeadersAsync(admin, topic, 1);
        using var controller = GrpcChannel.ForAddress(_fixture.Orchestrator.Controller.EndpointUri(EndpointNames.Grpc));
        var client = new ControllerService.ControllerServiceClient(controller);
        var partition = await PartitionAsync(client, topic);
        Assert.Equal(3, partition.Isr.Count);
        var leader = partition.Leader;
        _output.WriteLine($"{topic}-0 led by broker {leader}, ISR [{string.Join(",", partition.Isr)}]");

        using (var producer = new ProducerBuilder<string, string>(KafkaHelpers.ProducerConfig(Bootstrap)).Build())
        {
            for (var i = 0; i < 20; i++)
            {
                var r = await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<string, string> { Key = $"k{i}", Value = $"v{i}" });
                Assert.Equal(i, r.Offset.Value);
            }
        }
        // acks=all with the ISR = all three: every replica has every record once it was acknowledged.
        foreach (var broker in new[] { 1, 2, 3 })
            Assert.Equal(Enumerable.Range(0, 20).Select(i => ((long)i, $"v{i}")), StoredRecords(broker, topic));

        await _fixture.Orchestrator.KillServiceAsync($"broker-{leader}");
        try
        {
            // The controller fences the dead broker, elects an in-sync follower: it has every record.
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (true)
            {
                partition = await PartitionAsync(client, topic);
                if (partition.Leader >= 0 && partition.Leader != leader && !partition.Isr.Contains(leader)) break;
                Assert.True(DateTime.UtcNow < deadline, $"still led by {partition.Leader}, ISR [{string.Join(",", partition.Isr)}]");
                await Task.Delay(200);
            }
            _output.WriteLine($"failed over to broker {partition.Leader}, ISR [{string.Join(",", partition.Isr)}]");
            using var producer = new ProducerBuilder<string, string>(KafkaHelpers.ProducerConfig(Bootstrap)).Build();
            for (var i = 20; i < 25; i++)
            {
                var r = await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<string, string> { Key = $"k{i}", Value = $"v{i}" });
                Assert.Equal(i, r.Offset.Value);
            }
            var read = KafkaHelpers.ReadAll(Bootstrap, topic, 1, 25, TimeSpan.FromSeconds(60));
            Assert.Equal(Enumerable.Range(0, 25).Select(i => ((long)i, $"v{i}")), read.Select(r => (r.Offset.Value, Encoding.UTF8.GetString(r.Message.Value))));
        }
        finally
        {
            await _fixture.Orchestrator.StartServiceAsync($"broker-{leader}");
        }

        // The restarted broker fetches what it missed and the leader adds it back to the ISR.
        var rejoinDeadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            partition = await PartitionAsync(client, topic);
            if (partition.Isr.Contains(leader)) break;
            Assert.True(DateTime.UtcNow < rejoinDeadline, $"broker {leader} not back in the ISR [{string.Join(",", partition.Isr)}]");
            await Task.Delay(200);
        }
        Assert.Equal(Enumerable.Range(0, 25).Select(i => ((long)i, $"v{i}")), StoredRecords(leader, topic));
    }

    private static async Task<Protos.Grpc.PartitionInfo> PartitionAsync(ControllerService.ControllerServiceClient client, string topic)
    {
        var snapshot = await client.GetMetadataAsync(new GetMetadataRequest());
        return snapshot.Topics.Single(t => t.Name == topic).Partitions.Single(p => p.Partition == 0);
    }

    /// <summary>The records in broker <paramref name="brokerId"/>'s segment files of partition 0, read from disk.</summary>
    private List<(long Offset, string Value)> StoredRecords(int brokerId, string topic)
    {
        var dir = Path.Combine(_fixture.Orchestrator[$"broker-{brokerId}"].DataDirectory!, $"{topic}-0");
        var records = new List<(long, string)>();
        foreach (var file in Directory.EnumerateFiles(dir, "*.log").Order(StringComparer.Ordinal))
        {
            byte[] bytes;
            using (var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            {
                bytes = new byte[stream.Length];
                stream.ReadExactly(bytes);
            }
            foreach (var batch in RecordBatchReader.ReadAll(bytes))
                using (batch)
                    foreach (var record in batch.Records)
                        records.Add((record.Offset, Encoding.UTF8.GetString(record.Value!.Value.Span)));
        }
        return records;
    }
}
