using Grpc.Core;
using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Protos.Grpc;
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

    private sealed record Slot(DeleteRecordsResponse.DeleteRecordsPartitionResult Response, string Topic);

    protected override async Task<IKafkaResponse?> HandleAsync(DeleteRecordsRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var metadata = admin.Watcher.Current;
        var response = new DeleteRecordsResponse();
        var groups = new Dictionary<int, (BrokerInfo Broker, Brk.DeleteRecordsRequest Request, List<Slot> Slots)>();
        foreach (var topic in request.Topics)
        {
            var topicResult = new DeleteRecordsResponse.DeleteRecordsTopicResult { Name = topic.Name };
            response.Topics.Add(topicResult);
            foreach (var p in topic.Partitions)
            {
                var r = new DeleteRecordsResponse.DeleteRecordsPartitionResult { PartitionIndex = p.PartitionIndex, LowWatermark = -1 };
                topicResult.Partitions.Add(r);
                if (!metadata.TryGetPartition(topic.Name, p.PartitionIndex, out _, out var partition))
                {
                    r.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    continue;
                }
                var leader = metadata.LeaderOf(partition);
                if (leader is null)
                {
                    r.ErrorCode = (short)ErrorCode.NotLeaderOrFollower;
                    continue;
                }
                if (!groups.TryGetValue(leader.BrokerId, out var g))
                {
                    g = (leader, new Brk.DeleteRecordsRequest { TimeoutMs = request.TimeoutMs }, []);
                    groups[leader.BrokerId] = g;
                }
                g.Request.Partitions.Add(new Brk.PartitionDeleteRecords { Topic = topic.Name, Partition = p.PartitionIndex, Offset = p.Offset });
                g.Slots.Add(new Slot(r, topic.Name));
            }
        }
        await Task.WhenAll(groups.Values.Select(g => CallAsync(g.Broker, g.Request, g.Slots, request.TimeoutMs, cancellationToken))).ConfigureAwait(false);
        return response;
    }

    private async Task CallAsync(BrokerInfo broker, Brk.DeleteRecordsRequest request, List<Slot> slots, int timeoutMs, CancellationToken cancellationToken)
    {
        var client = brokers.GetClient(broker);
        try
        {
            if (client is null) throw new RpcException(new Status(StatusCode.Unavailable, $"bad endpoint {broker.GrpcEndpoint}"));
            var waitMs = timeoutMs > 0 ? timeoutMs : options.Value.ControllerCallTimeoutMs;
            var result = await client.DeleteRecordsAsync(request,
                deadline: time.GetUtcNow().UtcDateTime.AddMilliseconds(waitMs + options.Value.BrokerCallMarginMs),
                cancellationToken: cancellationToken).ConfigureAwait(false);
            var byKey = new Dictionary<(string, int), Brk.PartitionDeleteRecordsResult>();
            foreach (var r in result.Results) byKey[(r.Topic, r.Partition)] = r;
            foreach (var slot in slots)
            {
                if (!byKey.TryGetValue((slot.Topic, slot.Response.PartitionIndex), out var r))
                {
                    slot.Response.ErrorCode = (short)ErrorCode.UnknownServerError;
                    continue;
                }
                slot.Response.ErrorCode = (short)r.ErrorCode;
                slot.Response.LowWatermark = r.LowWatermark;
            }
        }
        catch (RpcException ex)
        {
            logger.LogWarning("DeleteRecords on broker {BrokerId} failed: {Status} {Detail}", broker.BrokerId, ex.StatusCode, ex.Status.Detail);
            var code = ex.StatusCode == StatusCode.DeadlineExceeded ? ErrorCode.RequestTimedOut : ErrorCode.NotLeaderOrFollower;
            foreach (var slot in slots) slot.Response.ErrorCode = (short)code;
        }
    }
}
