using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Security;
using StreamPlatform.Gateway.Transactions;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using TxnClient = StreamPlatform.Protos.Grpc.Transactions.TransactionCoordinatorService.TransactionCoordinatorServiceClient;

namespace StreamPlatform.Gateway.Apis;

// AddPartitionsToTxn v0-5, advertised as Kafka 4.x advertises it (0-5); clients send v0-3 (the
// Java client caps itself at 3), v4+ is Kafka's broker-to-coordinator batch form (KIP-890:
// verify_only, several transactions per request).
// - v0-3: checked as Kafka's KafkaApis checks them (no WRITE on the transactional id:
//   TRANSACTIONAL_ID_AUTHORIZATION_FAILED on every partition; a topic without WRITE, or internal:
//   TOPIC_AUTHORIZATION_FAILED, a partition not in the metadata: UNKNOWN_TOPIC_OR_PARTITION, the
//   others OPERATION_NOT_ATTEMPTED), then forwarded as it is to the transactional id's coordinator
//   (TransactionCoordinatorService.AddPartitionsToTxn); no coordinator, or unreachable:
//   COORDINATOR_NOT_AVAILABLE on every partition; an empty transactional id: INVALID_REQUEST.
// - v4+: as Kafka's KafkaApis, the sender needs CLUSTER_ACTION on the cluster (IAuthorizer);
//   refused: the whole request answers CLUSTER_AUTHORIZATION_FAILED (top-level error_code, no
//   results). Allowed (Kafka without an authorizer allows it too): the transactions are split by
//   coordinator, one call per coordinator in parallel (same version), and the results merged in
//   request order; a transaction whose coordinator is missing or unreachable gets
//   COORDINATOR_NOT_AVAILABLE on its partitions, an empty id INVALID_REQUEST, and a broker's
//   top-level error is put on each of its transactions' partitions.
// Sequential: a client's transaction requests take effect in the order sent.
public sealed class AddPartitionsToTxnApi(CoordinatorRouter router, IAuthorizer authorizer)
    : SingleTransactionApi<AddPartitionsToTxnRequest, AddPartitionsToTxnResponse>(router, authorizer)
{
    /// <summary>The first version sent by brokers only (Kafka's AddPartitionsToTxnRequest.EARLIEST_BROKER_VERSION).</summary>
    public const short FirstBrokerVersion = 4;

    public override ApiKey Key => ApiKey.AddPartitionsToTxn;
    public override short MinVersion => 0;
    public override short MaxVersion => AddPartitionsToTxnRequest.HighestSupportedVersion;

    protected override string? KeyOf(AddPartitionsToTxnRequest request) => request.V3AndBelowTransactionalId;

    protected override KafkaBodyCall<TxnClient> BodyCall => static (c, r, o) => c.AddPartitionsToTxnAsync(r, o);

    protected override AddPartitionsToTxnResponse ErrorResponse(AddPartitionsToTxnRequest request, short version, ErrorCode error)
    {
        var response = new AddPartitionsToTxnResponse();
        if (version >= FirstBrokerVersion) response.ErrorCode = (short)error;
        else response.ResultsByTopicV3AndBelow.AddRange(TopicErrors(request.V3AndBelowTopics, error));
        return response;
    }

    private static IEnumerable<AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult> TopicErrors(
        List<AddPartitionsToTxnRequest.AddPartitionsToTxnTopic> topics, ErrorCode error)
        => topics.Select(t => new AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult
        {
            Name = t.Name,
            ResultsByPartition = t.Partitions.Select(p => new AddPartitionsToTxnResponse.AddPartitionsToTxnPartitionResult
            {
                PartitionIndex = p, PartitionErrorCode = (short)error,
            }).ToList(),
        });

    /// <summary>
    /// Kafka's checks of a client's partitions before the coordinator sees them: a topic the
    /// client may not WRITE, or an internal one, is TOPIC_AUTHORIZATION_FAILED; a partition not
    /// in the metadata is UNKNOWN_TOPIC_OR_PARTITION; when any partition fails, the others answer
    /// OPERATION_NOT_ATTEMPTED and nothing is added. Null when every partition may be added.
    /// </summary>
    private AddPartitionsToTxnResponse? ClientPartitionErrors(AddPartitionsToTxnRequest request, RequestContext context)
    {
        var metadata = Router.Watcher.Current;
        var response = new AddPartitionsToTxnResponse();
        var failed = false;
        foreach (var topic in request.V3AndBelowTopics)
        {
            var authorized = !Protos.Groups.InternalTopics.IsInternal(topic.Name)
                && Authorizer.Authorize(context, AclOperation.Write, AclResourceType.Topic, topic.Name);
            var result = new AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult { Name = topic.Name };
            foreach (var partition in topic.Partitions)
            {
                var error = !authorized ? ErrorCode.TopicAuthorizationFailed
                    : metadata.TryGetPartition(topic.Name, partition, out _, out _) ? ErrorCode.OperationNotAttempted
                    : ErrorCode.UnknownTopicOrPartition;
                failed |= error != ErrorCode.OperationNotAttempted;
                result.ResultsByPartition.Add(new AddPartitionsToTxnResponse.AddPartitionsToTxnPartitionResult { PartitionIndex = partition, PartitionErrorCode = (short)error });
            }
            response.ResultsByTopicV3AndBelow.Add(result);
        }
        return failed ? response : null;
    }

    private static AddPartitionsToTxnResponse.AddPartitionsToTxnResult TransactionError(AddPartitionsToTxnRequest.AddPartitionsToTxnTransaction transaction, ErrorCode error)
        => new() { TransactionalId = transaction.TransactionalId, TopicResults = TopicErrors(transaction.Topics, error).ToList() };

    protected override async Task<IKafkaResponse?> HandleAsync(AddPartitionsToTxnRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        if (context.ApiVersion < FirstBrokerVersion)
        {
            // Kafka's order: the transactional id first (the whole transaction), then its topics.
            var denied = Authorize(request, context);
            if (denied != ErrorCode.None) return ErrorResponse(request, context.ApiVersion, denied);
            return ClientPartitionErrors(request, context) ?? await base.HandleAsync(request, context, cancellationToken).ConfigureAwait(false);
        }
        if (!Authorizer.Authorize(context, AclOperation.ClusterAction, AclResourceType.Cluster, AuthorizedOperations.ClusterName))
            return ErrorResponse(request, context.ApiVersion, ErrorCode.ClusterAuthorizationFailed);

        var metadata = Router.Watcher.Current;
        var merged = new AddPartitionsToTxnResponse();
        var byBroker = new Dictionary<int, (BrokerInfo Broker, AddPartitionsToTxnRequest Request, List<int> Slots)>();
        for (var i = 0; i < request.Transactions.Count; i++)
        {
            var transaction = request.Transactions[i];
            var (error, broker) = transaction.TransactionalId.Length == 0
                ? (ErrorCode.InvalidRequest, null)
                : Router.Coordinator(metadata, CoordinatorKind.Transaction, transaction.TransactionalId);
            merged.ResultsByTransaction.Add(TransactionError(transaction, error));
            if (broker is null) continue;
            if (!byBroker.TryGetValue(broker.BrokerId, out var entry))
                byBroker[broker.BrokerId] = entry = (broker, new AddPartitionsToTxnRequest(), []);
            entry.Request.Transactions.Add(transaction);
            entry.Slots.Add(i);
        }
        await Task.WhenAll(byBroker.Values.Select(async entry =>
        {
            var answer = await Router.ForwardAsync<TxnClient, AddPartitionsToTxnResponse>(entry.Broker, TransactionCoordinatorClient.Create, BodyCall, entry.Request, context,
                CoordinatorRouter.PlainCallWaitMs, cancellationToken).ConfigureAwait(false);
            var byId = new Dictionary<string, AddPartitionsToTxnResponse.AddPartitionsToTxnResult>(StringComparer.Ordinal);
            if (answer is { ErrorCode: 0 })
                foreach (var result in answer.ResultsByTransaction) byId[result.TransactionalId] = result;
            var failure = answer is null ? ErrorCode.CoordinatorNotAvailable : (ErrorCode)answer.ErrorCode;
            foreach (var slot in entry.Slots)
            {
                var transaction = request.Transactions[slot];
                // A transaction the coordinator left out of its answer was not handled: COORDINATOR_NOT_AVAILABLE, so it is asked again.
                merged.ResultsByTransaction[slot] = byId.TryGetValue(transaction.TransactionalId, out var result) ? result
                    : TransactionError(transaction, failure == ErrorCode.None ? ErrorCode.CoordinatorNotAvailable : failure);
            }
        })).ConfigureAwait(false);
        return merged;
    }
}
