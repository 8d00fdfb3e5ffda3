using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using Brk = StreamPlatform.Protos.Grpc.Broker;

namespace StreamPlatform.Gateway.Apis;

// ListOffsets v1-v10 (up to the codec's highest): v0's multi-offset answer is not served.
// Timestamps -1 latest, -2 earliest, -3 max timestamp, -4/-5 (earliest local / latest tiered) and
// real timestamps are passed to the leading broker as they are; partitions are grouped by leader,
// one call per broker in parallel, answers mapped back in request order. Unknown topic or
// partition: UNKNOWN_TOPIC_OR_PARTITION (3); no live leader or broker unreachable:
// NOT_LEADER_OR_FOLLOWER (6), unless the metadata shows a new leader within LeaderChangeWaitMs:
// such partitions are asked once more there (LeaderMoveRetry; a read, so a retry is harmless).
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
        var metadata = admin.Watcher.Current;
        var routed = new List<LeaderMoveRetry.Candidate<(ListOffsetsResponse.ListOffsetsPartitionResponse Result, Brk.PartitionListOffsets Forward)>>();
        var fanOut = NewFanOut(metadata, request);
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
                var forward = new Brk.PartitionListOffsets
                {
                    Topic = topic.Name, Partition = p.PartitionIndex, Timestamp = p.Timestamp, CurrentLeaderEpoch = p.CurrentLeaderEpoch,
                };
                var forwardTo = fanOut.Route(topic.Name, p.PartitionIndex, r);
                forwardTo?.Partitions.Add(forward);
                // An unknown partition has no leader to move to; one without a leader may get one.
                if (forwardTo is null && r.ErrorCode != (short)ErrorCode.NotLeaderOrFollower) continue;
                var (leader, leaderEpoch) = LeaderMoveRetry.RoutedBy(metadata, topic.Name, p.PartitionIndex);
                routed.Add(new(topic.Name, p.PartitionIndex, leader, leaderEpoch, p.CurrentLeaderEpoch, (r, forward)));
            }
        }
        await SendAsync(fanOut, cancellationToken).ConfigureAwait(false);

        var candidates = routed.Where(c => LeaderMoveRetry.IsMoved(c.Slot.Result.ErrorCode)).ToList();
        if (candidates.Count == 0 || cancellationToken.IsCancellationRequested) return response;
        var (current, retry) = await LeaderMoveRetry.WaitForNewLeadersAsync(admin, candidates,
            TimeSpan.FromMilliseconds(options.Value.LeaderChangeWaitMs), cancellationToken).ConfigureAwait(false);
        if (retry.Count == 0) return response;
        var again = NewFanOut(current, request);
        foreach (var c in retry)
            again.Route(c.Topic, c.Partition, c.Slot.Result)?.Partitions.Add(c.Slot.Forward.Clone());
        logger.LogDebug("ListOffsets: {Count} partitions retried on their new leaders", retry.Count);
        await SendAsync(again, cancellationToken).ConfigureAwait(false);
        return response;
    }

    private static LeaderFanOut<Brk.ListOffsetsRequest, ListOffsetsResponse.ListOffsetsPartitionResponse> NewFanOut(
        ClusterMetadata metadata, ListOffsetsRequest request)
        => new(metadata, () => new Brk.ListOffsetsRequest { IsolationLevel = request.IsolationLevel }, (r, error) => r.ErrorCode = (short)error);

    private Task SendAsync(LeaderFanOut<Brk.ListOffsetsRequest, ListOffsetsResponse.ListOffsetsPartitionResponse> fanOut, CancellationToken cancellationToken)
    {
        // ListOffsets has no timeout of its own: a broker missing the deadline counts as
        // unreachable (NOT_LEADER_OR_FOLLOWER), not REQUEST_TIMED_OUT.
        return fanOut.SendAllAsync(new BrokerCaller(brokers, time, logger, "ListOffsets"),
            options.Value.BrokerCallMarginMs + options.Value.ControllerCallTimeoutMs,
            (client, forward, deadline, ct) => client.ListOffsetsAsync(forward, deadline: deadline, cancellationToken: ct),
            (batch, answer) => batch.Apply(answer.Results, r => (r.Topic, r.Partition), (slot, r) =>
            {
                slot.ErrorCode = (short)r.ErrorCode;
                slot.Timestamp = r.Timestamp;
                slot.Offset = r.Offset;
                slot.LeaderEpoch = r.LeaderEpoch;
            }),
            cancellationToken, onDeadline: ErrorCode.NotLeaderOrFollower);
    }
}
