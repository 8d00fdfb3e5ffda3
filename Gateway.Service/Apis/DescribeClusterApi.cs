using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Gateway.Security;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

// DescribeCluster v0-v1 (up to the codec's highest). The live gateways as the brokers, the
// cluster id, a gateway as the controller id (GatewayMapping). Cluster authorized operations
// from IAuthorizer when include_cluster_authorized_operations (0 when DESCRIBE on the cluster is
// denied), else -2147483648. v1 endpoint_type must be 1 (brokers); asking for controllers (2)
// gets MISMATCHED_ENDPOINT_TYPE (114) as Kafka brokers answer.
public sealed class DescribeClusterApi(TopicAdmin admin, IOptions<GatewayOptions> options, IAuthorizer authorizer) : ApiHandler<DescribeClusterRequest>
{
    public override ApiKey Key => ApiKey.DescribeCluster;
    public override short MinVersion => 0;
    public override short MaxVersion => Math.Min((short)1, DescribeClusterResponse.HighestSupportedVersion);

    protected override Task<IKafkaResponse?> HandleAsync(DescribeClusterRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var metadata = admin.Watcher.Current;
        var gateways = GatewayMapping.Gateways(metadata, options.Value);
        var response = new DescribeClusterResponse
        {
            EndpointType = request.EndpointType,
            ClusterId = metadata.Snapshot.ClusterId,
            ControllerId = GatewayMapping.ControllerFor(gateways, metadata.Snapshot.ControllerId),
            ClusterAuthorizedOperations = request.IncludeClusterAuthorizedOperations
                ? AuthorizedOperations.OfCluster(authorizer, context)
                : AuthorizedOperations.NotRequested,
        };
        if (context.ApiVersion >= 1 && request.EndpointType != 1)
        {
            response.ErrorCode = ErrorCodes.MismatchedEndpointType;
            response.ErrorMessage = "The request was sent to an endpoint of type BROKER, but CONTROLLER was requested.";
            return Task.FromResult<IKafkaResponse?>(response);
        }
        foreach (var g in gateways)
            response.Brokers.Add(new DescribeClusterResponse.DescribeClusterBroker
            {
                BrokerId = g.NodeId, Host = g.KafkaHost, Port = g.KafkaPort, Rack = string.IsNullOrEmpty(g.Rack) ? null : g.Rack,
            });
        return Task.FromResult<IKafkaResponse?>(response);
    }
}
