using Google.Protobuf;
using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Gateway.Security;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using Brk = StreamPlatform.Protos.Grpc.Broker;

namespace StreamPlatform.Gateway.Apis;

// Produce v3-v11 (MaxServedVersion; the codec's highest is 11): v3 is the first with magic-2
// record batches, the only format StreamPlatform stores. Partitions are grouped by the broker
// that leads them and sent as one gRPC Produce per broker, all brokers in parallel; results are
// mapped back in request order. The requests go on each broker's long-lived produce stream
// (Routing/BrokerProduceStream), which keeps the order they were enqueued in; the connection's
// next produce starts as soon as this one is enqueued (OrderedAtDispatch), not when it is
// answered, so a pipelining client's requests overlap. Each broker request carries the client's
// api_version and transactional_id (the leader checks a transaction's first batch on a partition
// with its coordinator, KIP-890). Unknown topic or partition out of range:
// UNKNOWN_TOPIC_OR_PARTITION (3), after auto-creating missing topics when
// auto.create.topics.enable is true. No live leader or the broker unreachable:
// NOT_LEADER_OR_FOLLOWER (6) so the client refreshes metadata and retries. The gateway resends a
// partition to its new leader itself only when every batch of it is idempotent (producer id and
// sequence set: the new leader's producer state de-duplicates; Routing/IdempotentProduceRetry),
// once, when its metadata shows a newer leader within LeaderChangeWaitMs (capped by timeout_ms),
// and after the connection's previous produce enqueued its own resends (per-partition order);
// never any other batch (it could be duplicated). A gRPC deadline
// (timeout_ms + margin) passing: REQUEST_TIMED_OUT (7). A broker's share of the request above the
// gRPC message limit (64 MiB): MESSAGE_TOO_LARGE (10). Batch size limits (MESSAGE_TOO_LARGE)
// and record validation are the broker's. Internal topics (__consumer_offsets, __transaction_state,
// __share_group_state) are refused by the broker with INVALID_TOPIC_EXCEPTION (17) "Cannot append to
// internal topic", passed on as is, and never auto-created here (their coordinators create them).
// acks must be 0, 1 or -1 (else INVALID_REQUIRED_ACKS 21);
// acks=0 gets no response at all (but is ordered the same way). Transactional records (the first
// batch of any partition has the transactional bit, Kafka's RequestUtils.hasTransactionalRecords)
// in a request without a transactional id, or whose transactional id the client may not WRITE
// (IAuthorizer): TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53) for the whole request, as Kafka's
// KafkaApis answers. Records refused by the broker's validation come back with
// error_message and (v8+) record_errors naming each refused record, as Kafka's
// RecordValidationException. Produce is Sequential and OrderedAtDispatch per connection (see IApiHandler).
public sealed class ProduceApi(
    TopicAdmin admin,
    BrokerClientPool brokers,
    IOptions<GatewayOptions> options,
    IAuthorizer authorizer,
    ILogger<ProduceApi> logger) : ApiHandler<ProduceRequest>
{
    /// <summary>
    /// The highest Produce version served. 12 is transaction version 2 (KIP-890 part 2: the
    /// leader adds a transaction's partition implicitly, no AddPartitionsToTxn): switch it on
    /// here together with the cluster's transaction.version feature once the coordinator supports
    /// it, and with our protocol definitions' Produce v12 (the codec stops at 11 today).
    /// </summary>
    public const short MaxServedVersion = 11;

    public override ApiKey Key => ApiKey.Produce;
    public override short MinVersion => 3;
    public override short MaxVersion => Math.Min(MaxServedVersion, ProduceResponse.HighestSupportedVersion);
    public override bool Sequential => true;
    public override bool OrderedAtDispatch => true;

    protected override async Task<IKafkaResponse?> HandleAsync(ProduceRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        if (request.Acks is not (0 or 1 or -1))
            return request.Acks == 0 ? null : ErrorResponses.Build(request, context.ApiVersion, ErrorCode.InvalidRequiredAcks);
        if (HasTransactionalBatch(request) && (request.TransactionalId is null
                || !authorizer.Authorize(context, AclOperation.Write, AclResourceType.TransactionalId, request.TransactionalId)))
            return request.Acks == 0 ? null : ErrorResponses.Build(request, context.ApiVersion, ErrorCode.TransactionalIdAuthorizationFailed);

        var metadata = admin.Watcher.Current;
        if (TopicAdmin.AutoCreateEnabled(metadata))
        {
            var missing = request.TopicData.Select(t => t.Name)
                .Where(n => TopicNames.IsValid(n) && !metadata.TopicsByName.ContainsKey(n))
                .Distinct(StringComparer.Ordinal).ToList();
            if (missing.Count > 0)
            {
                await admin.AutoCreateAsync(missing, cancellationToken).ConfigureAwait(false);
                metadata = admin.Watcher.Current;
            }
        }

        var response = new ProduceResponse();
        // One stream request per leading broker (the record bytes are wrapped, not copied: see Forward).
        var fanOut = new LeaderFanOut<Brk.ProduceRequest, ProduceResponse.PartitionProduceResponse>(metadata,
            () => NewBrokerRequest(request, context), SetError);
        foreach (var topic in request.TopicData)
        {
            var topicResponse = new ProduceResponse.TopicProduceResponse { Name = topic.Name };
            response.Responses.Add(topicResponse);
            foreach (var p in topic.PartitionData)
            {
                var partitionResponse = new ProduceResponse.PartitionProduceResponse { Index = p.Index, BaseOffset = -1 };
                topicResponse.PartitionResponses.Add(partitionResponse);
                fanOut.Route(topic.Name, p.Index, partitionResponse)?.Partitions.Add(Forward(topic.Name, p.Index, p.Records ?? ReadOnlyMemory<byte>.Empty));
            }
        }

        var deadlineMs = DeadlineMs(request);
        // Enqueued broker by broker, in this order, before the connection's next produce may
        // enqueue anything (it waits for Dispatched): each broker stream appends in enqueue order,
        // so per-partition order is the connection's request order. No cancellation: once
        // enqueued, a request must be awaited anyway (its bytes are slices of the frame), and the
        // deadline bounds every wait.
        var sent = new List<(LeaderFanOut<Brk.ProduceRequest, ProduceResponse.PartitionProduceResponse>.Batch Batch, Task<BrokerProduceOutcome> Outcome)>(fanOut.Batches.Count);
        try
        {
            foreach (var batch in fanOut.Batches)
            {
                if (brokers.GetProduceStream(batch.Broker) is not { } stream)
                {
                    logger.LogWarning("Produce to broker {BrokerId}: unusable endpoint {Endpoint}", batch.Broker.BrokerId, batch.Broker.GrpcEndpoint);
                    batch.Fail(ErrorCode.NotLeaderOrFollower);
                    continue;
                }
                var pending = await stream.EnqueueAsync(batch.Request, deadlineMs).ConfigureAwait(false);
                sent.Add((batch, pending.Completion));
            }
            context.Dispatched();
        }
        finally
        {
            // Outcomes never fault. Every one is awaited before anything else can throw: until
            // then a stream may still read the frame this handler's caller returns to its pool.
            foreach (var (_, outcome) in sent) await outcome.ConfigureAwait(false);
        }

        ApplyOutcomes(sent);
        await ResendMovedAsync(request, response, metadata, context, cancellationToken).ConfigureAwait(false);
        return request.Acks == 0 ? null : response;
    }

    private long DeadlineMs(ProduceRequest request) => (long)Math.Max(request.TimeoutMs, 0) + options.Value.BrokerCallMarginMs;

    internal static Brk.ProduceRequest NewBrokerRequest(ProduceRequest request, RequestContext context) => new()
    {
        Acks = request.Acks, TimeoutMs = request.TimeoutMs, TransactionalId = request.TransactionalId ?? "", ApiVersion = context.ApiVersion,
    };

    /// <summary>
    /// One partition's share, wrapped, not copied: the bytes are slices of the pooled request
    /// frame, which KafkaConnection returns to the pool only after this handler has completed,
    /// and this handler awaits every request's Completion, which completes only once its stream
    /// no longer references the bytes.
    /// </summary>
    private static Brk.PartitionProduce Forward(string topic, int partition, ReadOnlyMemory<byte> records) => new()
    {
        Topic = topic, Partition = partition, Records = records.IsEmpty ? ByteString.Empty : UnsafeByteOperations.UnsafeWrap(records),
    };

    private static void SetError(ProduceResponse.PartitionProduceResponse target, ErrorCode error)
    {
        target.ErrorCode = (short)error;
        target.BaseOffset = -1;
    }

    private static void ApplyOutcomes(List<(LeaderFanOut<Brk.ProduceRequest, ProduceResponse.PartitionProduceResponse>.Batch Batch, Task<BrokerProduceOutcome> Outcome)> sent)
    {
        foreach (var (batch, outcomeTask) in sent)
        {
            var outcome = outcomeTask.Result;
            if (outcome.Response is { } answer) batch.Apply(answer.Results, r => (r.Topic, r.Partition), Apply);
            else batch.Fail(outcome.Error);
        }
    }

    /// <summary>
    /// The one resend of idempotent partitions whose leader moved (<see cref="IdempotentProduceRetry"/>):
    /// waits for their new leaders at most LeaderChangeWaitMs (capped by timeout_ms), then, once
    /// the connection's previous produce has enqueued its own resends (so a partition's batches
    /// reach the new leader in the client's order), enqueues them on the new leaders' streams and
    /// overwrites their slots with the answers. Always signals <see cref="RequestContext.ResendsDispatched"/>.
    /// </summary>
    /// <param name="routedBy">The metadata the first sends were routed by (what "a newer leader" is measured against).</param>
    private async Task ResendMovedAsync(ProduceRequest request, ProduceResponse response, ClusterMetadata routedBy, RequestContext context,
        CancellationToken cancellationToken)
    {
        var candidates = new List<LeaderMoveRetry.Candidate<(ProduceResponse.PartitionProduceResponse Slot, ReadOnlyMemory<byte> Records)>>();
        for (var t = 0; t < request.TopicData.Count; t++)
        {
            var topic = request.TopicData[t];
            for (var i = 0; i < topic.PartitionData.Count; i++)
            {
                // The response has the request's topics and partitions, in order.
                var slot = response.Responses[t].PartitionResponses[i];
                var records = topic.PartitionData[i].Records ?? ReadOnlyMemory<byte>.Empty;
                if (!IdempotentProduceRetry.ShouldResend(slot.ErrorCode, records.Span, request.Acks)) continue;
                var (leader, leaderEpoch) = LeaderMoveRetry.RoutedBy(routedBy, topic.Name, slot.Index);
                candidates.Add(new(topic.Name, slot.Index, leader, leaderEpoch, -1, (slot, records)));
            }
        }
        if (candidates.Count == 0 || cancellationToken.IsCancellationRequested)
        {
            context.ResendsDispatched();
            return;
        }
        var waitMs = Math.Clamp(request.TimeoutMs, 0, options.Value.LeaderChangeWaitMs);
        List<(LeaderFanOut<Brk.ProduceRequest, ProduceResponse.PartitionProduceResponse>.Batch Batch, Task<BrokerProduceOutcome> Outcome)> sent = [];
        try
        {
            var (metadata, retry) = await LeaderMoveRetry.WaitForNewLeadersAsync(admin, candidates, TimeSpan.FromMilliseconds(waitMs), cancellationToken).ConfigureAwait(false);
            if (retry.Count == 0) return;
            // The previous produce's resends first: they may hold earlier sequences of the same partitions.
            await context.PreviousResendsDispatched.WaitAsync(cancellationToken).ConfigureAwait(false);
            var fanOut = new LeaderFanOut<Brk.ProduceRequest, ProduceResponse.PartitionProduceResponse>(metadata, () => NewBrokerRequest(request, context), SetError);
            foreach (var c in retry)
                fanOut.Route(c.Topic, c.Partition, c.Slot.Slot)?.Partitions.Add(Forward(c.Topic, c.Partition, c.Slot.Records));
            logger.LogDebug("Produce: {Count} idempotent partitions resent to their new leaders", retry.Count);
            var deadlineMs = DeadlineMs(request);
            foreach (var batch in fanOut.Batches)
            {
                if (brokers.GetProduceStream(batch.Broker) is not { } stream)
                {
                    batch.Fail(ErrorCode.NotLeaderOrFollower);
                    continue;
                }
                var pending = await stream.EnqueueAsync(batch.Request, deadlineMs).ConfigureAwait(false);
                sent.Add((batch, pending.Completion));
            }
        }
        catch (OperationCanceledException)
        {
            return; // the client went away: nobody reads the answer
        }
        finally
        {
            context.ResendsDispatched();
            // As for the first sends: every enqueued request is awaited before the frame can go back to the pool.
            foreach (var (_, outcome) in sent) await outcome.ConfigureAwait(false);
        }
        ApplyOutcomes(sent);
    }

    /// <summary>Kafka's RequestUtils.hasTransactionalRecords: the first batch of any partition has the transactional bit.</summary>
    private static bool HasTransactionalBatch(ProduceRequest request)
    {
        foreach (var topic in request.TopicData)
            foreach (var p in topic.PartitionData)
                if (p.Records is { } records && records.Length > Protos.Records.RecordBatchHeader.AttributesOffset + 1
                    && (records.Span[Protos.Records.RecordBatchHeader.AttributesOffset + 1] & Protos.Records.RecordBatchHeader.TransactionalFlag) != 0)
                    return true;
        return false;
    }

    private static void Apply(ProduceResponse.PartitionProduceResponse target, Brk.PartitionProduceResult r)
    {
        target.ErrorCode = (short)r.ErrorCode;
        target.ErrorMessage = string.IsNullOrEmpty(r.ErrorMessage) ? null : r.ErrorMessage;
        target.BaseOffset = r.ErrorCode == 0 ? r.BaseOffset : -1;
        target.LogAppendTimeMs = r.ErrorCode == 0 ? r.LogAppendTimeMs : -1;
        target.LogStartOffset = r.LogStartOffset;
        foreach (var e in r.RecordErrors)
            target.RecordErrors.Add(new ProduceResponse.BatchIndexAndErrorMessage
            {
                BatchIndex = e.BatchIndex, BatchIndexErrorMessage = string.IsNullOrEmpty(e.Message) ? null : e.Message,
            });
    }
}
