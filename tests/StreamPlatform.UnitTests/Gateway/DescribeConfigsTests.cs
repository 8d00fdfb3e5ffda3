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

    [Fact]
    public void Topic_configs_are_the_catalog_with_topic_overrides()
    {
        var snapshot = GatewayTestKit.Snapshot();
        snapshot.BrokerConfigs["log.segment.bytes"] = "2048";
        var response = DescribeConfigsApi.Build(new ClusterMetadata(snapshot), Self, Request(2, "orders", synonyms: true), 4);
        var result = Assert.Single(response.Results);
        Assert.Equal((short)ErrorCode.None, result.ErrorCode);
        Assert.Equal(ConfigCatalog.Topic.Count, result.Configs.Count);

        var retention = result.Configs.Single(c => c.Name == "retention.ms");
        Assert.Equal("1000", retention.Value);
        Assert.Equal((sbyte)ConfigSource.DynamicTopicConfig, retention.ConfigSource);
        Assert.Equal([ConfigSource.DynamicTopicConfig, ConfigSource.DefaultConfig], retention.Synonyms.Select(s => (ConfigSource)s.Source));
        Assert.Equal(5, retention.ConfigType); // LONG

        var segment = result.Configs.Single(c => c.Name == "segment.bytes");
        Assert.Equal("2048", segment.Value);
        Assert.Equal((sbyte)ConfigSource.DynamicDefaultBrokerConfig, segment.ConfigSource);

        var cleanup = result.Configs.Single(c => c.Name == "cleanup.policy");
        Assert.Equal("delete", cleanup.Value);
        Assert.Equal((sbyte)ConfigSource.DefaultConfig, cleanup.ConfigSource);
        Assert.True(cleanup.IsDefault);
        Assert.False(string.IsNullOrEmpty(cleanup.Documentation));
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
    public void Broker_configs_for_a_gateway_id_or_the_default_resource()
    {
        var metadata = new ClusterMetadata(GatewayTestKit.Snapshot(autoCreate: false));
        foreach (var name in new[] { "10", "" })
        {
            var result = DescribeConfigsApi.Build(metadata, Self, Request(4, name), 4).Results[0];
            Assert.Equal((short)ErrorCode.None, result.ErrorCode);
            var auto = result.Configs.Single(c => c.Name == "auto.create.topics.enable");
            Assert.Equal("false", auto.Value);
            Assert.Equal((sbyte)ConfigSource.DynamicDefaultBrokerConfig, auto.ConfigSource);
            var maxFrame = result.Configs.Single(c => c.Name == "socket.request.max.bytes");
            Assert.True(maxFrame.ReadOnly);
            Assert.Equal((sbyte)ConfigSource.DefaultConfig, maxFrame.ConfigSource);
        }
        Assert.Equal((short)ErrorCode.InvalidRequest, DescribeConfigsApi.Build(metadata, Self, Request(4, "99"), 4).Results[0].ErrorCode);
    }

    [Fact]
    public void Unknown_topic_and_unsupported_resource_types_fail_per_resource()
    {
        var metadata = new ClusterMetadata(GatewayTestKit.Snapshot());
        var request = Request(2, "nope");
        request.Resources.Add(new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = 8, ResourceName = "10" });
        request.Resources.Add(new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = 2, ResourceName = "orders" });
        var response = DescribeConfigsApi.Build(metadata, Self, request, 4);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, response.Results[0].ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidRequest, response.Results[1].ErrorCode);
        Assert.Equal((short)ErrorCode.None, response.Results[2].ErrorCode);
    }
}
