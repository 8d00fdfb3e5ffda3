using Google.Protobuf;
using Grpc.Core;
using StreamPlatform.Broker.Services;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Groups;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Groups;
using StreamPlatform.Protos.Grpc.Transactions;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Transactions;

/// <summary>
/// <see cref="ITransactionVerifier"/> (Kafka's AddPartitionsToTxnManager): asks the
/// transactional id's coordinator, the leader of its __transaction_state partition, with the
/// broker form of AddPartitionsToTxn (v5, one transaction, verify_only = !addPartition) —
/// directly when this broker is the coordinator, else over the broker's channel to it
/// (<see cref="BrokerChannels"/>). As Kafka's AddPartitionsToTxnManager, PRODUCER_FENCED becomes
/// INVALID_PRODUCER_EPOCH and a partition not in the transaction (TRANSACTION_ABORTABLE)
/// INVALID_TXN_STATE; the retriable coordinator errors (COORDINATOR_NOT_AVAILABLE when no
/// coordinator is known, COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR, CONCURRENT_TRANSACTIONS,
/// NETWORK_EXCEPTION when the call failed) are returned as they are: the caller's produce path
/// turns them into NOT_ENOUGH_REPLICAS, as Kafka's ReplicaManager.
/// </summary>
public sealed class TransactionVerifier(
    TransactionCoordinator coordinator,
    Func<ClusterMetadata> metadata,
    Func<string, CallInvoker> brokers,
    int brokerId,
    int callTimeoutMs,
    ILogger<TransactionVerifier> logger) : ITransactionVerifier
{
    /// <summary>AddPartitionsToTxn version brokers send (5: TRANSACTION_ABORTABLE is known).</summary>
    public const short AddPartitionsVersion = 5;

    public async ValueTask<short> VerifyAsync(string transactionalId, long producerId, short producerEpoch, TopicPartition partition, bool addPartition, CancellationToken cancellationToken)
    {
        var cluster = metadata();
        if (!cluster.TopicsByName.TryGetValue(TransactionStateTopic.Name, out var topic) || topic.Partitions.Count == 0)
            return ProducerError(ErrorCodes.CoordinatorNotAvailable);
        var leader = topic.Partitions[TransactionStateTopic.PartitionFor(transactionalId, topic.Partitions.Count)].Leader;
        short error;
        if (leader == brokerId)
        {
            error = addPartition
                ? await coordinator.AddAsync(transactionalId, producerId, producerEpoch, [partition], clientTransactionVersion: 2).ConfigureAwait(false)
                : coordinator.Verify(transactionalId, producerId, producerEpoch, [partition])[0].Error;
        }
        else if (leader >= 0 && cluster.BrokersById.TryGetValue(leader, out var broker) && !broker.Fenced && broker.GrpcEndpoint.Length > 0)
        {
            error = await AskAsync(broker.GrpcEndpoint, transactionalId, producerId, producerEpoch, partition, addPartition, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            error = ErrorCodes.CoordinatorNotAvailable;
        }
        return ProducerError(error);
    }

    private async Task<short> AskAsync(string endpoint, string transactionalId, long producerId, short producerEpoch, TopicPartition partition, bool addPartition,
        CancellationToken cancellationToken)
    {
        var request = new AddPartitionsToTxnRequest
        {
            Transactions =
            [
                new AddPartitionsToTxnRequest.AddPartitionsToTxnTransaction
                {
                    TransactionalId = transactionalId, ProducerId = producerId, ProducerEpoch = producerEpoch, VerifyOnly = !addPartition,
                    Topics = [new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = partition.Topic, Partitions = [partition.Partition] }],
                },
            ],
        };
        var bytes = new byte[request.ComputeSize(AddPartitionsVersion)];
        var writer = new KafkaWriter(bytes);
        request.Write(ref writer, AddPartitionsVersion);
        try
        {
            var client = new TransactionCoordinatorService.TransactionCoordinatorServiceClient(brokers(endpoint));
            var reply = await client.AddPartitionsToTxnAsync(new KafkaGroupRequest { ApiVersion = AddPartitionsVersion, Body = UnsafeByteOperations.UnsafeWrap(bytes) },
                deadline: DateTime.UtcNow.AddMilliseconds(callTimeoutMs), cancellationToken: cancellationToken).ConfigureAwait(false);
            var response = new AddPartitionsToTxnResponse();
            var reader = new KafkaReader(reply.Body.Memory);
            response.Read(ref reader, AddPartitionsVersion);
            if (response.ErrorCode != ErrorCodes.None) return response.ErrorCode;
            var result = response.ResultsByTransaction.SelectMany(t => t.TopicResults).Where(t => t.Name == partition.Topic)
                .SelectMany(t => t.ResultsByPartition).FirstOrDefault(p => p.PartitionIndex == partition.Partition);
            return result?.PartitionErrorCode ?? ErrorCodes.UnknownServerError;
        }
        catch (RpcException ex) when (ex.StatusCode != StatusCode.Cancelled || !cancellationToken.IsCancellationRequested)
        {
            logger.LogInformation("AddPartitionsToTxn for {Id} at {Endpoint} failed ({Status}: {Detail})", transactionalId, endpoint, ex.StatusCode, ex.Status.Detail);
            return ErrorCodes.NetworkException;
        }
        catch (KafkaProtocolException ex)
        {
            logger.LogWarning("AddPartitionsToTxn answer for {Id} from {Endpoint} does not decode: {Message}", transactionalId, endpoint, ex.Message);
            return ErrorCodes.UnknownServerError;
        }
    }

    /// <summary>The coordinator's answer as Kafka's AddPartitionsToTxnManager hands it to the produce path.</summary>
    public static short ProducerError(short coordinatorError) => coordinatorError switch
    {
        ErrorCodes.ProducerFenced => ErrorCodes.InvalidProducerEpoch,
        ErrorCodes.TransactionAbortable => ErrorCodes.InvalidTxnState,
        _ => coordinatorError,
    };
}
