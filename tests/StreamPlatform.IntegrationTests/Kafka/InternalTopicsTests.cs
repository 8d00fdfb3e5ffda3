using System.Text.Json;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using StreamPlatform.IntegrationTests.Infrastructure;
using StreamPlatform.Protos.Kafka.Messages;
using Xunit.Abstractions;
using KafkaError = StreamPlatform.Protos.Kafka.Messages.ErrorCode;

namespace StreamPlatform.IntegrationTests.Kafka;

/// <summary>
/// __consumer_offsets as Kafka clients and tools see it: internal (no produce, no delete), and
/// holding Kafka's own record formats, read back raw and decoded with a plain struct parser.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class InternalTopicsTests : IDisposable
{
    private const string OffsetsTopic = "__consumer_offsets";
    private readonly ClusterFixture _fixture;
    private readonly ITestOutputHelper _output;
    private readonly IDisposable _attach;

    public InternalTopicsTests(ClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _output = output;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    private string Bootstrap => _fixture.BootstrapServers;

    /// <summary>A group with committed offsets (Confluent.Kafka), which also makes sure __consumer_offsets exists.</summary>
    private async Task<(string Topic, string Group)> CommitWithConfluentAsync(int messages)
    {
        var topic = KafkaHelpers.UniqueTopic("itopic");
        var group = KafkaHelpers.UniqueTopic("igroup");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 2);
        using (var producer = new ProducerBuilder<string, string>(KafkaHelpers.ProducerConfig(Bootstrap)).Build())
        {
            for (var i = 0; i < messages; i++)
                producer.Produce(new TopicPartition(topic, new Partition(i % 2)), new Message<string, string> { Key = $"k{i}", Value = $"v{i}" });
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(60)));
        }
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = Bootstrap, GroupId = group, EnableAutoCommit = false, AutoOffsetReset = AutoOffsetReset.Earliest,
            SessionTimeoutMs = 6000, HeartbeatIntervalMs = 500,
        }).Build();
        consumer.Subscribe(topic);
        var seen = 0;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (seen < messages && DateTime.UtcNow < deadline)
            if (consumer.Consume(TimeSpan.FromSeconds(1)) is not null) seen++;
        Assert.Equal(messages, seen);
        consumer.Commit();
        consumer.Close();
        return (topic, group);
    }

    [Fact]
    public async Task ClientsCannotProduceToOrDeleteTheOffsetsTopicAndCommittedOffsetsSurvive()
    {
        var (topic, group) = await CommitWithConfluentAsync(10);
        using var admin = KafkaHelpers.Admin(Bootstrap);

        var described = await admin.DescribeTopicsAsync(TopicCollection.OfTopicNames([OffsetsTopic]));
        Assert.True(Assert.Single(described.TopicDescriptions).IsInternal);

        // Confluent.Kafka producer: the delivery fails with INVALID_TOPIC_EXCEPTION (17), as on Kafka.
        using (var producer = new ProducerBuilder<string, string>(KafkaHelpers.ProducerConfig(Bootstrap)).Build())
        {
            var produce = await Assert.ThrowsAsync<ProduceException<string, string>>(() =>
                producer.ProduceAsync(new TopicPartition(OffsetsTopic, new Partition(0)), new Message<string, string> { Key = "k", Value = "garbage" }));
            _output.WriteLine(produce.Error.ToString());
            Assert.Equal(Confluent.Kafka.ErrorCode.TopicException, produce.Error.Code);
        }

        // kcat: the same refusal; nothing is written.
        var kcat = await ExternalProcess.RunAsync("kcat", ["-b", Bootstrap, "-t", OffsetsTopic, "-p", "0", "-P", "-K:"], standardInput: "k:garbage\n",
            timeout: TimeSpan.FromSeconds(60));
        _output.WriteLine(kcat.ToString());
        Assert.Contains("Broker: Invalid topic", kcat.StandardError);

        // AdminClient DeleteTopics: refused per topic; an ordinary topic in the same request is deleted.
        var other = KafkaHelpers.UniqueTopic("idel");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, other, 1);
        var delete = await Assert.ThrowsAsync<DeleteTopicsException>(() => admin.DeleteTopicsAsync([OffsetsTopic, other]));
        var results = delete.Results.ToDictionary(r => r.Topic, r => r.Error);
        _output.WriteLine(string.Join("; ", results.Select(r => $"{r.Key}: {r.Value}")));
        Assert.Equal(Confluent.Kafka.ErrorCode.TopicAuthorizationFailed, results[OffsetsTopic].Code);
        Assert.False(results[other].IsError);

        var metadata = admin.GetMetadata(OffsetsTopic, TimeSpan.FromSeconds(10));
        Assert.Equal(Confluent.Kafka.ErrorCode.NoError, Assert.Single(metadata.Topics).Error.Code);
        var committed = await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions(group, null)]);
        Assert.Equal(10, committed[0].Partitions.Where(p => p.Topic == topic).Sum(p => p.Offset.Value));
    }

    /// <summary>
    /// kafka-python commits with metadata; then every record of __consumer_offsets is read raw and
    /// decoded with struct, following Kafka's OffsetCommitKey/Value and GroupMetadataKey/Value
    /// schemas (not the project's codec). Prints one JSON object per record of the given groups.
    /// </summary>
    private const string DecodeScript = """
        import sys, struct, json, time
        from kafka import KafkaConsumer, TopicPartition
        from kafka.structs import OffsetAndMetadata
        bootstrap, topic, py_group, cf_group = sys.argv[1:5]
        c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=py_group, enable_auto_commit=False)
        c.commit({TopicPartition(topic, 0): OffsetAndMetadata(42, 'meta-42'), TopicPartition(topic, 1): OffsetAndMetadata(7, '')})
        c.close()

        def string(b, pos):
            (n,) = struct.unpack_from('>h', b, pos)
            if n < 0:
                return None, pos + 2
            return b[pos + 2:pos + 2 + n].decode('utf-8'), pos + 2 + n
        def nbytes(b, pos):
            (n,) = struct.unpack_from('>i', b, pos)
            return b[pos + 4:pos + 4 + max(n, 0)], pos + 4 + max(n, 0)

        r = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
        parts = [TopicPartition('__consumer_offsets', p) for p in r.partitions_for_topic('__consumer_offsets')]
        r.assign(parts)
        r.seek_to_beginning(*parts)
        end = r.end_offsets(parts)
        deadline = time.time() + 60
        while any(r.position(p) < end[p] for p in parts) and time.time() < deadline:
            for tp, records in r.poll(timeout_ms=1000).items():
                for rec in records:
                    key, value = rec.key, rec.value
                    (kv,) = struct.unpack_from('>h', key, 0)
                    if kv in (0, 1):
                        g, pos = string(key, 2)
                        t, pos = string(key, pos)
                        (p,) = struct.unpack_from('>i', key, pos)
                        assert pos + 4 == len(key), 'trailing key bytes'
                        if g not in (py_group, cf_group):
                            continue
                        out = {'type': 'offset', 'group': g, 'topic': t, 'partition': p}
                        if value is not None:
                            (vv,) = struct.unpack_from('>h', value, 0)
                            out['version'] = vv
                            (out['offset'],) = struct.unpack_from('>q', value, 2)
                            pos = 10
                            if vv >= 3:
                                (out['leader_epoch'],) = struct.unpack_from('>i', value, pos)
                                pos += 4
                            out['metadata'], pos = string(value, pos)
                            (out['commit_timestamp'],) = struct.unpack_from('>q', value, pos)
                            pos += 8
                            if vv == 1:
                                (out['expire_timestamp'],) = struct.unpack_from('>q', value, pos)
                                pos += 8
                            assert pos == len(value), 'trailing value bytes'
                        print(json.dumps(out))
                    elif kv == 2:
                        g, pos = string(key, 2)
                        if g not in (py_group, cf_group) or value is None:
                            continue
                        (vv,) = struct.unpack_from('>h', value, 0)
                        out = {'type': 'group', 'group': g, 'version': vv}
                        out['protocol_type'], pos = string(value, 2)
                        (out['generation'],) = struct.unpack_from('>i', value, pos)
                        out['protocol'], pos = string(value, pos + 4)
                        out['leader'], pos = string(value, pos)
                        (out['state_timestamp'],) = struct.unpack_from('>q', value, pos)
                        (n,) = struct.unpack_from('>i', value, pos + 8)
                        pos += 12
                        members = []
                        for _ in range(n):
                            m = {}
                            m['member_id'], pos = string(value, pos)
                            m['instance_id'], pos = string(value, pos)
                            m['client_id'], pos = string(value, pos)
                            m['client_host'], pos = string(value, pos)
                            m['rebalance_timeout'], m['session_timeout'] = struct.unpack_from('>ii', value, pos)
                            sub, pos = nbytes(value, pos + 8)
                            m['subscription_len'] = len(sub)
                            asg, pos = nbytes(value, pos)
                            m['assignment_len'] = len(asg)
                            members.append(m)
                        assert pos == len(value), 'trailing value bytes'
                        out['members'] = members
                        print(json.dumps(out))
        r.close()
        """;

    [Fact]
    public async Task TheOffsetsTopicHoldsKafkasRecordFormatsThatAPlainDecoderReads()
    {
        var (topic, confluentGroup) = await CommitWithConfluentAsync(6);
        var pythonGroup = KafkaHelpers.UniqueTopic("pyg");
        var run = await ExternalProcess.RunPythonAsync(DecodeScript, [Bootstrap, topic, pythonGroup, confluentGroup], timeout: TimeSpan.FromSeconds(120));
        _output.WriteLine(run.ToString());
        Assert.True(run.ExitCode == 0, run.ToString());
        var records = run.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();

        // kafka-python's commits (OffsetCommit v2, no retention): OffsetCommitValue v3 with the metadata given.
        var python = records.Where(r => r.GetProperty("type").GetString() == "offset" && r.GetProperty("group").GetString() == pythonGroup)
            .ToDictionary(r => r.GetProperty("partition").GetInt32());
        Assert.Equal(2, python.Count);
        Assert.Equal((3, topic, 42L, "meta-42"), (python[0].GetProperty("version").GetInt32(), python[0].GetProperty("topic").GetString(),
            python[0].GetProperty("offset").GetInt64(), python[0].GetProperty("metadata").GetString()));
        Assert.Equal((3, 7L, ""), (python[1].GetProperty("version").GetInt32(), python[1].GetProperty("offset").GetInt64(), python[1].GetProperty("metadata").GetString()));
        var nowMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Assert.InRange(python[0].GetProperty("commit_timestamp").GetInt64(), nowMs - 600_000, nowMs + 60_000);

        // Confluent.Kafka's group: its offsets (3 + 3 messages read; librdkafka sends no metadata, stored as "")
        // and its classic group record, GroupMetadataValue v3 with the member's subscription and assignment.
        var confluent = records.Where(r => r.GetProperty("type").GetString() == "offset" && r.GetProperty("group").GetString() == confluentGroup
            && r.GetProperty("topic").GetString() == topic).GroupBy(r => r.GetProperty("partition").GetInt32()).ToDictionary(g => g.Key, g => g.Last());
        Assert.Equal([3L, 3L], confluent.OrderBy(kv => kv.Key).Select(kv => kv.Value.GetProperty("offset").GetInt64()));
        Assert.All(confluent.Values, v => Assert.Equal(("", 3), (v.GetProperty("metadata").GetString(), v.GetProperty("version").GetInt32())));
        var groupRecord = records.Last(r => r.GetProperty("type").GetString() == "group" && r.GetProperty("group").GetString() == confluentGroup);
        Assert.Equal((3, "consumer"), (groupRecord.GetProperty("version").GetInt32(), groupRecord.GetProperty("protocol_type").GetString()));
        Assert.True(groupRecord.GetProperty("generation").GetInt32() >= 1);
        // The group record written once the consumer synced (Stable) names the protocol and its member.
        var stable = records.Where(r => r.GetProperty("type").GetString() == "group" && r.GetProperty("group").GetString() == confluentGroup
            && r.GetProperty("members").GetArrayLength() == 1).ToList();
        Assert.NotEmpty(stable);
        var member = stable.Last().GetProperty("members")[0];
        Assert.Equal(stable.Last().GetProperty("leader").GetString(), member.GetProperty("member_id").GetString());
        Assert.Equal("range", stable.Last().GetProperty("protocol").GetString());
        Assert.Equal(6000, member.GetProperty("session_timeout").GetInt32());
        Assert.True(member.GetProperty("subscription_len").GetInt32() > 0 && member.GetProperty("assignment_len").GetInt32() > 0);
    }

    /// <summary>Retries while the coordinator is being created or loaded, as clients do.</summary>
    private static async Task<T> UntilCoordinatorReadyAsync<T>(Func<Task<T>> call, Func<T, short> error)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var r = await call();
            var e = (KafkaError)error(r);
            if (e is not (KafkaError.CoordinatorNotAvailable or KafkaError.CoordinatorLoadInProgress or KafkaError.NotCoordinator) || DateTime.UtcNow > deadline) return r;
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task OffsetFetchAnswersAnEmptyStringForACommitWithNullMetadata()
    {
        var group = KafkaHelpers.UniqueTopic("nullmeta");
        var topic = KafkaHelpers.UniqueTopic("nullmetat");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 1);
        await using var connection = await RawKafkaConnection.ConnectAsync(Bootstrap);
        var found = await UntilCoordinatorReadyAsync(() => connection.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = group }, 3), r => r.ErrorCode);
        Assert.Equal(0, found.ErrorCode);
        var commit = await UntilCoordinatorReadyAsync(() => connection.SendAsync<OffsetCommitResponse>(new OffsetCommitRequest
        {
            GroupId = group, GenerationIdOrMemberEpoch = -1, MemberId = "",
            Topics = [new OffsetCommitRequest.OffsetCommitRequestTopic
            {
                Name = topic, Partitions = [new OffsetCommitRequest.OffsetCommitRequestPartition { PartitionIndex = 0, CommittedOffset = 5, CommittedLeaderEpoch = -1, CommittedMetadata = null }],
            }],
        }, 8), r => r.Topics[0].Partitions[0].ErrorCode);
        Assert.Equal(0, commit.Topics[0].Partitions[0].ErrorCode);

        var v7 = await connection.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest
        {
            GroupId = group, Topics = [new OffsetFetchRequest.OffsetFetchRequestTopic { Name = topic, PartitionIndexes = [0] }],
        }, 7);
        var p7 = v7.Topics.Single().Partitions.Single();
        Assert.Equal((0, 5L, ""), ((int)p7.ErrorCode, p7.CommittedOffset, p7.Metadata));

        var v8 = await connection.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest
        {
            Groups = [new OffsetFetchRequest.OffsetFetchRequestGroup
            {
                GroupId = group, Topics = [new OffsetFetchRequest.OffsetFetchRequestTopics { Name = topic, PartitionIndexes = [0] }],
            }],
        }, 8);
        var p8 = v8.Groups.Single().Topics.Single().Partitions.Single();
        Assert.Equal((0, 5L, ""), ((int)p8.ErrorCode, p8.CommittedOffset, p8.Metadata));
    }
}
