using Grpc.Core;
using StreamPlatform.Gateway.Apis;
using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Security;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using TxnClient = StreamPlatform.Protos.Grpc.Transactions.TransactionCoordinatorService.TransactionCoordinatorServiceClient;

namespace StreamPlatform.Gateway.Transactions;

/// <summary>
/// A transaction API whose request names one transactional id: forwarded as it is to the id's
/// transaction coordinator (<see cref="SingleCoordinatorApi{TRequest, TResponse, TClient}"/> over
/// TransactionCoordinatorService). An empty id: INVALID_REQUEST, as Kafka's TransactionCoordinator.
/// Never retried by the gateway: a lost answer is the client's to retry, as with Kafka. The
/// client must be allowed to WRITE the transactional id (IAuthorizer), else
/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as Kafka's KafkaApis answers.
/// </summary>
public abstract class SingleTransactionApi<TRequest, TResponse>(CoordinatorRouter router, IAuthorizer authorizer)
    : SingleCoordinatorApi<TRequest, TResponse, TxnClient>(router, CoordinatorKind.Transaction)
    where TRequest : class, IKafkaRequest, new()
    where TResponse : class, IKafkaResponse, new()
{
    protected sealed override Func<CallInvoker, TxnClient> CreateClient => TransactionCoordinatorClient.Create;

    protected IAuthorizer Authorizer => authorizer;

    protected override ErrorCode Authorize(TRequest request, RequestContext context)
        => authorizer.Authorize(context, AclOperation.Write, AclResourceType.TransactionalId, KeyOf(request) ?? "")
            ? ErrorCode.None
            : ErrorCode.TransactionalIdAuthorizationFailed;

    /// <summary>Transaction requests take effect in the order the client sent them, as on a Kafka broker.</summary>
    public override bool Sequential => true;
}
