using StreamPlatform.Gateway;
using StreamPlatform.Gateway.Apis;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Gateway;

public class MetadataMappingTests
{
    private static readonly GatewayOptions Self = new() { NodeId = 10, KafkaPort = 19092 };

    private static MetadataRequest Request(params string?[] names)
    {
        var request = new MetadataRequest { Topics = [], AllowAutoTopicCreation = true };
        foreach (var n in names) request.Topics.Add(new MetadataRequest.MetadataRequestTopic { Name = n });
        return request;
    }

    [Fact]
    public void Gateways_are_the_brokers_and_leaders_map_deterministically()
    {
        var metadata = new ClusterMetadata(GatewayTestKit.Snapshot());
        var response = MetadataApi.Build(metadata, Self, Request("orders"), 12, null);

        // Live gateways only, ordered by node id; controller is a gateway.
        Assert.Equal([10, 11], response.Brokers.Select(b => b.NodeId));
        Assert.Equal("test-cluster", response.ClusterId);
        Assert.Contains(response.ControllerId, new[] { 10, 11 });

        var topic = Assert.Single(response.Topics);
        Assert.Equal(GatewayTestKit.OrdersId, topic.TopicId);
        Assert.Equal((short)ErrorCode.None, topic.ErrorCode);
        // broker 1 -> gateways[1 % 2] = 11; broker 2 -> gateways[0] = 10.
        var p0 = topic.Partitions[0];
        Assert.Equal(11, p0.LeaderId);
        Assert.Equal(4, p0.LeaderEpoch);
        Assert.Equal([11, 10], p0.ReplicaNodes);
        Assert.Equal([11, 10], p0.IsrNodes);
        var p1 = topic.Partitions[1];
        Assert.Equal(10, p1.LeaderId);
        Assert.Equal([10], p1.IsrNodes);
        // Fenced leader: no leader, LEADER_NOT_AVAILABLE.
        var p2 = topic.Partitions[2];
        Assert.Equal(-1, p2.LeaderId);
        Assert.Equal((short)ErrorCode.LeaderNotAvailable, p2.ErrorCode);
    }

    [Fact]
    public void Offline_replicas_are_the_gateways_whose_every_replica_is_on_a_fenced_broker()
    {
        var snapshot = GatewayTestKit.Snapshot();
        var topic = snapshot.Topics.Single();
        // Partition 2: led by fenced broker 3, its only replica -> gateway 11 stands for nothing live.
        topic.Partitions[2].Replicas.Clear();
        topic.Partitions[2].Replicas.Add(3);
        // Partition 3: led by broker 2 (gateway 10); its other replica, broker 3, is fenced.
        var p3 = new PartitionInfo { Partition = 3, Leader = 2, LeaderEpoch = 1 };
        p3.Replicas.AddRange([2, 3]);
        p3.Isr.Add(2);
        topic.Partitions.Add(p3);
        var response = MetadataApi.Build(new ClusterMetadata(snapshot), Self, Request("orders"), 12, null);
        var partitions = Assert.Single(response.Topics).Partitions;
        // Gateway 11 stands for live broker 1 in partitions 0 and 1: never offline there.
        Assert.Empty(partitions[0].OfflineReplicas);
        Assert.Empty(partitions[1].OfflineReplicas);
        Assert.Equal([11], partitions[2].OfflineReplicas);
        Assert.Equal(10, partitions[3].LeaderId);
        Assert.Equal([10, 11], partitions[3].ReplicaNodes);
        Assert.Equal([10], partitions[3].IsrNodes);
        Assert.Equal([11], partitions[3].OfflineReplicas);

        // One gateway stands for every broker: offline only when no replica is live at all.
        snapshot.Gateways.Clear();
        snapshot.Gateways.Add(new GatewayInfo { NodeId = 5, KafkaHost = "h", KafkaPort = 1 });
        partitions = Assert.Single(MetadataApi.Build(new ClusterMetadata(snapshot), Self, Request("orders"), 12, null).Topics).Partitions;
        Assert.Equal([5], partitions[2].OfflineReplicas);
        Assert.Empty(partitions[3].OfflineReplicas);
    }

    [Fact]
    public void One_gateway_makes_every_list_that_gateway()
    {
        var snapshot = GatewayTestKit.Snapshot();
        snapshot.Gateways.Clear();
        snapshot.Gateways.Add(new GatewayInfo { NodeId = 5, KafkaHost = "h", KafkaPort = 1 });
        var response = MetadataApi.Build(new ClusterMetadata(snapshot), Self, Request("orders"), 9, null);
        var topic = Assert.Single(response.Topics);
        Assert.All(topic.Partitions.Take(2), p =>
        {
            Assert.Equal(5, p.LeaderId);
            Assert.Equal([5], p.ReplicaNodes);
            Assert.Equal([5], p.IsrNodes);
        });
    }

