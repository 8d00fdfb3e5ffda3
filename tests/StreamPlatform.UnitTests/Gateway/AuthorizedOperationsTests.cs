using StreamPlatform.Gateway.Apis;
using StreamPlatform.Gateway.Security;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// Authorized-operations bitfields of Metadata and DescribeCluster through the real handlers,
/// computed by the authorizer (Kafka: AuthHelper.authorizedOperations over AclEntry.supportedOperations).
/// </summary>
public class AuthorizedOperationsTests
{
    // Bits of AclOperation codes: topic READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8,
    // DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11; cluster CREATE 5, ALTER 7, DESCRIBE 8,
    // CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12.
    private const int TopicAll = (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
    private const int ClusterAll = (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);
    private const int GroupAll = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11);

    /// <summary>Denies the listed operations on every resource (what an ACL authorizer will do per principal).</summary>
    private sealed class Denying(params AclOperation[] denied) : IAuthorizer
    {
        public bool Authorize(RequestContext context, AclOperation operation, AclResourceType resourceType, string resourceName)
            => !denied.Contains(operation);
    }

    private static async Task<TResponse> Call<TResponse>(GatewayTestKit kit, ApiKey key, IKafkaRequest request, short version)
    {
        var handler = kit.Registry().Find((short)key)!;
        return (TResponse)(await handler.HandleAsync(request, new RequestContext(version, 1, "test", "c1"), CancellationToken.None))!;
    }

    [Fact]
    public void Supported_operations_are_kafkas_per_resource_type()
    {
        var allow = new AllowAllAuthorizer();
        var context = new RequestContext(0, 1, null, "c");
        Assert.Equal(TopicAll, AuthorizedOperations.Of(allow, context, AclResourceType.Topic, "t"));
        Assert.Equal(GroupAll, AuthorizedOperations.Of(allow, context, AclResourceType.Group, "g"));
        Assert.Equal(ClusterAll, AuthorizedOperations.Of(allow, context, AclResourceType.Cluster, AuthorizedOperations.ClusterName));
    }

    [Fact]
    public async Task Metadata_answers_topic_and_cluster_operations_only_when_asked()
    {
        await using var kit = new GatewayTestKit();
        kit.Watcher.Apply(GatewayTestKit.Snapshot());
        var asked = new MetadataRequest
        {
            Topics = [new MetadataRequest.MetadataRequestTopic { Name = "orders" }, new MetadataRequest.MetadataRequestTopic { Name = "missing" }],
            IncludeTopicAuthorizedOperations = true, IncludeClusterAuthorizedOperations = true,
        };
        var v10 = await Call<MetadataResponse>(kit, ApiKey.Metadata, asked, 10);
        Assert.Equal(ClusterAll, v10.ClusterAuthorizedOperations);
        Assert.All(v10.Topics, t => Assert.Equal(TopicAll, t.TopicAuthorizedOperations));

        // v11+ has no cluster field (DescribeCluster carries it); topics are still answered.
        var v12 = await Call<MetadataResponse>(kit, ApiKey.Metadata, asked, 12);
        Assert.Equal(int.MinValue, v12.ClusterAuthorizedOperations);
        Assert.Equal(TopicAll, v12.Topics[0].TopicAuthorizedOperations);

        var notAsked = new MetadataRequest { Topics = [new MetadataRequest.MetadataRequestTopic { Name = "orders" }] };
        var plain = await Call<MetadataResponse>(kit, ApiKey.Metadata, notAsked, 10);
        Assert.Equal(int.MinValue, plain.ClusterAuthorizedOperations);
        Assert.Equal(int.MinValue, plain.Topics[0].TopicAuthorizedOperations);
    }

    [Fact]
    public async Task DescribeCluster_asks_the_authorizer()
    {
        await using var kit = new GatewayTestKit();
        kit.Watcher.Apply(GatewayTestKit.Snapshot());
        var all = await Call<DescribeClusterResponse>(kit, ApiKey.DescribeCluster, new DescribeClusterRequest { IncludeClusterAuthorizedOperations = true }, 0);
        Assert.Equal(ClusterAll, all.ClusterAuthorizedOperations);
        var notAsked = await Call<DescribeClusterResponse>(kit, ApiKey.DescribeCluster, new DescribeClusterRequest(), 0);
        Assert.Equal(int.MinValue, notAsked.ClusterAuthorizedOperations);

        kit.Authorizer = new Denying(AclOperation.Alter);
        var denied = await Call<DescribeClusterResponse>(kit, ApiKey.DescribeCluster, new DescribeClusterRequest { IncludeClusterAuthorizedOperations = true }, 0);
        Assert.Equal(ClusterAll & ~(1 << 7), denied.ClusterAuthorizedOperations);
        // DESCRIBE on the cluster denied: 0, as Kafka.
        kit.Authorizer = new Denying(AclOperation.Describe);
        var noDescribe = await Call<DescribeClusterResponse>(kit, ApiKey.DescribeCluster, new DescribeClusterRequest { IncludeClusterAuthorizedOperations = true }, 0);
        Assert.Equal(0, noDescribe.ClusterAuthorizedOperations);
    }
}
