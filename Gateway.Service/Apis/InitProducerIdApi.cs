using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Security;
using StreamPlatform.Gateway.Transactions;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using TxnClient = StreamPlatform.Protos.Grpc.Transactions.TransactionCoordinatorService.TransactionCoordinatorServiceClient;

namespace StreamPlatform.Gateway.Apis;

// InitProducerId v0-5 (Kafka 4.x serves 0-5; v6, KIP-939 two-phase commit, is not in our
// definitions). The body goes as it is to a broker's TransactionCoordinatorService.InitProducerId.
// - transactional_id null (idempotent producers, every client's default): any live broker
//   answers with a producer id from its block (KIP-360 epoch bump when producer_id/epoch are
//   given). Calls are spread over the live brokers round-robin; when the chosen broker cannot
//   be reached or does not answer, the request goes once more to the next one. That retry is
//   safe: if the first broker did hand out an id whose answer was lost, the id is merely never
//   used (ids are 64-bit and come in blocks). No broker answering: COORDINATOR_LOAD_IN_PROGRESS
//   (what Kafka answers while it has no id block; retriable). Not COORDINATOR_NOT_AVAILABLE:
//   the Java producer answers that error by looking up the request's coordinator, which an
//   idempotent producer does not have.
// - a transactional id the client may not WRITE (IAuthorizer): TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
//   as Kafka's KafkaApis (Kafka's check of a null id, IDEMPOTENT_WRITE on the cluster or WRITE on
//   any topic, needs an authorizer that can answer "any topic": not done yet).
// - transactional_id "": INVALID_REQUEST (Kafka's TransactionCoordinator).
// - otherwise: the transactional id's coordinator (leader of its __transaction_state partition);
//   none, or unreachable: COORDINATOR_NOT_AVAILABLE, so the client finds the coordinator again
//   (FindCoordinator key type 1 creates the topic). A broker that no longer coordinates the id
//   answers NOT_COORDINATOR itself. Never retried by the gateway (it would bump the epoch twice).
// Sequential: a transactional client's requests take effect in the order it sent them.
public sealed class InitProducerIdApi(CoordinatorRouter router, IAuthorizer authorizer) : ApiHandler<InitProducerIdRequest>
{
    /// <summary>Deadline of a coordinator call (plus the broker call margin).</summary>
    public const int CallWaitMs = CoordinatorRouter.PlainCallWaitMs;

    private static readonly KafkaBodyCall<TxnClient> Call = static (c, r, o) => c.InitProducerIdAsync(r, o);

    private int _next;

    public override ApiKey Key => ApiKey.InitProducerId;
    public override short MinVersion => 0;
    public override short MaxVersion => InitProducerIdRequest.HighestSupportedVersion;
    public override bool Sequential => true;

    protected override async Task<IKafkaResponse?> HandleAsync(InitProducerIdRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var metadata = router.Watcher.Current;
        if (request.TransactionalId is null)
        {
            foreach (var broker in AnyBrokerOrder(metadata, Interlocked.Increment(ref _next)))
            {
                var answer = await router.ForwardAsync<TxnClient, InitProducerIdResponse>(broker, TransactionCoordinatorClient.Create, Call, request, context, CallWaitMs, cancellationToken)
                    .ConfigureAwait(false);
                if (answer is not null) return answer;
                if (cancellationToken.IsCancellationRequested) break;
            }
            return Error(ErrorCode.CoordinatorLoadInProgress);
        }
        if (!authorizer.Authorize(context, AclOperation.Write, AclResourceType.TransactionalId, request.TransactionalId))
            return Error(ErrorCode.TransactionalIdAuthorizationFailed);
        if (request.TransactionalId.Length == 0) return Error(ErrorCode.InvalidRequest);
        var (error, coordinator) = router.Coordinator(metadata, CoordinatorKind.Transaction, request.TransactionalId);
        if (coordinator is null) return Error(error);
        var response = await router.ForwardAsync<TxnClient, InitProducerIdResponse>(coordinator, TransactionCoordinatorClient.Create, Call, request, context, CallWaitMs, cancellationToken)
            .ConfigureAwait(false);
        return response ?? Error(ErrorCode.CoordinatorNotAvailable);
    }

    /// <summary>
    /// The brokers a null-transactional-id request is tried on: the live broker at
    /// <paramref name="turn"/> in broker id order, then the next one (at most two: one retry).
    /// Empty when no broker is live.
    /// </summary>
    internal static IReadOnlyList<BrokerInfo> AnyBrokerOrder(ClusterMetadata metadata, int turn)
    {
        var live = metadata.Snapshot.Brokers.Where(b => !b.Fenced).OrderBy(b => b.BrokerId).ToList();
        if (live.Count == 0) return [];
        var first = (int)((uint)turn % (uint)live.Count);
        return live.Count == 1 ? [live[first]] : [live[first], live[(first + 1) % live.Count]];
    }

    private static InitProducerIdResponse Error(ErrorCode error) => new() { ErrorCode = (short)error, ProducerId = -1, ProducerEpoch = -1 };
}