    [Fact]
    public void Without_registered_gateways_the_gateway_presents_itself()
    {
        var snapshot = GatewayTestKit.Snapshot();
        snapshot.Gateways.Clear();
        var response = MetadataApi.Build(new ClusterMetadata(snapshot), Self, Request("orders"), 1, null);
        var broker = Assert.Single(response.Brokers);
        Assert.Equal((10, "127.0.0.1", 19092), (broker.NodeId, broker.Host, broker.Port));
    }

    [Fact]
    public void Unknown_invalid_and_just_created_topics_get_kafka_errors()
    {
        var metadata = new ClusterMetadata(GatewayTestKit.Snapshot());
        var created = new Dictionary<string, ErrorCode> { ["fresh"] = ErrorCode.None, ["bad-config"] = ErrorCode.InvalidConfig };
        var response = MetadataApi.Build(metadata, Self, Request("nope", "bad name!", "fresh", "bad-config"), 9, created);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, response.Topics[0].ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidTopicException, response.Topics[1].ErrorCode);
        Assert.Equal((short)ErrorCode.LeaderNotAvailable, response.Topics[2].ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidConfig, response.Topics[3].ErrorCode);
    }

    [Fact]
    public void Null_topics_means_all_topics_and_v0_empty_list_too()
    {
        var metadata = new ClusterMetadata(GatewayTestKit.Snapshot());
        Assert.Single(MetadataApi.Build(metadata, Self, new MetadataRequest { Topics = null }, 12, null).Topics);
        Assert.Single(MetadataApi.Build(metadata, Self, new MetadataRequest { Topics = [] }, 0, null).Topics);
        Assert.Empty(MetadataApi.Build(metadata, Self, new MetadataRequest { Topics = [] }, 1, null).Topics);
    }

    [Fact]
    public void Unknown_topic_id_gets_unknown_topic_id()
    {
        var metadata = new ClusterMetadata(GatewayTestKit.Snapshot());
        var request = new MetadataRequest { Topics = [new MetadataRequest.MetadataRequestTopic { Name = null, TopicId = Guid.NewGuid() }] };
        Assert.Equal((short)ErrorCode.UnknownTopicId, MetadataApi.Build(metadata, Self, request, 12, null).Topics[0].ErrorCode);
        var known = new MetadataRequest { Topics = [new MetadataRequest.MetadataRequestTopic { Name = null, TopicId = GatewayTestKit.OrdersId }] };
        Assert.Equal("orders", MetadataApi.Build(metadata, Self, known, 12, null).Topics[0].Name);
    }

    [Fact]
    public void Auto_create_decision_follows_config_request_flag_and_names()
    {
        var enabled = new ClusterMetadata(GatewayTestKit.Snapshot(autoCreate: true));
        var disabled = new ClusterMetadata(GatewayTestKit.Snapshot(autoCreate: false));
        var request = Request("orders", "new-topic", "bad name!", "new-topic");
        Assert.Equal(["new-topic"], MetadataApi.TopicsToCreate(enabled, request, 12));
        Assert.Empty(MetadataApi.TopicsToCreate(disabled, request, 12));

        request.AllowAutoTopicCreation = false;
        Assert.Empty(MetadataApi.TopicsToCreate(enabled, request, 4));
        // Before v4 there is no flag: auto-creation is always allowed.
        Assert.Equal(["new-topic"], MetadataApi.TopicsToCreate(enabled, request, 3));
        // All-topics requests never create anything.
        Assert.Empty(MetadataApi.TopicsToCreate(enabled, new MetadataRequest { Topics = null }, 12));
    }

    [Fact]
    public void Auto_create_defaults_to_the_catalog_value_when_unset()
    {
        var snapshot = GatewayTestKit.Snapshot();
        snapshot.BrokerConfigs.Remove("auto.create.topics.enable");
        Assert.True(TopicAdmin.AutoCreateEnabled(new ClusterMetadata(snapshot)));
    }

    [Theory]
    [InlineData("orders", true)]
    [InlineData("a.b_c-D9", true)]
    [InlineData("", false)]
    [InlineData(".", false)]
    [InlineData("..", false)]
    [InlineData("has space", false)]
    [InlineData("ünicode", false)]
    public void Topic_name_rules(string name, bool valid) => Assert.Equal(valid, TopicNames.IsValid(name));

    [Fact]
    public void Topic_name_length_limit()
    {
        Assert.True(TopicNames.IsValid(new string('a', 249)));
        Assert.False(TopicNames.IsValid(new string('a', 250)));
    }
}
