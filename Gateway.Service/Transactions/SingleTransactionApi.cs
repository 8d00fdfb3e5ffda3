using Grpc.Core;
using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using TxnClient = StreamPlatform.Protos.Grpc.Transactions.TransactionCoordinatorService.TransactionCoordinatorServiceClient;

namespace StreamPlatform.Gateway.Transactions;

/// <summary>
/// A transaction API whose request names one transactional id: forwarded as it is to the id's
/// transaction coordinator (<see cref="SingleCoordinatorApi{TRequest, TResponse, TClient}"/> over
/// TransactionCoordinatorService). An empty id: INVALID_REQUEST, as Kafka's TransactionCoordinator.
/// Never retried by the gateway: a lost answer is the client's to retry, as with Kafka.
/// </summary>
public abstract class SingleTransactionApi<TRequest, TResponse>(CoordinatorRouter router)
    : SingleCoordinatorApi<TRequest, TResponse, TxnClient>(router, CoordinatorKind.Transaction)
    where TRequest : class, IKafkaRequest, new()
    where TResponse : class, IKafkaResponse, new()
{
    protected sealed override Func<CallInvoker, TxnClient> CreateClient => TransactionCoordinatorClient.Create;

    /// <summary>Transaction requests take effect in the order the client sent them, as on a Kafka broker.</summary>
    public override bool Sequential => true;
}
