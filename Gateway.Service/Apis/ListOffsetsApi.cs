using Grpc.Core;
using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using Brk = StreamPlatform.Protos.Grpc.Broker;

namespace StreamPlatform.Gateway.Apis;

// ListOffsets v1-v10 (up to the codec's highest): v0's multi-offset answer is not served.
// Timestamps -1 latest, -2 earliest, -3 max timestamp, -4/-5 (earliest local / latest tiered) and
// real timestamps are passed to the leading broker as they are; partitions are grouped by leader,
// one call per broker in parallel, answers mapped back in request order. Unknown topic or
// partition: UNKNOWN_TOPIC_OR_PARTITION (3); no live leader or broker unreachable:
// NOT_LEADER_OR_FOLLOWER (6).
public sealed class ListOffsetsApi(
    TopicAdmin admin,
    BrokerClientPool brokers,
    IOptions<GatewayOptions> options,
    TimeProvider time,
    ILogger<ListOffsetsApi> logger) : ApiHandler<ListOffsetsRequest>
{
    public override ApiKey Key => ApiKey.ListOffsets;
    public override short MinVersion => 1;
    public override short MaxVersion => Math.Min((short)10, ListOffsetsResponse.HighestSupportedVersion);

    private sealed record Slot(ListOffsetsResponse.ListOffsetsPartitionResponse Response, string Topic);

    protected override async Task<IKafkaResponse?> HandleAsync(ListOffsetsRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var metadata = admin.Watcher.Current;
        var response = new ListOffsetsResponse();
        var groups = new Dictionary<int, (BrokerInfo Broker, Brk.ListOffsetsRequest Request, List<Slot> Slots)>();
        foreach (var topic in request.Topics)
        {
            var topicResponse = new ListOffsetsResponse.ListOffsetsTopicResponse { Name = topic.Name };
            response.Topics.Add(topicResponse);
            foreach (var p in topic.Partitions)
            {
                var r = new ListOffsetsResponse.ListOffsetsPartitionResponse
                {
                    PartitionIndex = p.PartitionIndex, Timestamp = -1, Offset = -1, LeaderEpoch = -1,
                };
                topicResponse.Partitions.Add(r);
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
                    g = (leader, new Brk.ListOffsetsRequest { IsolationLevel = request.IsolationLevel }, []);
                    groups[leader.BrokerId] = g;
                }
                g.Request.Partitions.Add(new Brk.PartitionListOffsets
                {
                    Topic = topic.Name, Partition = p.PartitionIndex, Timestamp = p.Timestamp, CurrentLeaderEpoch = p.CurrentLeaderEpoch,
                });
                g.Slots.Add(new Slot(r, topic.Name));
            }
        }
        await Task.WhenAll(groups.Values.Select(g => CallAsync(g.Broker, g.Request, g.Slots, cancellationToken))).ConfigureAwait(false);
        return response;
    }

    private async Task CallAsync(BrokerInfo broker, Brk.ListOffsetsRequest request, List<Slot> slots, CancellationToken cancellationToken)
    {
        var client = brokers.GetClient(broker);
        try
        {
            if (client is null) throw new RpcException(new Status(StatusCode.Unavailable, $"bad endpoint {broker.GrpcEndpoint}"));
            var result = await client.ListOffsetsAsync(request,
                deadline: time.GetUtcNow().UtcDateTime.AddMilliseconds(options.Value.BrokerCallMarginMs + options.Value.ControllerCallTimeoutMs),
                cancellationToken: cancellationToken).ConfigureAwait(false);
            var byKey = new Dictionary<(string, int), Brk.PartitionListOffsetsResult>();
            foreach (var r in result.Results) byKey[(r.Topic, r.Partition)] = r;
            foreach (var slot in slots)
            {
                if (!byKey.TryGetValue((slot.Topic, slot.Response.PartitionIndex), out var r))
                {
                    slot.Response.ErrorCode = (short)ErrorCode.UnknownServerError;
                    continue;
                }
                slot.Response.ErrorCode = (short)r.ErrorCode;
                slot.Response.Timestamp = r.Timestamp;
                slot.Response.Offset = r.Offset;
                slot.Response.LeaderEpoch = r.LeaderEpoch;
            }
        }
        catch (RpcException ex)
        {
            logger.LogWarning("ListOffsets on broker {BrokerId} failed: {Status} {Detail}", broker.BrokerId, ex.StatusCode, ex.Status.Detail);
            foreach (var slot in slots) slot.Response.ErrorCode = (short)ErrorCode.NotLeaderOrFollower;
        }
    }
}
