using Google.Protobuf;
using Grpc.Core;
using StreamPlatform.Broker.Groups;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Grpc.Broker;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Groups;
using StreamPlatform.Protos.Kafka.Messages;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Transactions;

/// <summary>
/// Completes a transaction whose PrepareCommit/PrepareAbort is written (Kafka's
/// TransactionMarkerChannelManager): sends WriteTxnMarkers to the leader of every partition of
/// the transaction (BrokerService.WriteTxnMarkers, the Kafka body), removes each partition
/// whose marker is written, retries the others with the newest metadata's leaders (backoff
/// <see cref="BackoffMin"/> doubling to <see cref="BackoffMax"/>) until none is left, then
/// writes CompleteCommit/CompleteAbort. A partition whose topic is gone is dropped (its
/// producer could not have written there either). It stops when this broker stops
/// coordinating the id at that coordinator epoch (leadership moved: the new coordinator loads
/// the Prepare state and sends the markers again), or when a leader answers that the producer
/// or the coordinator was fenced.
/// </summary>
public sealed class TransactionMarkerSender(
    TransactionStateManager states,
    Func<ClusterMetadata> metadata,
    Func<string, CallInvoker> brokers,
    TimeProvider time,
    ILogger<TransactionMarkerSender> logger)
{
    public static readonly TimeSpan BackoffMin = TimeSpan.FromMilliseconds(50);
    public static readonly TimeSpan BackoffMax = TimeSpan.FromSeconds(2);
    /// <summary>WriteTxnMarkers version sent (1: flexible).</summary>
    public const short WriteTxnMarkersVersion = 1;

    private int _inFlight;

    /// <summary>Transactions whose markers are being sent now.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>
    /// Starts completing the transaction: markers with the producer id and epoch it has now (the
    /// prepare is applied), then <paramref name="complete"/> is written.
    /// </summary>
    public Task SendAsync(int coordinatorEpoch, TransactionMetadata txn, TxnTransit complete)
    {
        long producerId;
        short producerEpoch;
        bool commit;
        lock (txn.Gate)
        {
            producerId = txn.ProducerId;
            producerEpoch = txn.ProducerEpoch;
            commit = txn.State == TransactionState.PrepareCommit;
        }
        Interlocked.Increment(ref _inFlight);
        return Task.Run(async () =>
        {
            try
            {
                await RunAsync(coordinatorEpoch, txn, complete, producerId, producerEpoch, commit).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // a background completion must never end silently: the next load or request retries it
            catch (Exception ex)
#pragma warning restore CA1031
            {
                logger.LogError(ex, "Completing the transaction of {Id} failed; the next coordinator load completes it", txn.TransactionalId);
            }
            finally
            {
                Interlocked.Decrement(ref _inFlight);
            }
        });
    }

    /// <summary>True while this broker still coordinates the id at <paramref name="coordinatorEpoch"/> with this metadata.</summary>
    private bool StillOwner(int coordinatorEpoch, TransactionMetadata txn)
        => states.TryGet(txn.TransactionalId, out var shard, out var current) == ErrorCodes.None
            && shard!.CoordinatorEpoch == coordinatorEpoch && ReferenceEquals(current, txn);

    private async Task RunAsync(int coordinatorEpoch, TransactionMetadata txn, TxnTransit complete, long producerId, short producerEpoch, bool commit)
    {
        var backoff = BackoffMin;
        while (true)
        {
            if (!StillOwner(coordinatorEpoch, txn))
            {
                logger.LogInformation("No longer the coordinator of {Id} at epoch {Epoch}: markers left to the new coordinator", txn.TransactionalId, coordinatorEpoch);
                return;
            }
            List<TopicPartition> remaining;
            lock (txn.Gate) remaining = [.. txn.Partitions];
            if (remaining.Count > 0)
            {
                var outcome = await SendRoundAsync(coordinatorEpoch, txn, remaining, producerId, producerEpoch, commit).ConfigureAwait(false);
                if (outcome == RoundOutcome.Fenced) return;
                if (outcome == RoundOutcome.Retry)
                {
                    await Task.Delay(backoff, time).ConfigureAwait(false);
                    backoff = Next(backoff);
                    continue;
                }
            }
            // Every marker is written: the transaction is complete. Kept pending on
            // COORDINATOR_NOT_AVAILABLE (not enough replicas, timed out) and written again.
            var error = await states.AppendAsync(txn.TransactionalId, coordinatorEpoch, complete, e => e == ErrorCodes.CoordinatorNotAvailable).ConfigureAwait(false);
            if (error == ErrorCodes.None)
            {
                logger.LogDebug("Transaction of {Id} (producer {ProducerId} epoch {Epoch}) completed: {State}", txn.TransactionalId, producerId, producerEpoch, complete.State);
                return;
            }
            if (error != ErrorCodes.CoordinatorNotAvailable)
            {
                logger.LogInformation("Writing {State} for {Id} failed with error {Error}: left to the next coordinator", complete.State, txn.TransactionalId, error);
                return;
            }
            await Task.Delay(backoff, time).ConfigureAwait(false);
            backoff = Next(backoff);
        }
    }

    private enum RoundOutcome { Done, Retry, Fenced }

    /// <summary>One marker request per leader of the remaining partitions, in parallel; partitions written are removed from the transaction.</summary>
    private async Task<RoundOutcome> SendRoundAsync(int coordinatorEpoch, TransactionMetadata txn, List<TopicPartition> remaining, long producerId, short producerEpoch, bool commit)
    {
        var cluster = metadata();
        var byLeader = new Dictionary<int, List<TopicPartition>>();
        var retry = false;
        foreach (var tp in remaining)
        {
            if (!cluster.TopicsByName.TryGetValue(tp.Topic, out var topic) || tp.Partition >= topic.Partitions.Count)
            {
                // Deleted: nothing to mark (Kafka skips partitions without a leader endpoint the same way).
                logger.LogInformation("Partition {Partition} of the transaction of {Id} no longer exists: no marker sent", tp, txn.TransactionalId);
                lock (txn.Gate) txn.RemovePartition(tp);
                continue;
            }
            var leader = topic.Partitions[tp.Partition].Leader;
            if (leader < 0 || !cluster.BrokersById.TryGetValue(leader, out var broker) || broker.Fenced || string.IsNullOrEmpty(broker.GrpcEndpoint))
            {
                retry = true; // no live leader now: tried again with newer metadata
                continue;
            }
            if (!byLeader.TryGetValue(leader, out var list)) byLeader[leader] = list = [];
            list.Add(tp);
        }
        var sends = byLeader.Select(kv => SendToLeaderAsync(cluster.BrokersById[kv.Key], kv.Value, coordinatorEpoch, txn, producerId, producerEpoch, commit)).ToList();
        var outcomes = await Task.WhenAll(sends).ConfigureAwait(false);
        if (outcomes.Contains(RoundOutcome.Fenced)) return RoundOutcome.Fenced;
        return retry || outcomes.Contains(RoundOutcome.Retry) ? RoundOutcome.Retry : RoundOutcome.Done;
    }

    private async Task<RoundOutcome> SendToLeaderAsync(Protos.Grpc.BrokerInfo leader, List<TopicPartition> partitions, int coordinatorEpoch, TransactionMetadata txn,
        long producerId, short producerEpoch, bool commit)
    {
        var marker = new WriteTxnMarkersRequest.WritableTxnMarker
        {
            ProducerId = producerId, ProducerEpoch = producerEpoch, TransactionResult = commit, CoordinatorEpoch = coordinatorEpoch,
        };
        foreach (var g in partitions.GroupBy(p => p.Topic, StringComparer.Ordinal))
            marker.Topics.Add(new WriteTxnMarkersRequest.WritableTxnMarkerTopic { Name = g.Key, PartitionIndexes = [.. g.Select(p => p.Partition)] });
        var request = new WriteTxnMarkersRequest { Markers = [marker] };
        WriteTxnMarkersResponse response;
        try
        {
            var client = new BrokerService.BrokerServiceClient(brokers(leader.GrpcEndpoint));
            var reply = await client.WriteTxnMarkersAsync(Encode(request), deadline: DateTime.UtcNow.AddMilliseconds(states.Config.WriteTimeoutMs)).ConfigureAwait(false);
            response = Decode(reply);
        }
        catch (RpcException ex)
        {
            logger.LogInformation("WriteTxnMarkers to broker {Broker} for {Id} failed ({Status}: {Detail}); retrying", leader.BrokerId, txn.TransactionalId, ex.StatusCode, ex.Status.Detail);
            return RoundOutcome.Retry;
        }
        catch (Protos.Kafka.KafkaProtocolException ex)
        {
            logger.LogWarning("WriteTxnMarkers answer of broker {Broker} for {Id} does not decode ({Message}); retrying", leader.BrokerId, txn.TransactionalId, ex.Message);
            return RoundOutcome.Retry;
        }
        var outcome = RoundOutcome.Done;
        var answered = 0;
        foreach (var result in response.Markers.Where(m => m.ProducerId == producerId))
            foreach (var topic in result.Topics)
                foreach (var p in topic.Partitions)
                {
                    var tp = new TopicPartition(topic.Name, p.PartitionIndex);
                    if (!partitions.Contains(tp)) continue;
                    answered++;
                    switch (p.ErrorCode)
                    {
                        case ErrorCodes.None:
                        case ErrorCodes.UnsupportedForMessageFormat or ErrorCodes.UnsupportedVersion:
                            lock (txn.Gate) if (StillOwner(coordinatorEpoch, txn)) txn.RemovePartition(tp);
                            break;
                        case ErrorCodes.InvalidProducerEpoch or ErrorCodes.TransactionCoordinatorFenced:
                            // A newer producer epoch or coordinator took over: this completion is obsolete.
                            logger.LogInformation("Marker for {Partition} of {Id} refused with error {Error}: sending stopped", tp, txn.TransactionalId, p.ErrorCode);
                            outcome = RoundOutcome.Fenced;
                            break;
                        default:
                            // NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, NOT_ENOUGH_REPLICAS*, REQUEST_TIMED_OUT,
                            // KAFKA_STORAGE_ERROR: retried with the newest leader. Anything else is unexpected, logged, and retried too.
                            if (p.ErrorCode is not (ErrorCodes.NotLeaderOrFollower or ErrorCodes.UnknownTopicOrPartition or ErrorCodes.NotEnoughReplicas
                                or ErrorCodes.NotEnoughReplicasAfterAppend or ErrorCodes.RequestTimedOut or ErrorCodes.KafkaStorageError))
                                logger.LogWarning("Marker for {Partition} of {Id} failed with unexpected error {Error}; retrying", tp, txn.TransactionalId, p.ErrorCode);
                            if (outcome == RoundOutcome.Done) outcome = RoundOutcome.Retry;
                            break;
                    }
                }
        return answered < partitions.Count && outcome == RoundOutcome.Done ? RoundOutcome.Retry : outcome;
    }

    private static KafkaGroupRequest Encode(WriteTxnMarkersRequest request)
    {
        var bytes = new byte[request.ComputeSize(WriteTxnMarkersVersion)];
        var writer = new Protos.Kafka.KafkaWriter(bytes);
        request.Write(ref writer, WriteTxnMarkersVersion);
        return new KafkaGroupRequest { ApiVersion = WriteTxnMarkersVersion, Body = UnsafeByteOperations.UnsafeWrap(bytes) };
    }

    private static WriteTxnMarkersResponse Decode(KafkaGroupResponse reply)
    {
        var response = new WriteTxnMarkersResponse();
        var reader = new Protos.Kafka.KafkaReader(reply.Body.Memory);
        response.Read(ref reader, WriteTxnMarkersVersion);
        return response;
    }

    private static TimeSpan Next(TimeSpan backoff) => TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, BackoffMax.Ticks));
}
