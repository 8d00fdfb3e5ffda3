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
// request order. Unknown topic or partition out of range: UNKNOWN_TOPIC_OR_PARTITION (3), after
// auto-creating missing topics when auto.create.topics.enable is true. No live leader or the
// broker unreachable: NOT_LEADER_OR_FOLLOWER (6) so the client refreshes metadata and retries;
// the gateway itself never retries a produce (it could duplicate records). A gRPC deadline
// (timeout_ms + margin) passing: REQUEST_TIMED_OUT (7). Batch size limits (MESSAGE_TOO_LARGE)
// and record validation are the broker's. acks must be 0, 1 or -1 (else INVALID_REQUIRED_ACKS 21);
// acks=0 gets no response at all. Produce is Sequential per connection (see IApiHandler).
public sealed class ProduceApi(
    TopicAdmin admin,
    BrokerClientPool brokers,
    IOptions<GatewayOptions> options,
    TimeProvider time,
    ILogger<ProduceApi> logger) : ApiHandler<ProduceRequest>
{
    public override ApiKey Key => ApiKey.Produce;
    public override short MinVersion => 3;
    public override short MaxVersion => Math.Min((short)11, ProduceResponse.HighestSupportedVersion);
    public override bool Sequential => true;

    protected override async Task<IKafkaResponse?> HandleAsync(ProduceRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        if (request.Acks is not (0 or 1 or -1))
            return request.Acks == 0 ? null : ErrorResponses.Build(request, context.ApiVersion, ErrorCode.InvalidRequiredAcks);

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
        // One gRPC request per leading broker. The record bytes are wrapped, not copied: they are
        // slices of the pooled request frame, which KafkaConnection returns to the pool only after
        // this handler (and so every call below) has completed.
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
        await fanOut.SendAllAsync(new BrokerCaller(brokers, time, logger, "Produce"), deadlineMs,
            (client, forward, deadline, ct) => client.ProduceAsync(forward, deadline: deadline, cancellationToken: ct),
            (batch, answer) => batch.Apply(answer.Results, r => (r.Topic, r.Partition), Apply),
            cancellationToken).ConfigureAwait(false);

        return request.Acks == 0 ? null : response;
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
