using Grpc.Core;
using TxnClient = StreamPlatform.Protos.Grpc.Transactions.TransactionCoordinatorService.TransactionCoordinatorServiceClient;

namespace StreamPlatform.Gateway.Transactions;

/// <summary>The TransactionCoordinatorService client the transaction APIs forward on (CoordinatorRouter makes one per broker channel).</summary>
public static class TransactionCoordinatorClient
{
    public static readonly Func<CallInvoker, TxnClient> Create = static i => new(i);
}
