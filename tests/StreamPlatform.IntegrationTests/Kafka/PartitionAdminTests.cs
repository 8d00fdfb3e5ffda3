using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;
using AlterPartitionReassignmentsRequest = StreamPlatform.Protos.Kafka.Messages.AlterPartitionReassignmentsRequest;
using AlterPartitionReassignmentsResponse = StreamPlatform.Protos.Kafka.Messages.AlterPartitionReassignmentsResponse;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;
using ListPartitionReassignmentsRequest = StreamPlatform.Protos.Kafka.Messages.ListPartitionReassignmentsRequest;
using ListPartitionReassignmentsResponse = StreamPlatform.Protos.Kafka.Messages.ListPartitionReassignmentsResponse;

namespace StreamPlatform.IntegrationTests.Kafka;

/// <summary>CreatePartitions (37) and ElectLeaders (43) through Confluent.Kafka's AdminClient, reassignments (45, 46) over the raw protocol (librdkafka has no API for them), against the real cluster.</summary>
[Collection(ClusterCollection.Name)]
public sealed class PartitionAdminTests : IDisposable
{
    private readonly ClusterFixture _fixture;
    private readonly IDisposable _attach;

    public PartitionAdminTests(ClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    private string Bootstrap => _fixture.BootstrapServers;

    [Fact]
    public async Task CreatePartitionsAddsWritablePartitionsAndRefusesWhatKafkaRefuses()
    {
        var topic = KafkaHelpers.UniqueTopic("grow");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 2, replicationFactor: 3);
        using var admin = KafkaHelpers.Admin(Bootstrap);

        // validate_only changes nothing.
        await admin.CreatePartitionsAsync([new PartitionsSpecification { Topic = topic, IncreaseTo = 4 }], new CreatePartitionsOptions { ValidateOnly = true });
        Assert.Equal(2, admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics.Single().Partitions.Count);

        await admin.CreatePartitionsAsync([new PartitionsSpecification { Topic = topic, IncreaseTo = 4 }]);
        await KafkaHelpers.WaitForLeadersAsync(admin, topic, 4);

        using (var producer = new ProducerBuilder<byte[], byte[]>(KafkaHelpers.ProducerConfig(Bootstrap)).Build())
        {
            for (var p = 0; p < 4; p++)
            {
                var r = await producer.ProduceAsync(new TopicPartition(topic, p), new Message<byte[], byte[]> { Key = [], Value = Encoding.UTF8.GetBytes($"p{p}") });
                Assert.Equal(0, r.Offset.Value);
            }
        }
        var read = KafkaHelpers.ReadAll(Bootstrap, topic, 4, 4, TimeSpan.FromSeconds(30));
        Assert.Equal(["p0", "p1", "p2", "p3"], read.OrderBy(r => r.Partition.Value).Select(r => Encoding.UTF8.GetString(r.Message.Value)));

        async Task<ErrorCode> Refused(PartitionsSpecification spec)
        {
            var ex = await Assert.ThrowsAsync<CreatePartitionsException>(() => admin.CreatePartitionsAsync([spec]));
            return ex.Results.Single().Error.Code;
        }
        Assert.Equal(ErrorCode.InvalidPartitions, await Refused(new PartitionsSpecification { Topic = topic, IncreaseTo = 4 }));
        Assert.Equal(ErrorCode.InvalidPartitions, await Refused(new PartitionsSpecification { Topic = topic, IncreaseTo = 3 }));
        Assert.Equal(ErrorCode.UnknownTopicOrPart, await Refused(new PartitionsSpecification { Topic = KafkaHelpers.UniqueTopic("missing"), IncreaseTo = 3 }));
        Assert.Equal(ErrorCode.InvalidReplicaAssignment, await Refused(new PartitionsSpecification
        {
            Topic = topic,
            IncreaseTo = 5,
            ReplicaAssignments = [[1]], // replication factor 1 for a topic with 3
        }));
        Assert.Equal(4, admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics.Single().Partitions.Count);
    }

    [Fact]
    public async Task ElectLeadersAnswersPerPartitionAsKafka()
    {
        var topic = KafkaHelpers.UniqueTopic("elect");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 2, replicationFactor: 3);
        using var admin = KafkaHelpers.Admin(Bootstrap);

