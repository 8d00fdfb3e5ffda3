using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Gateway.Groups;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

// FindCoordinator v0-6 (batched keys from v4). Key type 0 (group): the coordinator is the broker
// leading the group's partition of __consumer_offsets, shown to the client as the gateway that
// broker maps to (GatewayMapping), like partition leaders in Metadata. The offsets topic is
// created on first use; while it has no leader the answer is COORDINATOR_NOT_AVAILABLE and
// clients retry. Key type 1 (transaction): no transaction coordinator yet,
// COORDINATOR_NOT_AVAILABLE; other key types: INVALID_REQUEST.
public sealed class FindCoordinatorApi(GroupRouter router) : ApiHandler<FindCoordinatorRequest>
{
    /// <summary>Most keys one batched request may name.</summary>
    public const int KeysPerRequestMax = 10_000;

    public override ApiKey Key => ApiKey.FindCoordinator;
    public override short MinVersion => 0;
    public override short MaxVersion => FindCoordinatorRequest.HighestSupportedVersion;

    protected override async Task<IKafkaResponse?> HandleAsync(FindCoordinatorRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var version = context.ApiVersion;
        var keys = version >= 4 ? request.CoordinatorKeys : [request.Key];
        var keyType = version >= 1 ? request.KeyType : (sbyte)0;
        if (keyType == 0 && keys.Count > 0 && !router.Watcher.Current.TopicsByName.ContainsKey(Protos.Groups.OffsetsTopic.Name))
            await router.EnsureOffsetsTopicAsync(cancellationToken).ConfigureAwait(false);
        var metadata = router.Watcher.Current;
        var gateways = GatewayMapping.Gateways(metadata, router.Options);
        var results = new List<FindCoordinatorResponse.Coordinator>();
        foreach (var key in keys.Take(KeysPerRequestMax))
        {
            var c = new FindCoordinatorResponse.Coordinator { Key = key, NodeId = -1, Host = "", Port = -1 };
            results.Add(c);
            if (keyType == 1) { c.ErrorCode = (short)ErrorCode.CoordinatorNotAvailable; c.ErrorMessage = "Transactions are not supported."; continue; }
            if (keyType != 0) { c.ErrorCode = (short)ErrorCode.InvalidRequest; c.ErrorMessage = $"Unknown key type {keyType}."; continue; }
            var (error, broker) = router.Coordinator(metadata, key);
            var nodeId = broker is null ? -1 : GatewayMapping.GatewayFor(gateways, broker.BrokerId);
            var gateway = gateways.FirstOrDefault(g => g.NodeId == nodeId);
            if (gateway is null)
            {
                c.ErrorCode = (short)(error == ErrorCode.None ? ErrorCode.CoordinatorNotAvailable : error);
                c.ErrorMessage = "The coordinator is not available.";
                continue;
            }
            c.NodeId = gateway.NodeId;
            c.Host = gateway.KafkaHost;
            c.Port = gateway.KafkaPort;
        }
        var response = new FindCoordinatorResponse();
        if (version >= 4)
        {
            response.Coordinators.AddRange(results);
            return response;
        }
        var only = results[0];
        response.ErrorCode = only.ErrorCode;
        response.ErrorMessage = only.ErrorCode == 0 ? null : only.ErrorMessage;
        response.NodeId = only.NodeId;
        response.Host = only.Host;
        response.Port = only.Port;
        return response;
    }
}
