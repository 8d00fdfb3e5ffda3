using System.Diagnostics;
using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;
using Wire = StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.IntegrationTests.Kafka;

/// <summary>
/// When partitions are available and who leads them: a dead leader's partitions fail over to an
/// in-sync follower that holds every acknowledged record, new topics are writable when
/// CreateTopics answers, and a broker restart affects only that broker's partitions.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class PartitionAvailabilityTests : IDisposable, IClassFixture<HarnessClusterFixture>
{
    private readonly HarnessClusterFixture _fixture;
    private readonly ITestOutputHelper _output;
    private readonly IDisposable _attach;

    public PartitionAvailabilityTests(HarnessClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _output = output;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    private string Bootstrap => _fixture.BootstrapServers;

    [Fact]
    public async Task KilledLeaderFailsOverToAnInSyncFollowerWithAllItsRecords()
    {
        // Issue 10's scenario: RF 3 led by broker 3, 10 acknowledged records, kill -9 the leader.
        var topic = KafkaHelpers.UniqueTopic("failover");
        using var admin = KafkaHelpers.Admin(Bootstrap);
        await admin.CreateTopicsAsync([new TopicSpecification
        {
            Name = topic,
            NumPartitions = 1,
            ReplicationFactor = -1,
            ReplicasAssignments = new Dictionary<int, List<int>> { [0] = [3, 1, 2] },
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
            // Once the controller fences broker 3 (session timeout), an in-sync follower leads:
            // acks=all answered only once brokers 1 and 2 had the records too.
            var deadline = DateTime.UtcNow.AddSeconds(45);
            while (true)
            {
                var p = PartitionMetadata(admin, topic);
                if (p.Leader is >= 0 && p.Error.Code == ErrorCode.NoError && LeaderIsNotBroker3(topic)) break;
                Assert.True(DateTime.UtcNow < deadline, $"partition led by {p.Leader} ({p.Error.Code}) 45 s after broker 3 died");
                await Task.Delay(200);
            }
            var read = KafkaHelpers.ReadAll(Bootstrap, topic, 1, 10, TimeSpan.FromSeconds(60));
            Assert.Equal(Enumerable.Range(0, 10).Select(i => ((long)i, $"before-{i}")),
                read.Select(r => (r.Offset.Value, Encoding.UTF8.GetString(r.Message.Value))));
            // New records continue the offsets: none is used twice.
            using var after = new ProducerBuilder<string, string>(KafkaHelpers.ProducerConfig(Bootstrap)).Build();
            for (var i = 0; i < 3; i++)
            {
                var r = await after.ProduceAsync(new TopicPartition(topic, 0), new Message<string, string> { Key = "a", Value = $"after-{i}" });
                Assert.Equal(10 + i, r.Offset.Value);
            }
        }
        finally
        {
            await _fixture.Orchestrator.StartServiceAsync("broker-3");
        }
        var all = KafkaHelpers.ReadAll(Bootstrap, topic, 1, 13, TimeSpan.FromSeconds(60));
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"before-{i}").Concat(Enumerable.Range(0, 3).Select(i => $"after-{i}")),
            all.Select(r => Encoding.UTF8.GetString(r.Message.Value)));
        Assert.Equal(Enumerable.Range(0, 13).Select(i => (long)i), all.Select(r => r.Offset.Value));
    }

    /// <summary>
    /// Whether broker 3 no longer leads: the gateway's Metadata names gateways, not brokers, so
    /// the broker-level leader comes from the controller.
    /// </summary>
    private bool LeaderIsNotBroker3(string topic)
    {
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(_fixture.Orchestrator.Controller.EndpointUri(StreamPlatform.AppHost.Orchestration.EndpointNames.Grpc));
        var snapshot = new StreamPlatform.Protos.Grpc.Controller.ControllerService.ControllerServiceClient(channel)
            .GetMetadata(new StreamPlatform.Protos.Grpc.Controller.GetMetadataRequest());
        var leader = snapshot.Topics.Single(t => t.Name == topic).Partitions[0].Leader;
        return leader >= 0 && leader != 3;
    }

    [Fact]
    public async Task ProduceRightAfterCreateTopicsSucceedsWithoutAnyRetry()
    {
        // Raw requests on one connection: nothing between the CreateTopics answer and the
        // Produce (no client metadata round, no retry) hides a leader that cannot take writes.
        await using var connection = await RawKafkaConnection.ConnectAsync(Bootstrap);
        for (var i = 0; i < 20; i++)
        {
            var topic = KafkaHelpers.UniqueTopic($"writable{i}");
            var created = await connection.SendAsync<Wire.CreateTopicsResponse>(new Wire.CreateTopicsRequest
            {
                timeoutMs = 30_000,
                Topics = [new Wire.CreateTopicsRequest.CreatableTopic { Name = topic, NumPartitions = 3, ReplicationFactor = 1 }],
            }, 5);
            Assert.Equal(0, Assert.Single(created.Topics).ErrorCode);
            for (var p = 0; p < 3; p++)
                Assert.Equal(0, await RawProduceAsync(connection, topic, $"first-{i}", p));
        }

        // And a real client that does not retry (message.send.max.retries=0), straight after the admin call.
        var config = KafkaHelpers.ProducerConfig(Bootstrap);
        config.MessageSendMaxRetries = 0;
        config.LingerMs = 0;
        using var producer = new ProducerBuilder<string, string>(config).Build();
        using var admin = KafkaHelpers.Admin(Bootstrap);
        for (var i = 0; i < 20; i++)
        {
            var topic = KafkaHelpers.UniqueTopic($"writablec{i}");
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 3, ReplicationFactor = 1 }]);
            var results = await Task.WhenAll(Enumerable.Range(0, 3).Select(p =>
                producer.ProduceAsync(new TopicPartition(topic, p), new Message<string, string> { Key = "k", Value = $"v{i}" })));
            Assert.All(results, r => Assert.Equal(0, r.Offset.Value));
        }
    }

    [Fact]
    public async Task AutoCreationAnswersLeaderNotAvailableFirstAndThenAWritableLeader()
    {
        await using var connection = await RawKafkaConnection.ConnectAsync(Bootstrap);
        var topic = KafkaHelpers.UniqueTopic("autocreate");
        var request = new Wire.MetadataRequest { AllowAutoTopicCreation = true, Topics = [new Wire.MetadataRequest.MetadataRequestTopic { Name = topic }] };
        var first = Assert.Single((await connection.SendAsync<Wire.MetadataResponse>(request, 9)).Topics);
        // Kafka: the request that creates the topic answers LEADER_NOT_AVAILABLE, no partitions.
        Assert.Equal((short)Wire.ErrorCode.LeaderNotAvailable, first.ErrorCode);
        Assert.Empty(first.Partitions);

        var second = Assert.Single((await connection.SendAsync<Wire.MetadataResponse>(request, 9)).Topics);
        Assert.Equal(0, second.ErrorCode);
        Assert.NotEmpty(second.Partitions);
        Assert.All(second.Partitions, p => Assert.Equal((short)0, p.ErrorCode));
        Assert.All(second.Partitions, p => Assert.True(p.LeaderId >= 0));
        Assert.Equal(0, await RawProduceAsync(connection, topic, "auto"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task RestartingOneBrokerStallsNeitherTheOthersNorItselfOnceHealthy(bool kill)
    {
        var topic = KafkaHelpers.UniqueTopic("restart-one");
        using (var admin = KafkaHelpers.Admin(Bootstrap))
        {
            // Partition p is led by broker p + 1.
            await admin.CreateTopicsAsync([new TopicSpecification
            {
                Name = topic,
                NumPartitions = 3,
                ReplicationFactor = -1,
                ReplicasAssignments = new Dictionary<int, List<int>> { [0] = [1], [1] = [2], [2] = [3] },
            }]);
            await KafkaHelpers.WaitForLeadersAsync(admin, topic, 3);
        }

        // One producer whose every request carries all three partitions, as a client's request
        // to one gateway does: a slow share for broker 3 would hold up brokers 1 and 2 too.
        var successes = new List<(int Partition, long AtMs)>();
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource();
        await using var connection = await RawKafkaConnection.ConnectAsync(Bootstrap);
        var pump = Task.Run(async () =>
        {
            var n = 0;
            while (!stop.IsCancellationRequested)
            {
                var response = await connection.SendAsync<Wire.ProduceResponse>(new Wire.ProduceRequest
                {
                    Acks = -1,
                    TimeoutMs = 30_000,
                    TopicData = [new Wire.ProduceRequest.TopicProduceData
                    {
                        Name = topic,
                        PartitionData = [.. Enumerable.Range(0, 3).Select(p => new Wire.ProduceRequest.PartitionProduceData { Index = p, Records = Batch($"r{n}") })],
                    }],
                }, 9);
                var at = clock.ElapsedMilliseconds;
                lock (successes)
                    foreach (var p in Assert.Single(response.Responses).PartitionResponses.Where(p => p.ErrorCode == 0))
                        successes.Add((p.Index, at));
                n++;
                await Task.Delay(10);
            }
        });

        await Task.Delay(1_000);
        var restartStartedMs = clock.ElapsedMilliseconds;
        await _fixture.Orchestrator.RestartServiceAsync("broker-3", kill);
        var healthyMs = clock.ElapsedMilliseconds;
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            lock (successes) if (successes.Any(s => s.Partition == 2 && s.AtMs > healthyMs)) break;
            await Task.Delay(20);
        }
        await Task.Delay(1_000);
        await stop.CancelAsync();
        await pump;

        List<(int Partition, long AtMs)> seen;
        lock (successes) seen = [.. successes];
        _output.WriteLine($"restart began at {restartStartedMs} ms, broker 3 healthy at {healthyMs} ms, {seen.Count} partition appends");
        for (var p = 0; p < 2; p++)
        {
            var times = seen.Where(s => s.Partition == p).Select(s => s.AtMs).ToList();
            var gapMs = times.Zip(times.Skip(1), (a, b) => b - a).DefaultIfEmpty(long.MaxValue).Max();
            _output.WriteLine($"partition {p} (broker {p + 1}): {times.Count} appends, largest gap {gapMs} ms");
            Assert.True(times.Count > 0 && times[^1] > healthyMs, $"partition {p} stopped taking writes");
            // What this catches is a request held up by broker 3's share: that lasts until the
            // broker's session expires or the request times out (seconds to 30 s). The largest
            // gaps seen on an idle 2-core machine are 150-850 ms (a produce stream noticing the
            // broker went away); 2 s leaves room for a loaded machine without hiding a real stall.
            Assert.True(gapMs < StallMsMax, $"partition {p} (broker {p + 1}) stalled {gapMs} ms while broker 3 restarted");
        }
        var firstAfter = seen.Where(s => s.Partition == 2 && s.AtMs > healthyMs).Select(s => s.AtMs).DefaultIfEmpty(long.MaxValue).Min();
        _output.WriteLine($"partition 2 (broker 3) took writes again {firstAfter - healthyMs} ms after broker 3 reported healthy");
        Assert.True(firstAfter - healthyMs <= StallMsMax, $"broker 3's partition took writes only {firstAfter - healthyMs} ms after it reported healthy");
    }

    /// <summary>The longest pause in a healthy partition's writes (and in a restarted broker's after it reports healthy) that is not a stall.</summary>
    private const long StallMsMax = 2_000;

    private static byte[] Batch(string value)
    {
        using var builder = new StreamPlatform.Protos.Records.RecordBatchBuilder();
        builder.Append(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), (byte[]?)null, Encoding.UTF8.GetBytes(value));
        return builder.ToArray();
    }

    private static PartitionMetadata PartitionMetadata(IAdminClient admin, string topic)
        => admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics.Single(t => t.Topic == topic).Partitions.Single(p => p.PartitionId == 0);

    /// <summary>One acks=-1 Produce of one record to partition 0; returns the partition's error code.</summary>
    private static async Task<short> RawProduceAsync(RawKafkaConnection connection, string topic, string value, int partition = 0)
    {
        var response = await connection.SendAsync<Wire.ProduceResponse>(new Wire.ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 10_000,
            TopicData = [new Wire.ProduceRequest.TopicProduceData
            {
                Name = topic, PartitionData = [new Wire.ProduceRequest.PartitionProduceData { Index = partition, Records = Batch(value) }],
            }],
        }, 9);
        return Assert.Single(Assert.Single(response.Responses).PartitionResponses).ErrorCode;
    }
}
