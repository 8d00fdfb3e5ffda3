using StreamPlatform.Gateway.Apis;

namespace StreamPlatform.Gateway.Security;

/// <summary>
/// The authorized_operations bitfields of Metadata, DescribeCluster, DescribeGroups and
/// ConsumerGroupDescribe: bit n set = AclOperation n allowed, over the operations the resource
/// type supports (Kafka's AclEntry.supportedOperations). Not requested: <see cref="NotRequested"/>.
/// </summary>
public static class AuthorizedOperations
{
    /// <summary>The schema default Kafka answers when the client did not ask (INT32 minimum).</summary>
    public const int NotRequested = int.MinValue;

    private static readonly AclOperation[] TopicOperations =
        [AclOperation.Read, AclOperation.Write, AclOperation.Create, AclOperation.Describe, AclOperation.Delete, AclOperation.Alter, AclOperation.DescribeConfigs, AclOperation.AlterConfigs];
    private static readonly AclOperation[] GroupOperations =
        [AclOperation.Read, AclOperation.Describe, AclOperation.Delete, AclOperation.DescribeConfigs, AclOperation.AlterConfigs];
    private static readonly AclOperation[] ClusterOperations =
        [AclOperation.Create, AclOperation.ClusterAction, AclOperation.DescribeConfigs, AclOperation.AlterConfigs, AclOperation.IdempotentWrite, AclOperation.Alter, AclOperation.Describe];
    private static readonly AclOperation[] TransactionalIdOperations = [AclOperation.Describe, AclOperation.Write];
    private static readonly AclOperation[] DelegationTokenOperations = [AclOperation.Describe];
    private static readonly AclOperation[] UserOperations = [AclOperation.CreateTokens, AclOperation.DescribeTokens];

    /// <summary>Kafka's name of the one cluster resource.</summary>
    public const string ClusterName = "kafka-cluster";

    public static IReadOnlyList<AclOperation> Supported(AclResourceType type) => type switch
    {
        AclResourceType.Topic => TopicOperations,
        AclResourceType.Group => GroupOperations,
        AclResourceType.Cluster => ClusterOperations,
        AclResourceType.TransactionalId => TransactionalIdOperations,
        AclResourceType.DelegationToken => DelegationTokenOperations,
        AclResourceType.User => UserOperations,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Not a concrete resource type."),
    };

    /// <summary>The bitfield of the supported operations <paramref name="authorizer"/> allows on the resource.</summary>
    public static int Of(IAuthorizer authorizer, RequestContext context, AclResourceType type, string name)
    {
        var bits = 0;
        foreach (var op in Supported(type))
            if (authorizer.Authorize(context, op, type, name)) bits |= 1 << (int)op;
        return bits;
    }

    /// <summary>
    /// The cluster's bitfield as Metadata v8-10 and DescribeCluster answer it: 0 when DESCRIBE on
    /// the cluster is denied, else the allowed operations.
    /// </summary>
    public static int OfCluster(IAuthorizer authorizer, RequestContext context)
        => authorizer.Authorize(context, AclOperation.Describe, AclResourceType.Cluster, ClusterName)
            ? Of(authorizer, context, AclResourceType.Cluster, ClusterName)
            : 0;
}
