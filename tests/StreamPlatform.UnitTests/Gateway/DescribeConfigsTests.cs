using StreamPlatform.Gateway;
using StreamPlatform.Gateway.Apis;
using StreamPlatform.Protos.Configs;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Gateway;

public class DescribeConfigsTests
{
    private static readonly GatewayOptions Self = new() { NodeId = 10 };

    private static DescribeConfigsRequest Request(sbyte type, string name, List<string>? keys = null, bool synonyms = false)
    {
        var request = new DescribeConfigsRequest { IncludeSynonyms = synonyms, IncludeDocumentation = true };
        request.Resources.Add(new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = type, ResourceName = name, ConfigurationKeys = keys });
        return request;
    }

    private static List<(string Name, string? Value, ConfigSource Source)> Synonyms(DescribeConfigsResponse.DescribeConfigsResourceResult c)
        => c.Synonyms.Select(x => (x.Name, x.Value, (ConfigSource)x.Source)).ToList();

    [Fact]
    public void On_a_fresh_cluster_every_topic_config_without_an_override_is_a_default()
    {
        var snapshot = GatewayTestKit.Snapshot(autoCreate: true);
        snapshot.BrokerConfigs.Clear(); // nothing configured anywhere
        var result = Assert.Single(DescribeConfigsApi.Build(new ClusterMetadata(snapshot), Self, Request(2, "orders", synonyms: true), 4).Results);
        Assert.Equal(ErrorCodes.None, result.ErrorCode);
        Assert.Null(result.ErrorMessage);
        Assert.Equal(ConfigCatalog.Topic.Count, result.Configs.Count);
        Assert.All(result.Configs.Where(c => c.Name != "retention.ms"), c =>
        {
            Assert.Equal((sbyte)ConfigSource.DefaultConfig, c.ConfigSource);
            Assert.True(c.IsDefault);
            Assert.False(c.ReadOnly);
        });
        // A broker synonym with a default is listed (Kafka: segment.bytes has DEFAULT_CONFIG:log.segment.bytes).
        var segment = result.Configs.Single(c => c.Name == "segment.bytes");
        Assert.Equal([("log.segment.bytes", "1073741824", ConfigSource.DefaultConfig)], Synonyms(segment));
        // log.retention.ms has no default of its own (Kafka: from log.retention.hours): no synonym.
        var retention = result.Configs.Single(c => c.Name == "retention.ms");
        Assert.Equal([("retention.ms", "1000", ConfigSource.DynamicTopicConfig)], Synonyms(retention));
        var cleanup = result.Configs.Single(c => c.Name == "cleanup.policy");
        Assert.Equal("delete", cleanup.Value);
        Assert.Empty(cleanup.Synonyms);
        Assert.False(string.IsNullOrEmpty(cleanup.Documentation));
    }

    [Fact]
    public void Topic_values_come_from_the_override_then_dynamic_default_static_and_default_broker_values_in_kafkas_order()
    {
        var snapshot = GatewayTestKit.Snapshot(autoCreate: true);
        snapshot.BrokerConfigs.Clear();
        snapshot.StaticBrokerConfigs["log.segment.bytes"] = "2048";     // given at start-up
        snapshot.BrokerConfigs["log.segment.bytes"] = "4096";           // overridden by AlterConfigs on ""
        snapshot.DynamicBrokerConfigs.Add("log.segment.bytes");
        snapshot.StaticBrokerConfigs["message.max.bytes"] = "500000";
        snapshot.BrokerConfigs["message.max.bytes"] = "500000";
        var result = DescribeConfigsApi.Build(new ClusterMetadata(snapshot), Self, Request(2, "orders", synonyms: true), 4).Results[0];

        var segment = result.Configs.Single(c => c.Name == "segment.bytes");
        Assert.Equal(("4096", (sbyte)ConfigSource.DynamicDefaultBrokerConfig, false), (segment.Value, segment.ConfigSource, segment.IsDefault));
        Assert.Equal([("log.segment.bytes", "4096", ConfigSource.DynamicDefaultBrokerConfig), ("log.segment.bytes", "2048", ConfigSource.StaticBrokerConfig),
            ("log.segment.bytes", "1073741824", ConfigSource.DefaultConfig)], Synonyms(segment));

        var maxMessage = result.Configs.Single(c => c.Name == "max.message.bytes");
        Assert.Equal(("500000", (sbyte)ConfigSource.StaticBrokerConfig), (maxMessage.Value, maxMessage.ConfigSource));

        var retention = result.Configs.Single(c => c.Name == "retention.ms");
        Assert.Equal(("1000", (sbyte)ConfigSource.DynamicTopicConfig), (retention.Value, retention.ConfigSource));
        Assert.Equal(5, retention.ConfigType); // LONG
    }

    [Fact]
    public void Configuration_keys_narrow_the_answer()
    {
        var response = DescribeConfigsApi.Build(new ClusterMetadata(GatewayTestKit.Snapshot()), Self,
            Request(2, "orders", ["max.message.bytes", "no.such.config"]), 2);
        var config = Assert.Single(response.Results[0].Configs);
        Assert.Equal(("max.message.bytes", "1048588"), (config.Name, config.Value));
        Assert.Empty(config.Synonyms);
    }

    [Fact]
    public void A_gateway_id_lists_every_broker_config_the_default_resource_only_dynamic_ones()
    {
        var snapshot = GatewayTestKit.Snapshot(autoCreate: true);
        snapshot.BrokerConfigs.Clear();
        snapshot.StaticBrokerConfigs["auto.create.topics.enable"] = "false";
        snapshot.BrokerConfigs["auto.create.topics.enable"] = "false";
        snapshot.BrokerConfigs["log.retention.ms"] = "1234";
        snapshot.DynamicBrokerConfigs.Add("log.retention.ms");
        var metadata = new ClusterMetadata(snapshot);

        var node = DescribeConfigsApi.Build(metadata, Self, Request(4, "10", synonyms: true), 4).Results[0];
        Assert.Equal(ErrorCodes.None, node.ErrorCode);
        Assert.Null(node.ErrorMessage);
        Assert.Equal(ConfigCatalog.Broker.Count, node.Configs.Count);
        var auto = node.Configs.Single(c => c.Name == "auto.create.topics.enable");
        Assert.Equal(("false", (sbyte)ConfigSource.StaticBrokerConfig, true), (auto.Value, auto.ConfigSource, auto.ReadOnly));
        Assert.Equal([("auto.create.topics.enable", "false", ConfigSource.StaticBrokerConfig), ("auto.create.topics.enable", "true", ConfigSource.DefaultConfig)], Synonyms(auto));
        var numPartitions = node.Configs.Single(c => c.Name == "num.partitions");
        Assert.Equal(("1", (sbyte)ConfigSource.DefaultConfig, true, true), (numPartitions.Value, numPartitions.ConfigSource, numPartitions.IsDefault, numPartitions.ReadOnly));
        var retention = node.Configs.Single(c => c.Name == "log.retention.ms");
        Assert.Equal(("1234", (sbyte)ConfigSource.DynamicDefaultBrokerConfig, false), (retention.Value, retention.ConfigSource, retention.ReadOnly));

        var cluster = DescribeConfigsApi.Build(metadata, Self, Request(4, "", synonyms: true), 4).Results[0];
        var only = Assert.Single(cluster.Configs);
        Assert.Equal(("log.retention.ms", "1234", (sbyte)ConfigSource.DynamicDefaultBrokerConfig), (only.Name, only.Value, only.ConfigSource));
        Assert.Equal([("log.retention.ms", "1234", ConfigSource.DynamicDefaultBrokerConfig)], Synonyms(only));

        Assert.Equal(ErrorCodes.InvalidRequest, DescribeConfigsApi.Build(metadata, Self, Request(4, "99"), 4).Results[0].ErrorCode);
        Assert.Equal(ErrorCodes.InvalidRequest, DescribeConfigsApi.Build(metadata, Self, Request(4, "x"), 4).Results[0].ErrorCode);
    }

    [Fact]
    public void Group_configs_default_to_the_broker_group_settings_and_show_overrides_as_group_config()
    {
        var snapshot = GatewayTestKit.Snapshot();
        snapshot.StaticBrokerConfigs["group.consumer.heartbeat.interval.ms"] = "7000";
        snapshot.BrokerConfigs["group.consumer.heartbeat.interval.ms"] = "7000";
        var set = new StreamPlatform.Protos.Grpc.ConfigSet { Name = "g1" };
        set.Configs["consumer.session.timeout.ms"] = "50000";
        snapshot.GroupConfigs.Add(set);
        var metadata = new ClusterMetadata(snapshot);

        var g1 = DescribeConfigsApi.Build(metadata, Self, Request(32, "g1", synonyms: true), 4).Results[0];
        Assert.Equal(ErrorCodes.None, g1.ErrorCode);
        Assert.Equal(ConfigCatalog.Group.Count, g1.Configs.Count);
        var session = g1.Configs.Single(c => c.Name == "consumer.session.timeout.ms");
        Assert.Equal(("50000", (sbyte)ConfigSource.GroupConfig, false), (session.Value, session.ConfigSource, session.IsDefault));
        Assert.Equal([("consumer.session.timeout.ms", "50000", ConfigSource.GroupConfig)], Synonyms(session));
        var heartbeat = g1.Configs.Single(c => c.Name == "consumer.heartbeat.interval.ms");
        Assert.Equal(("7000", (sbyte)ConfigSource.DefaultConfig), (heartbeat.Value, heartbeat.ConfigSource));

        // Kafka does not require the group to exist.
        var other = DescribeConfigsApi.Build(metadata, Self, Request(32, "other"), 4).Results[0];
        Assert.Equal("45000", other.Configs.Single(c => c.Name == "consumer.session.timeout.ms").Value);
        Assert.Equal(ErrorCodes.InvalidRequest, DescribeConfigsApi.Build(metadata, Self, Request(32, ""), 4).Results[0].ErrorCode);
    }

    [Fact]
    public void Unknown_topic_and_unsupported_resource_types_fail_per_resource()
    {
        var metadata = new ClusterMetadata(GatewayTestKit.Snapshot());
        var request = Request(2, "nope");
        request.Resources.Add(new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = 8, ResourceName = "10" });
        request.Resources.Add(new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = 2, ResourceName = "orders" });
        var response = DescribeConfigsApi.Build(metadata, Self, request, 4);
        Assert.Equal(ErrorCodes.UnknownTopicOrPartition, response.Results[0].ErrorCode);
        Assert.Equal(ErrorCodes.InvalidRequest, response.Results[1].ErrorCode);
        Assert.Equal(ErrorCodes.None, response.Results[2].ErrorCode);
    }
}
