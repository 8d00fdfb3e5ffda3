using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Gateway.Cluster;
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

    protected override async Task<IKafkaResponse?> HandleAsync(ListOffsetsRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var response = new ListOffsetsResponse();
        var fanOut = new LeaderFanOut<Brk.ListOffsetsRequest, ListOffsetsResponse.ListOffsetsPartitionResponse>(admin.Watcher.Current,
            () => new Brk.ListOffsetsRequest { IsolationLevel = request.IsolationLevel }, (r, error) => r.ErrorCode = (short)error);
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
                fanOut.Route(topic.Name, p.PartitionIndex, r)?.Partitions.Add(new Brk.PartitionListOffsets
                {
                    Topic = topic.Name, Partition = p.PartitionIndex, Timestamp = p.Timestamp, CurrentLeaderEpoch = p.CurrentLeaderEpoch,
                });
            }
        }
        // ListOffsets has no timeout of its own: a broker missing the deadline counts as
        // unreachable (NOT_LEADER_OR_FOLLOWER), not REQUEST_TIMED_OUT.
        await fanOut.SendAllAsync(new BrokerCaller(brokers, time, logger, "ListOffsets"),
            options.Value.BrokerCallMarginMs + options.Value.ControllerCallTimeoutMs,
            (client, forward, deadline, ct) => client.ListOffsetsAsync(forward, deadline: deadline, cancellationToken: ct),
            (batch, answer) => batch.Apply(answer.Results, r => (r.Topic, r.Partition), (slot, r) =>
            {
                slot.ErrorCode = (short)r.ErrorCode;
                slot.Timestamp = r.Timestamp;
                slot.Offset = r.Offset;
                slot.LeaderEpoch = r.LeaderEpoch;
            }),
            cancellationToken, onDeadline: ErrorCode.NotLeaderOrFollower).ConfigureAwait(false);
        return response;
    }
}
