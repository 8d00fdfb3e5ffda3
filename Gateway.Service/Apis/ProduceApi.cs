using Google.Protobuf;
using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using Brk = StreamPlatform.Protos.Grpc.Broker;

namespace StreamPlatform.Gateway.Apis;

// Produce v3-v11 (up to the codec's highest): v3 is the first with magic-2 record batches, the
// only format StreamPlatform stores. Partitions are grouped by the broker that leads them and
// sent as one gRPC Produce per broker, all brokers in parallel; results are mapped back in
// request order. The requests go on each broker's long-lived produce stream
// (Routing/BrokerProduceStream), which keeps the order they were enqueued in; the connection's
// next produce starts as soon as this one is enqueued (OrderedAtDispatch), not when it is
// answered, so a pipelining client's requests overlap. Unknown topic or partition out of range: UNKNOWN_TOPIC_OR_PARTITION (3), after
// auto-creating missing topics when auto.create.topics.enable is true. No live leader or the
// broker unreachable: NOT_LEADER_OR_FOLLOWER (6) so the client refreshes metadata and retries;
// the gateway itself never retries a produce (it could duplicate records). A gRPC deadline
// (timeout_ms + margin) passing: REQUEST_TIMED_OUT (7). A broker's share of the request above the
// gRPC message limit (64 MiB): MESSAGE_TOO_LARGE (10). Batch size limits (MESSAGE_TOO_LARGE)
// and record validation are the broker's. Internal topics (__consumer_offsets, __transaction_state,
// __share_group_state) are refused by the broker with INVALID_TOPIC_EXCEPTION (17) "Cannot append to
// internal topic", passed on as is, and never auto-created here (their coordinators create them).
// acks must be 0, 1 or -1 (else INVALID_REQUIRED_ACKS 21);
// acks=0 gets no response at all (but is ordered the same way). A transactional batch in a
// request without a transactional id: TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53) for the whole
// request, as Kafka's KafkaApis answers. Records refused by the broker's validation come back with
// error_message and (v8+) record_errors naming each refused record, as Kafka's
// RecordValidationException. Produce is Sequential and OrderedAtDispatch per connection (see IApiHandler).
public sealed class ProduceApi(
    TopicAdmin admin,
    BrokerClientPool brokers,
    IOptions<GatewayOptions> options,
    ILogger<ProduceApi> logger) : ApiHandler<ProduceRequest>
{
    public override ApiKey Key => ApiKey.Produce;
    public override short MinVersion => 3;
    public override short MaxVersion => Math.Min((short)11, ProduceResponse.HighestSupportedVersion);
    public override bool Sequential => true;
    public override bool OrderedAtDispatch => true;

    protected override async Task<IKafkaResponse?> HandleAsync(ProduceRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        if (request.Acks is not (0 or 1 or -1))
            return request.Acks == 0 ? null : ErrorResponses.Build(request, context.ApiVersion, ErrorCode.InvalidRequiredAcks);
        if (request.TransactionalId is null && HasTransactionalBatch(request))
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
        // One stream request per leading broker. The record bytes are wrapped, not copied: they are
        // slices of the pooled request frame, which KafkaConnection returns to the pool only after
        // this handler has completed, and this handler awaits every request's Completion, which
        // completes only once its stream no longer references the bytes.
        var fanOut = new LeaderFanOut<Brk.ProduceRequest, ProduceResponse.PartitionProduceResponse>(metadata,
            () => new Brk.ProduceRequest { Acks = request.Acks, TimeoutMs = request.TimeoutMs, TransactionalId = request.TransactionalId ?? "" },
            (target, error) =>
            {
                target.ErrorCode = (short)error;
                target.BaseOffset = -1;
            });
        foreach (var topic in request.TopicData)
        {
            var topicResponse = new ProduceResponse.TopicProduceResponse { Name = topic.Name };
            response.Responses.Add(topicResponse);
            foreach (var p in topic.PartitionData)
            {
                var partitionResponse = new ProduceResponse.PartitionProduceResponse { Index = p.Index, BaseOffset = -1 };
                topicResponse.PartitionResponses.Add(partitionResponse);
                fanOut.Route(topic.Name, p.Index, partitionResponse)?.Partitions.Add(new Brk.PartitionProduce
                {
                    Topic = topic.Name,
                    Partition = p.Index,
                    Records = p.Records is { } records ? UnsafeByteOperations.UnsafeWrap(records) : ByteString.Empty,
                });
            }
        }

        var deadlineMs = (long)Math.Max(request.TimeoutMs, 0) + options.Value.BrokerCallMarginMs;
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

        foreach (var (batch, outcomeTask) in sent)
        {
            var outcome = outcomeTask.Result;
            if (outcome.Response is { } answer) batch.Apply(answer.Results, r => (r.Topic, r.Partition), Apply);
            else batch.Fail(outcome.Error);
        }

        return request.Acks == 0 ? null : response;
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
