using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Groups;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

// FindCoordinator v0-6 (batched keys from v4). Key type 0 (group): the coordinator is the broker
// leading the group's partition of __consumer_offsets; key type 1 (transaction): the broker
// leading the transactional id's partition of __transaction_state. Either is shown to the client
// as the gateway that broker maps to (GatewayMapping), like partition leaders in Metadata. The
// internal topic is created on first use (CoordinatorTopics: its partitions, replication factor
// and configs from the broker configs, not while fewer brokers than its replication factor are
// live); while it has no leader the answer is COORDINATOR_NOT_AVAILABLE and clients retry. Other
// key types (2, share groups: not served): INVALID_REQUEST.
public sealed class FindCoordinatorApi(CoordinatorRouter router) : ApiHandler<FindCoordinatorRequest>
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
        var known = keyType is (sbyte)CoordinatorKind.Group or (sbyte)CoordinatorKind.Transaction;
        if (known && keys.Count > 0)
            await router.Topics.EnsureAsync((CoordinatorKind)keyType, cancellationToken).ConfigureAwait(false);
        var metadata = router.Watcher.Current;
        var gateways = GatewayMapping.Gateways(metadata, router.Options);
        var results = new List<FindCoordinatorResponse.Coordinator>();
        foreach (var key in keys.Take(KeysPerRequestMax))
        {
            var c = new FindCoordinatorResponse.Coordinator { Key = key, NodeId = -1, Host = "", Port = -1 };
            results.Add(c);
            if (!known) { c.ErrorCode = (short)ErrorCode.InvalidRequest; c.ErrorMessage = $"Unknown key type {keyType}."; continue; }
            var (error, broker) = router.Coordinator(metadata, (CoordinatorKind)keyType, key);
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