        async Task<Dictionary<int, ErrorCode>> Elect(ElectionType type, params int[] partitions)
        {
            List<TopicPartitionError> results;
            try
            {
                results = (await admin.ElectLeadersAsync(type, partitions.Select(p => new TopicPartition(topic, p)))).TopicPartitions;
            }
            catch (ElectLeadersException ex)
            {
                results = ex.Results.TopicPartitions;
            }
            return results.Where(r => r.Topic == topic).ToDictionary(r => r.Partition.Value, r => r.Error.Code);
        }

        // A new topic's partitions are led by their preferred (first) replica, and have a leader.
        var preferred = await Elect(ElectionType.Preferred, 0, 1, 7);
        Assert.Equal(ErrorCode.ElectionNotNeeded, preferred[0]);
        Assert.Equal(ErrorCode.ElectionNotNeeded, preferred[1]);
        Assert.Equal(ErrorCode.UnknownTopicOrPart, preferred[7]);
        Assert.Equal(ErrorCode.ElectionNotNeeded, (await Elect(ElectionType.Unclean, 0))[0]);

        // Every partition (null): only partitions that needed an election are answered; ours did not.
        List<TopicPartitionError> all;
        try
        {
            all = (await admin.ElectLeadersAsync(ElectionType.Preferred, null)).TopicPartitions;
        }
        catch (ElectLeadersException ex)
        {
            all = ex.Results.TopicPartitions;
        }
        Assert.DoesNotContain(all, r => r.Topic == topic);
    }

    [Fact]
    public async Task ReassigningAwayAReplicaCompletesAtOnceAndTheTopicStaysWritable()
    {
        var topic = KafkaHelpers.UniqueTopic("move");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 1, replicationFactor: 3);
        await using var raw = await RawKafkaConnection.ConnectAsync(Bootstrap);

        async Task<short> Reassign(string name, List<int>? replicas)
        {
            var response = await raw.SendAsync<AlterPartitionReassignmentsResponse>(new AlterPartitionReassignmentsRequest
            {
                TimeoutMs = 10_000,
                Topics = [new AlterPartitionReassignmentsRequest.ReassignableTopic
                {
                    Name = name,
                    Partitions = [new AlterPartitionReassignmentsRequest.ReassignablePartition { PartitionIndex = 0, Replicas = replicas }],
                }],
            }, 0);
            Assert.Equal(ErrorCodes.None, response.ErrorCode);
            return response.Responses.Single().Partitions.Single().ErrorCode;
        }

        // Replicas are Broker.Service ids (1-3 in the test cluster). Dropping broker 3: every
        // remaining replica is in sync already, so the reassignment completes in the same step.
        Assert.Equal(ErrorCodes.None, await Reassign(topic, [1, 2]));
        var listed = await raw.SendAsync<ListPartitionReassignmentsResponse>(new ListPartitionReassignmentsRequest
        {
            Topics = [new ListPartitionReassignmentsRequest.ListPartitionReassignmentsTopics { Name = topic, PartitionIndexes = [0] }],
        }, 0);
        Assert.Equal(ErrorCodes.None, listed.ErrorCode);
        Assert.Empty(listed.Topics);
        Assert.Equal(ErrorCodes.NoReassignmentInProgress, await Reassign(topic, null));
        Assert.Equal(ErrorCodes.InvalidReplicaAssignment, await Reassign(topic, [1, 1]));
        Assert.Equal(ErrorCodes.InvalidReplicaAssignment, await Reassign(topic, [1, 99]));
        Assert.Equal(ErrorCodes.UnknownTopicOrPartition, await Reassign(KafkaHelpers.UniqueTopic("missing"), [1]));

        // The partition keeps (or moved) its leader and takes writes.
        using var admin = KafkaHelpers.Admin(Bootstrap);
        await KafkaHelpers.WaitForLeadersAsync(admin, topic, 1);
        using var producer = new ProducerBuilder<byte[], byte[]>(KafkaHelpers.ProducerConfig(Bootstrap)).Build();
        var r = await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[], byte[]> { Key = [], Value = Encoding.UTF8.GetBytes("after") });
        Assert.Equal(0, r.Offset.Value);
        Assert.Equal("after", Encoding.UTF8.GetString(KafkaHelpers.ReadAll(Bootstrap, topic, 1, 1, TimeSpan.FromSeconds(30)).Single().Message.Value));
    }
}
