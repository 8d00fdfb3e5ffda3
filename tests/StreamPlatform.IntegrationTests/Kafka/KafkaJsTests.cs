using System.Text.Json;
using StreamPlatform.AppHost.Orchestration;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Kafka;

/// <summary>
/// KafkaJS (npm kafkajs, pinned in clients/kafkajs/package-lock.json, installed by .ci/run with
/// npm ci) doing what a KafkaJS user does; clients/kafkajs/admin-produce-consume.js prints each
/// step's result as JSON and this asserts on the values.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class KafkaJsTests : IDisposable
{
    private readonly ClusterFixture _fixture;
    private readonly ITestOutputHelper _output;
    private readonly IDisposable _attach;

    public KafkaJsTests(ClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _output = output;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    private static string ClientDir => Path.Combine(ServiceBinaries.FromBuild().RepoRoot, "tests", "StreamPlatform.IntegrationTests", "clients", "kafkajs");

    [Fact]
    public async Task KafkaJsAdminProducerAndConsumerGroupAnswersMatchKafka()
    {
        var dir = ClientDir;
        Assert.True(Directory.Exists(Path.Combine(dir, "node_modules", "kafkajs")),
            $"kafkajs is not installed: run 'npm ci' in {dir} (what .ci/run does; needs node and npm).");
        var topic = KafkaHelpers.UniqueTopic("kafkajs");
        var group = "kafkajs-group-" + Guid.NewGuid().ToString("N");
        var run = await ExternalProcess.RunAsync(ExternalProcess.FindOnPath("node"),
            [Path.Combine(dir, "admin-produce-consume.js"), _fixture.BootstrapServers, topic, group], timeout: TimeSpan.FromMinutes(5));
        _output.WriteLine(run.ToString());
        Assert.True(run.ExitCode == 0, run.ToString());
        using var json = JsonDocument.Parse(run.StandardOutput);
        var root = json.RootElement;
        Assert.True(root.GetProperty("failures").GetArrayLength() == 0, "steps failed: " + root.GetProperty("failures"));
        var r = root.GetProperty("results");
        string S(JsonElement e) => e.ValueKind == JsonValueKind.String ? e.GetString()! : e.ToString();

        Assert.True(r.GetProperty("createTopics").GetBoolean());
        Assert.False(r.GetProperty("createTopicsAgain").GetBoolean()); // TOPIC_ALREADY_EXISTS
        Assert.True(r.GetProperty("listTopicsHasTopic").GetBoolean());

        var md = r.GetProperty("fetchTopicMetadata")[0];
        Assert.Equal(topic, md.GetProperty("name").GetString());
        Assert.Equal([0, 1, 2], md.GetProperty("partitions").EnumerateArray().Select(p => p.GetProperty("partitionId").GetInt32()));
        Assert.All(md.GetProperty("partitions").EnumerateArray(), p => Assert.Equal(0, p.GetProperty("partitionErrorCode").GetInt32()));

        var cluster = r.GetProperty("describeCluster");
        var broker = Assert.Single(cluster.GetProperty("brokers").EnumerateArray());
        Assert.Equal(_fixture.BootstrapServers, $"{broker.GetProperty("host").GetString()}:{broker.GetProperty("port").GetInt32()}");
        Assert.Equal(broker.GetProperty("nodeId").GetInt32(), cluster.GetProperty("controller").GetInt32());
        Assert.False(string.IsNullOrEmpty(cluster.GetProperty("clusterId").GetString()));

        var topicConfigs = r.GetProperty("describeTopicConfigs")[0];
        Assert.Equal(0, topicConfigs.GetProperty("errorCode").GetInt32());
        Assert.Equal("86400000", topicConfigs.GetProperty("configs").GetProperty("retention.ms").GetString());
        Assert.Equal("delete", topicConfigs.GetProperty("configs").GetProperty("cleanup.policy").GetString());
        var brokerConfigs = r.GetProperty("describeBrokerConfigs")[0];
        Assert.Equal(0, brokerConfigs.GetProperty("errorCode").GetInt32());
        Assert.Equal(4, brokerConfigs.GetProperty("resourceType").GetInt32());
        Assert.Equal("1048588", brokerConfigs.GetProperty("configs").GetProperty("message.max.bytes").GetString());

        // AlterConfigs replaces the whole topic config: retention.ms returns to its default.
        var alter = r.GetProperty("alterConfigs");
        Assert.Equal(0, alter.GetProperty("answer")[0].GetProperty("errorCode").GetInt32());
        Assert.Equal("2000000", alter.GetProperty("after").GetProperty("max.message.bytes").GetString());
        Assert.Equal("604800000", alter.GetProperty("after").GetProperty("retention.ms").GetString());

        // 100 records in all, produced as 30 + 30 + 2x20; offsets of a partition continue across sends.
        var sends = new[] { "sendGzipAcksAll", "sendNoneAcksLeader", "sendBatch" };
        foreach (var send in sends)
            Assert.All(r.GetProperty(send).EnumerateArray(), p =>
            {
                Assert.Equal(0, p.GetProperty("errorCode").GetInt32());
                Assert.Equal(topic, p.GetProperty("topicName").GetString());
                Assert.Equal("-1", S(p.GetProperty("logAppendTime"))); // CreateTime topic
                Assert.Equal("0", S(p.GetProperty("logStartOffset")));
            });
        Assert.All(r.GetProperty("sendGzipAcksAll").EnumerateArray(), p => Assert.Equal("0", S(p.GetProperty("baseOffset"))));
        var offsets = r.GetProperty("fetchTopicOffsets").EnumerateArray().ToList();
        Assert.Equal(100, offsets.Sum(p => long.Parse(S(p.GetProperty("high")))));
        Assert.All(offsets, p => Assert.Equal("0", S(p.GetProperty("low"))));
        var highs = offsets.Select(p => S(p.GetProperty("high"))).ToList();
        Assert.All(r.GetProperty("fetchTopicOffsetsByTimestampBefore").EnumerateArray(), p => Assert.Equal("0", S(p.GetProperty("offset"))));
        Assert.Equal(highs, r.GetProperty("fetchTopicOffsetsByTimestampAfter").EnumerateArray().Select(p => S(p.GetProperty("offset"))));

        var consumed = r.GetProperty("consumeEachMessage");
        Assert.Equal(100, consumed.GetProperty("count").GetInt32());
        Assert.True(consumed.GetProperty("valuesOk").GetBoolean());
        Assert.True(consumed.GetProperty("headersOk").GetBoolean());
        var described = Assert.Single(consumed.GetProperty("describe").EnumerateArray());
        Assert.Equal(0, described.GetProperty("errorCode").GetInt32());
        Assert.Equal("Stable", described.GetProperty("state").GetString());
        Assert.Equal("consumer", described.GetProperty("protocolType").GetString());
        Assert.Equal("RoundRobinAssigner", described.GetProperty("protocol").GetString());
        var member = Assert.Single(described.GetProperty("members").EnumerateArray());
        Assert.Equal("/127.0.0.1", member.GetProperty("clientHost").GetString()); // Kafka: InetAddress.toString()
        Assert.Equal("kafkajs-it", member.GetProperty("clientId").GetString());
        Assert.True(member.GetProperty("memberIdPrefix").GetBoolean());
        Assert.True(member.GetProperty("hasAssignment").GetBoolean());
        Assert.True(member.GetProperty("hasMetadata").GetBoolean());
        Assert.Equal("consumer", Assert.Single(consumed.GetProperty("listed").EnumerateArray()).GetProperty("protocolType").GetString());

        var empty = Assert.Single(r.GetProperty("describeGroupsEmpty").EnumerateArray());
        Assert.Equal("Empty", empty.GetProperty("state").GetString());
        Assert.Equal(0, empty.GetProperty("members").GetInt32());
        Assert.Equal(highs, r.GetProperty("fetchOffsetsCommitted")[0].GetProperty("partitions").EnumerateArray().Select(p => S(p.GetProperty("offset"))));
        Assert.Equal(["1", "2", highs[2]], r.GetProperty("setOffsets").EnumerateArray().Select(p => S(p.GetProperty("offset"))));
        // KafkaJS commits -2 (earliest) and Kafka stores it as given.
        Assert.All(r.GetProperty("resetOffsetsEarliest").EnumerateArray(), p => Assert.Equal("-2", S(p.GetProperty("offset"))));
        Assert.Equal(100, r.GetProperty("consumeEachBatch").GetProperty("count").GetInt32());

        var afterDelete = r.GetProperty("deleteTopicRecords").EnumerateArray().ToList();
        Assert.Equal(["2", "0", "0"], afterDelete.Select(p => S(p.GetProperty("low"))));
        Assert.Equal(highs, afterDelete.Select(p => S(p.GetProperty("high"))));

        Assert.Equal(0, Assert.Single(r.GetProperty("deleteGroups").EnumerateArray()).GetProperty("errorCode").GetInt32());
        Assert.Equal("Dead", Assert.Single(r.GetProperty("describeGroupsAfterDelete").EnumerateArray()).GetProperty("state").GetString());
        Assert.False(r.GetProperty("listGroupsAfterDelete").GetBoolean());
        Assert.True(r.GetProperty("deleteTopics").GetBoolean());
    }
}
