using Confluent.Kafka;
using Confluent.Kafka.Admin;
using StreamPlatform.IntegrationTests.Infrastructure;
using StreamPlatform.Protos.Kafka.Messages;
using Xunit.Abstractions;
using ConfigSource = Confluent.Kafka.Admin.ConfigSource;
using ConfluentAcl = Confluent.Kafka.Admin.AclOperation;
using ConfluentResourceType = Confluent.Kafka.Admin.ResourceType;

namespace StreamPlatform.IntegrationTests.Kafka;

/// <summary>
/// Admin behaviour against the real cluster: config sources as Kafka reports them (Confluent.Kafka
/// and kafka-python), group configs, authorized operations, and the API versions Kafka 4.x serves.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class AdminProtocolTests : IDisposable
{
    private readonly ClusterFixture _fixture;
    private readonly ITestOutputHelper _output;
    private readonly IDisposable _attach;

    public AdminProtocolTests(ClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _output = output;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    private string Bootstrap => _fixture.BootstrapServers;

    [Fact]
    public async Task ConfigSourcesAreKafkasDefaultStaticDynamicDefaultAndTopic()
    {
        var topic = KafkaHelpers.UniqueTopic("sources");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 1);
        using var admin = KafkaHelpers.Admin(Bootstrap);
        var topicResource = new ConfigResource { Type = ConfluentResourceType.Topic, Name = topic };
        await admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [topicResource] = [new ConfigEntry { Name = "retention.ms", Value = "3600000", IncrementalOperation = AlterConfigOpType.Set }],
        });

        // A fresh cluster: what nobody set is DEFAULT_CONFIG, not a broker config.
        var entries = Assert.Single(await admin.DescribeConfigsAsync([topicResource])).Entries;
        Assert.All(entries.Values.Where(e => e.Name != "retention.ms"), e =>
        {
            Assert.Equal(ConfigSource.DefaultConfig, e.Source);
            Assert.True(e.IsDefault, e.Name);
            Assert.False(e.IsReadOnly, e.Name);
        });
        Assert.Equal((ConfigSource.DynamicTopicConfig, false), (entries["retention.ms"].Source, entries["retention.ms"].IsDefault));

        // The shared cluster starts with --broker-config group.initial.rebalance.delay.ms=300 (TestCluster).
        var node = (await admin.DescribeClusterAsync()).Nodes[0].Id.ToString();
        var brokerResource = new ConfigResource { Type = ConfluentResourceType.Broker, Name = node };
        var broker = Assert.Single(await admin.DescribeConfigsAsync([brokerResource])).Entries;
        Assert.Equal(("300", ConfigSource.StaticBrokerConfig, true), (broker["group.initial.rebalance.delay.ms"].Value,
            broker["group.initial.rebalance.delay.ms"].Source, broker["group.initial.rebalance.delay.ms"].IsReadOnly));
        Assert.Equal((ConfigSource.DefaultConfig, true), (broker["num.partitions"].Source, broker["num.partitions"].IsDefault));

        // Set on the cluster-wide default resource (empty name; Confluent.Kafka refuses an empty
        // name, so over the raw protocol): DYNAMIC_DEFAULT_BROKER_CONFIG, on the broker and under the topic.
        await using var raw = await RawKafkaConnection.ConnectAsync(Bootstrap);
        async Task<short> AlterClusterDefault(string name, sbyte op, string? value)
        {
            var response = await raw.SendAsync<IncrementalAlterConfigsResponse>(new IncrementalAlterConfigsRequest
            {
                Resources = [new IncrementalAlterConfigsRequest.AlterConfigsResource
                {
                    ResourceType = 4, ResourceName = "",
                    Configs = [new IncrementalAlterConfigsRequest.AlterableConfig { Name = name, ConfigOperation = op, Value = value }],
                }],
            }, 1);
            return response.Responses[0].ErrorCode;
        }
        Assert.Equal(ErrorCodes.None, await AlterClusterDefault("log.segment.bytes", 0, "536870912"));
        try
        {
            var segment = Assert.Single(await admin.DescribeConfigsAsync([topicResource])).Entries["segment.bytes"];
            Assert.Equal(("536870912", ConfigSource.DynamicDefaultBrokerConfig, false), (segment.Value, segment.Source, segment.IsDefault));
            var onlyDynamic = await raw.SendAsync<DescribeConfigsResponse>(new DescribeConfigsRequest
            {
                Resources = [new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = 4, ResourceName = "", ConfigurationKeys = null }],
            }, 4);
            Assert.Equal(["log.segment.bytes"], onlyDynamic.Results[0].Configs.Select(c => c.Name));
            // Not dynamically updatable in Kafka: INVALID_REQUEST.
            Assert.Equal(ErrorCodes.InvalidRequest, await AlterClusterDefault("num.partitions", 0, "3"));

            // kafka-python's describe_configs (DescribeConfigs v2) sees the same, with synonyms in Kafka's order.
            var script = $$"""
                import sys
                from kafka.admin import KafkaAdminClient, ConfigResource, ConfigResourceType
                admin = KafkaAdminClient(bootstrap_servers=sys.argv[1])
                response = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, sys.argv[2])], include_synonyms=True)[0]
                error_code, error_message, _, _, entries = response.resources[0]
                assert error_code == 0 and error_message is None, (error_code, error_message)
                configs = {e[0]: e for e in entries}
                name, value, read_only, source, sensitive, synonyms = configs['segment.bytes']
                assert (value, source, read_only) == ('536870912', 3, False), configs['segment.bytes']
                assert [tuple(s) for s in synonyms] == [('log.segment.bytes', '536870912', 3), ('log.segment.bytes', '1073741824', 5)], synonyms
                assert configs['cleanup.policy'][3] == 5 and list(configs['cleanup.policy'][5]) == [], configs['cleanup.policy']
                assert configs['retention.ms'][3] == 1, configs['retention.ms']
                admin.close()
                print('OK')
                """;
            var run = await RunPythonAsync(script, topic);
            Assert.True(run.ExitCode == 0, run.ToString());
            Assert.Contains("OK", run.StandardOutput);
        }
        finally
        {
            Assert.Equal(ErrorCodes.None, await AlterClusterDefault("log.segment.bytes", 1, null));
        }
        var restored = Assert.Single(await admin.DescribeConfigsAsync([topicResource])).Entries["segment.bytes"];
        Assert.Equal(("1073741824", ConfigSource.DefaultConfig), (restored.Value, restored.Source));
    }

    [Fact]
    public async Task APerBrokerConfigIsDescribedAsDynamicBrokerConfigUntilDeleted()
    {
        using var admin = KafkaHelpers.Admin(Bootstrap);
        // librdkafka sends a BROKER resource to the node it names: a node the cluster advertises.
        var node = (await admin.DescribeClusterAsync()).Nodes[0].Id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var brokerResource = new ConfigResource { Type = ConfluentResourceType.Broker, Name = node };
        // Ten days: longer than Kafka's 168-hour default, so other tests on the shared cluster keep their data.
        await admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [brokerResource] = [new ConfigEntry { Name = "log.retention.ms", Value = "864000000", IncrementalOperation = AlterConfigOpType.Set }],
        });
        try
        {
            var described = Assert.Single(await admin.DescribeConfigsAsync([brokerResource])).Entries["log.retention.ms"];
            Assert.Equal(("864000000", ConfigSource.DynamicBrokerConfig, false, false), (described.Value, described.Source, described.IsDefault, described.IsReadOnly));
        }
        finally
        {
            await admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
            {
                [brokerResource] = [new ConfigEntry { Name = "log.retention.ms", IncrementalOperation = AlterConfigOpType.Delete }],
            });
        }
        var restored = Assert.Single(await admin.DescribeConfigsAsync([brokerResource])).Entries["log.retention.ms"];
        Assert.NotEqual(ConfigSource.DynamicBrokerConfig, restored.Source);
    }

    [Fact]
    public async Task GroupConfigsAreAlteredDescribedAndTheCoordinatorHandsOutTheirHeartbeatInterval()
    {
        var group = "group-config-" + Guid.NewGuid().ToString("N")[..8];
        await using var connection = await RawKafkaConnection.ConnectAsync(Bootstrap);
        var alter = new IncrementalAlterConfigsRequest
        {
            Resources =
            [
                new IncrementalAlterConfigsRequest.AlterConfigsResource
                {
                    ResourceType = 32, ResourceName = group,
                    Configs =
                    [
                        new IncrementalAlterConfigsRequest.AlterableConfig { Name = "consumer.heartbeat.interval.ms", ConfigOperation = 0, Value = "6000" },
                        new IncrementalAlterConfigsRequest.AlterableConfig { Name = "consumer.session.timeout.ms", ConfigOperation = 0, Value = "50000" },
                    ],
                },
            ],
        };
        var altered = await connection.SendAsync<IncrementalAlterConfigsResponse>(alter, 1);
        Assert.Equal(ErrorCodes.None, Assert.Single(altered.Responses).ErrorCode);

        var described = await connection.SendAsync<DescribeConfigsResponse>(new DescribeConfigsRequest
        {
            Resources = [new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = 32, ResourceName = group, ConfigurationKeys = null }],
            IncludeSynonyms = true,
        }, 4);
        var result = Assert.Single(described.Results);
        Assert.Equal(ErrorCodes.None, result.ErrorCode);
        Assert.Null(result.ErrorMessage);
        var heartbeat = result.Configs.Single(c => c.Name == "consumer.heartbeat.interval.ms");
        Assert.Equal(("6000", (sbyte)8), (heartbeat.Value, heartbeat.ConfigSource)); // GROUP_CONFIG

        // Out of the broker's bounds (group.consumer.max.session.timeout.ms 60000): INVALID_CONFIG.
        alter.Resources[0].Configs = [new IncrementalAlterConfigsRequest.AlterableConfig { Name = "consumer.session.timeout.ms", ConfigOperation = 0, Value = "70000" }];
        Assert.Equal(ErrorCodes.InvalidConfig, (await connection.SendAsync<IncrementalAlterConfigsResponse>(alter, 1)).Responses[0].ErrorCode);

        // The group coordinator applies it: a KIP-848 member is told the group's interval (the
        // cluster's own default is 500 ms, TestCluster). Any gateway forwards to the coordinator.
        ConsumerGroupHeartbeatResponse? joined = null;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            joined = await connection.SendAsync<ConsumerGroupHeartbeatResponse>(new ConsumerGroupHeartbeatRequest
            {
                GroupId = group, MemberId = Guid.NewGuid().ToString("N"), MemberEpoch = 0, RebalanceTimeoutMs = 30_000,
                SubscribedTopicNames = ["group-config-topic"], TopicPartitions = [],
            }, 0);
            if (joined.ErrorCode is not (ErrorCodes.CoordinatorLoadInProgress or ErrorCodes.CoordinatorNotAvailable or ErrorCodes.NotCoordinator)) break;
            await Task.Delay(200);
        }
        Assert.NotNull(joined);
        Assert.Equal(ErrorCodes.None, joined.ErrorCode);
        Assert.Equal(6000, joined.HeartbeatIntervalMs);
        await connection.SendAsync<ConsumerGroupHeartbeatResponse>(new ConsumerGroupHeartbeatRequest
        {
            GroupId = group, MemberId = joined.MemberId!, MemberEpoch = -1,
        }, 0);
    }

    [Fact]
    public async Task AuthorizedOperationsAreEverySupportedOperationWithoutAnAuthorizer()
    {
        var topic = KafkaHelpers.UniqueTopic("authops");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 1);
        using var admin = KafkaHelpers.Admin(Bootstrap);

        var cluster = await admin.DescribeClusterAsync(new DescribeClusterOptions { IncludeAuthorizedOperations = true });
        Assert.Equal(new[] { ConfluentAcl.Create, ConfluentAcl.Alter, ConfluentAcl.Describe, ConfluentAcl.ClusterAction, ConfluentAcl.DescribeConfigs,
            ConfluentAcl.AlterConfigs, ConfluentAcl.IdempotentWrite }.Order(), cluster.AuthorizedOperations.Order());

        var topics = await admin.DescribeTopicsAsync(TopicCollection.OfTopicNames([topic]), new DescribeTopicsOptions { IncludeAuthorizedOperations = true });
        Assert.Equal(new[] { ConfluentAcl.Read, ConfluentAcl.Write, ConfluentAcl.Create, ConfluentAcl.Delete, ConfluentAcl.Alter, ConfluentAcl.Describe,
            ConfluentAcl.DescribeConfigs, ConfluentAcl.AlterConfigs }.Order(), Assert.Single(topics.TopicDescriptions).AuthorizedOperations.Order());

        // A classic group with a committed offset.
        var group = "authops-" + Guid.NewGuid().ToString("N")[..8];
        var config = KafkaHelpers.ConsumerConfig(Bootstrap);
        config.GroupId = group;
        using (var consumer = new ConsumerBuilder<byte[], byte[]>(config).Build())
            consumer.Commit([new TopicPartitionOffset(topic, 0, 0)]);
        var groups = await admin.DescribeConsumerGroupsAsync([group], new DescribeConsumerGroupsOptions { IncludeAuthorizedOperations = true });
        Assert.Equal(new[] { ConfluentAcl.Read, ConfluentAcl.Describe, ConfluentAcl.Delete, ConfluentAcl.DescribeConfigs, ConfluentAcl.AlterConfigs }.Order(),
            Assert.Single(groups.ConsumerGroupDescriptions).AuthorizedOperations.Order());
    }

    [Fact]
    public async Task ListOffsetsV0IsNotServedAsInKafka4AndV1Is()
    {
        var topic = KafkaHelpers.UniqueTopic("offsets-v0");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 1);
        ListOffsetsRequest Request() => new()
        {
            ReplicaId = -1,
            Topics = [new ListOffsetsRequest.ListOffsetsTopic { Name = topic, Partitions = [new ListOffsetsRequest.ListOffsetsPartition { PartitionIndex = 0, Timestamp = -1 }] }],
        };

        await using (var current = await RawKafkaConnection.ConnectAsync(Bootstrap))
        {
            var v1 = await current.SendAsync<ListOffsetsResponse>(Request(), 1);
            var partition = Assert.Single(Assert.Single(v1.Topics).Partitions);
            Assert.Equal((ErrorCodes.None, 0L), (partition.ErrorCode, partition.Offset));
            var versions = await current.SendAsync<ApiVersionsResponse>(new ApiVersionsRequest(), 0);
            Assert.Equal(1, versions.ApiKeys.Single(k => k.ApiKey == (short)ApiKey.ListOffsets).MinVersion);
        }
        // KIP-896 removed ListOffsets v0 in Kafka 4.0: a 4.x broker closes the connection on it.
        await using var old = await RawKafkaConnection.ConnectAsync(Bootstrap);
        await old.WriteRequestAsync(Request(), 0);
        Assert.True(await old.IsClosedByPeerAsync());
    }

    private async Task<ExternalProcess.Result> RunPythonAsync(string script, params string[] args)
    {
        var run = await ExternalProcess.RunPythonAsync(script, [Bootstrap, .. args], timeout: TimeSpan.FromSeconds(120));
        _output.WriteLine(run.ToString());
        return run;
    }
}
