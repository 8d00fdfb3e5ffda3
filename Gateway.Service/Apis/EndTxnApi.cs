using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Security;
using StreamPlatform.Gateway.Transactions;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using TxnClient = StreamPlatform.Protos.Grpc.Transactions.TransactionCoordinatorService.TransactionCoordinatorServiceClient;

namespace StreamPlatform.Gateway.Apis;

// EndTxn v0-4, as Kafka of our protocol definitions advertises it: their v5 (transaction version 2,
// KIP-890 part 2: the coordinator bumps the epoch on every commit or abort and answers with the
// new producer id and epoch) is marked latestVersionUnstable, and Produce v12, which a version 2
// client needs too, is not defined yet. The coordinator implements version 2 already (tested with
// v5 bodies); advertising it is this one line once the definitions make v5 stable.
// Forwarded as it is to the transactional id's coordinator (TransactionCoordinatorService.EndTxn),
// which answers once the outcome is logged (the markers are written to the partitions after).
// No coordinator, or unreachable: COORDINATOR_NOT_AVAILABLE (the client finds it again and
// retries; the coordinator answers a repeated EndTxn of the same outcome as Kafka does); an empty
// transactional id: INVALID_REQUEST; no WRITE on the transactional id (IAuthorizer):
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED. Error answers carry producer id/epoch -1. Sequential: an
// EndTxn starts only after the connection's earlier produce requests have completed.
public sealed class EndTxnApi(CoordinatorRouter router, IAuthorizer authorizer) : SingleTransactionApi<EndTxnRequest, EndTxnResponse>(router, authorizer)
{
    public override ApiKey Key => ApiKey.EndTxn;
    public override short MinVersion => 0;
    public override short MaxVersion => KafkaApis.HighestStableVersion(ApiKey.EndTxn);

    protected override string? KeyOf(EndTxnRequest request) => request.TransactionalId;

    protected override KafkaBodyCall<TxnClient> BodyCall => static (c, r, o) => c.EndTxnAsync(r, o);

    protected override EndTxnResponse ErrorResponse(EndTxnRequest request, short version, ErrorCode error)
        => new() { ErrorCode = (short)error, ProducerId = -1, ProducerEpoch = -1 };
}
