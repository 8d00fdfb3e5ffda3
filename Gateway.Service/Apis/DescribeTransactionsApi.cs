using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Security;
using StreamPlatform.Gateway.Transactions;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using TxnClient = StreamPlatform.Protos.Grpc.Transactions.TransactionCoordinatorService.TransactionCoordinatorServiceClient;

namespace StreamPlatform.Gateway.Apis;

// DescribeTransactions v0 (Kafka 4.x: 0). The ids are split by transaction coordinator, one
// TransactionCoordinatorService.DescribeTransactions call per coordinator in parallel, and the
// answers merged in request order. An id the client may not DESCRIBE (IAuthorizer, resource
// TRANSACTIONAL_ID): TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as Kafka's KafkaApis; an id without a
// coordinator (no __transaction_state, no leader) or whose coordinator is unreachable or leaves it
// out: COORDINATOR_NOT_AVAILABLE (the admin client looks the coordinator up again); a broker that
// does not coordinate the id answers NOT_COORDINATOR itself.
public sealed class DescribeTransactionsApi(CoordinatorRouter router, IAuthorizer authorizer) : ApiHandler<DescribeTransactionsRequest>
{
    public override ApiKey Key => ApiKey.DescribeTransactions;
    public override short MinVersion => 0;
    public override short MaxVersion => DescribeTransactionsRequest.HighestSupportedVersion;

    protected override async Task<IKafkaResponse?> HandleAsync(DescribeTransactionsRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var metadata = router.Watcher.Current;
        var merged = new DescribeTransactionsResponse();
        var byBroker = new Dictionary<int, (BrokerInfo Broker, DescribeTransactionsRequest Request, List<int> Slots)>();
        for (var i = 0; i < request.TransactionalIds.Count; i++)
        {
            var id = request.TransactionalIds[i];
            var (error, broker) = authorizer.Authorize(context, AclOperation.Describe, AclResourceType.TransactionalId, id)
                ? router.Coordinator(metadata, CoordinatorKind.Transaction, id)
                : (ErrorCode.TransactionalIdAuthorizationFailed, null);
            merged.TransactionStates.Add(Error(id, error));
            if (broker is null) continue;
            if (!byBroker.TryGetValue(broker.BrokerId, out var entry))
                byBroker[broker.BrokerId] = entry = (broker, new DescribeTransactionsRequest(), []);
            entry.Request.TransactionalIds.Add(id);
            entry.Slots.Add(i);
        }
        await Task.WhenAll(byBroker.Values.Select(async entry =>
        {
            var answer = await router.ForwardAsync<TxnClient, DescribeTransactionsResponse>(entry.Broker, TransactionCoordinatorClient.Create,
                static (c, r, o) => c.DescribeTransactionsAsync(r, o), entry.Request, context,
                CoordinatorRouter.PlainCallWaitMs, cancellationToken).ConfigureAwait(false);
            var byId = new Dictionary<string, DescribeTransactionsResponse.TransactionState>(StringComparer.Ordinal);
            foreach (var state in answer?.TransactionStates ?? []) byId.TryAdd(state.TransactionalId, state);
            foreach (var slot in entry.Slots)
                if (byId.TryGetValue(request.TransactionalIds[slot], out var state)) merged.TransactionStates[slot] = state;
                else merged.TransactionStates[slot].ErrorCode = (short)ErrorCode.CoordinatorNotAvailable;
        })).ConfigureAwait(false);
        return merged;
    }

    private static DescribeTransactionsResponse.TransactionState Error(string transactionalId, ErrorCode error)
        => new() { TransactionalId = transactionalId, ErrorCode = (short)error, TransactionStateValue = "", ProducerId = -1, ProducerEpoch = -1 };
}
