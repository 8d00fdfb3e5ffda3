using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Security;
using StreamPlatform.Gateway.Transactions;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using TxnClient = StreamPlatform.Protos.Grpc.Transactions.TransactionCoordinatorService.TransactionCoordinatorServiceClient;

namespace StreamPlatform.Gateway.Apis;

// ListTransactions v0-1 (Kafka 4.x: 0-1 in 4.0; v1 adds duration_filter). Admin clients ask every
// broker they know and concatenate the answers, so, as ListGroups, each gateway asks the live
// brokers that map to it (GatewayMapping) and merges: over all gateways every transaction appears
// exactly once (with one gateway: every live broker). The filters travel in the body; each
// coordinator answers as Kafka's TransactionStateManager (unknown state names are listed in
// unknown_state_filters and do not filter); the gateway merges the brokers' unknown filters
// (each name once, in the order the brokers gave them) and their transactions, and keeps only
// the transactions the client may DESCRIBE (IAuthorizer, as Kafka filters them). A broker that
// cannot be reached makes the answer COORDINATOR_NOT_AVAILABLE (with the others' transactions);
// otherwise the first broker error is the answer's error.
public sealed class ListTransactionsApi(CoordinatorRouter router, IAuthorizer authorizer) : ApiHandler<ListTransactionsRequest>
{
    public override ApiKey Key => ApiKey.ListTransactions;
    public override short MinVersion => 0;
    public override short MaxVersion => ListTransactionsRequest.HighestSupportedVersion;

    protected override async Task<IKafkaResponse?> HandleAsync(ListTransactionsRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var metadata = router.Watcher.Current;
        var gateways = GatewayMapping.Gateways(metadata, router.Options);
        var brokers = metadata.Snapshot.Brokers
            .Where(b => !b.Fenced && GatewayMapping.GatewayFor(gateways, b.BrokerId) == router.Options.NodeId)
            .OrderBy(b => b.BrokerId)
            .ToList();
        var answers = await Task.WhenAll(brokers.Select(b => router.ForwardAsync<TxnClient, ListTransactionsResponse>(b,
            TransactionCoordinatorClient.Create, static (c, r, o) => c.ListTransactionsAsync(r, o),
            request, context, CoordinatorRouter.PlainCallWaitMs, cancellationToken))).ConfigureAwait(false);
        var merged = new ListTransactionsResponse();
        var unknown = new HashSet<string>(StringComparer.Ordinal);
        foreach (var answer in answers)
        {
            if (answer is null) { merged.ErrorCode = (short)ErrorCode.CoordinatorNotAvailable; continue; }
            if (answer.ErrorCode != 0 && merged.ErrorCode == 0) merged.ErrorCode = answer.ErrorCode;
            foreach (var name in answer.UnknownStateFilters)
                if (unknown.Add(name)) merged.UnknownStateFilters.Add(name);
            merged.TransactionStates.AddRange(answer.TransactionStates.Where(t =>
                authorizer.Authorize(context, AclOperation.Describe, AclResourceType.TransactionalId, t.TransactionalId)));
        }
        return merged;
    }
}
