using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using Brk = StreamPlatform.Protos.Grpc.Broker;

namespace StreamPlatform.Gateway.Apis;

// DeleteRecords v0-v2: moves each partition's log start offset up to the given offset (-1: the
// high watermark) on the leading broker, which removes whole segments below it. Partitions are
// grouped by leader, one call per broker in parallel, answers mapped back in request order.
// Errors per partition: UNKNOWN_TOPIC_OR_PARTITION (3); NOT_LEADER_OR_FOLLOWER (6) without a live
// leader or when the broker is unreachable; REQUEST_TIMED_OUT (7) after timeout_ms; from the
// broker OFFSET_OUT_OF_RANGE (1, offset above the high watermark) and KAFKA_STORAGE_ERROR (56).
// low_watermark is -1 on error.
public sealed class DeleteRecordsApi(
    TopicAdmin admin,
    BrokerClientPool brokers,
    IOptions<GatewayOptions> options,
    TimeProvider time,
    ILogger<DeleteRecordsApi> logger) : ApiHandler<DeleteRecordsRequest>
{
    public override ApiKey Key => ApiKey.DeleteRecords;
    public override short MinVersion => 0;
    public override short MaxVersion => Math.Min((short)2, DeleteRecordsResponse.HighestSupportedVersion);
    // Deleting is a write: keep the client's order, like Produce.
    public override bool Sequential => true;

    protected override async Task<IKafkaResponse?> HandleAsync(DeleteRecordsRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var response = new DeleteRecordsResponse();
        var fanOut = new LeaderFanOut<Brk.DeleteRecordsRequest, DeleteRecordsResponse.DeleteRecordsPartitionResult>(admin.Watcher.Current,
            () => new Brk.DeleteRecordsRequest { TimeoutMs = request.TimeoutMs }, (r, error) => r.ErrorCode = (short)error);
        foreach (var topic in request.Topics)
        {
            var topicResult = new DeleteRecordsResponse.DeleteRecordsTopicResult { Name = topic.Name };
            response.Topics.Add(topicResult);
            foreach (var p in topic.Partitions)
            {
                var r = new DeleteRecordsResponse.DeleteRecordsPartitionResult { PartitionIndex = p.PartitionIndex, LowWatermark = -1 };
                topicResult.Partitions.Add(r);
                fanOut.Route(topic.Name, p.PartitionIndex, r)?.Partitions.Add(
                    new Brk.PartitionDeleteRecords { Topic = topic.Name, Partition = p.PartitionIndex, Offset = p.Offset });
            }
        }
        var waitMs = request.TimeoutMs > 0 ? request.TimeoutMs : options.Value.ControllerCallTimeoutMs;
        await fanOut.SendAllAsync(new BrokerCaller(brokers, time, logger, "DeleteRecords"), (long)waitMs + options.Value.BrokerCallMarginMs,
            (client, forward, deadline, ct) => client.DeleteRecordsAsync(forward, deadline: deadline, cancellationToken: ct),
            (batch, answer) => batch.Apply(answer.Results, r => (r.Topic, r.Partition), (slot, r) =>
            {
                slot.ErrorCode = (short)r.ErrorCode;
                slot.LowWatermark = r.LowWatermark;
            }),
            cancellationToken).ConfigureAwait(false);
        return response;
    }
}
