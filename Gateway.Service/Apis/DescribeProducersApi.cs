using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Gateway.Security;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using BrokerClient = StreamPlatform.Protos.Grpc.Broker.BrokerService.BrokerServiceClient;
using Slot = StreamPlatform.Protos.Kafka.Messages.DescribeProducersResponse.PartitionResponse;

namespace StreamPlatform.Gateway.Apis;

// DescribeProducers v0 (Kafka 4.x: 0): the active producers of each partition (producer id,
// epoch, last sequence and timestamp, coordinator epoch, open transaction's first offset). Split
// by partition leader (LeaderFanOut, as Produce and Fetch), one BrokerService.DescribeProducers
// call per leader in parallel carrying the Kafka body for its partitions, answers merged in
// request order. Per partition, as Kafka's ReplicaManager.activeProducerState: a topic the client
// may not READ (IAuthorizer): TOPIC_AUTHORIZATION_FAILED; unknown topic or partition:
// UNKNOWN_TOPIC_OR_PARTITION; no live leader, or the leader unreachable: NOT_LEADER_OR_FOLLOWER
// (the admin client refreshes metadata and asks again; a broker that no longer leads it answers
// that itself); left out of its leader's answer: UNKNOWN_SERVER_ERROR, as in every fan-out API.
public sealed class DescribeProducersApi(CoordinatorRouter router, IAuthorizer authorizer) : ApiHandler<DescribeProducersRequest>
{
    /// <summary>Deadline of a broker's call (plus the broker call margin): producer state is in memory.</summary>
    public const int CallWaitMs = 10_000;

    public override ApiKey Key => ApiKey.DescribeProducers;
    public override short MinVersion => 0;
    public override short MaxVersion => DescribeProducersRequest.HighestSupportedVersion;

    protected override async Task<IKafkaResponse?> HandleAsync(DescribeProducersRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var response = new DescribeProducersResponse();
        var fanOut = new LeaderFanOut<DescribeProducersRequest, Slot>(router.Watcher.Current, () => new DescribeProducersRequest(), static (slot, error) =>
        {
            slot.ErrorCode = (short)error;
            slot.ErrorMessage = null;
            slot.ActiveProducers.Clear();
        });
        foreach (var topic in request.Topics)
        {
            var topicResponse = new DescribeProducersResponse.TopicResponse { Name = topic.Name };
            response.Topics.Add(topicResponse);
            var authorized = authorizer.Authorize(context, AclOperation.Read, AclResourceType.Topic, topic.Name);
            foreach (var partition in topic.PartitionIndexes)
            {
                var slot = new Slot { PartitionIndex = partition };
                topicResponse.Partitions.Add(slot);
                if (!authorized)
                {
                    slot.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed;
                    continue;
                }
                if (fanOut.Route(topic.Name, partition, slot) is not { } forward) continue;
                // Partitions come topic by topic, so a topic's partitions share one entry per broker.
                if (forward.Topics.Count == 0 || forward.Topics[^1].Name != topic.Name)
                    forward.Topics.Add(new DescribeProducersRequest.TopicRequest { Name = topic.Name });
                forward.Topics[^1].PartitionIndexes.Add(partition);
            }
        }
        await Task.WhenAll(fanOut.Batches.Select(async batch =>
        {
            var answer = await router.ForwardAsync<BrokerClient, DescribeProducersResponse>(batch.Broker, static i => new(i),
                static (c, r, o) => c.DescribeProducersAsync(r, o), batch.Request, context, CallWaitMs, cancellationToken).ConfigureAwait(false);
            if (answer is null)
            {
                batch.Fail(ErrorCode.NotLeaderOrFollower);
                return;
            }
            var results = answer.Topics.SelectMany(t => t.Partitions.Select(p => (t.Name, Partition: p)));
            batch.Apply(results, r => (r.Name, r.Partition.PartitionIndex), static (slot, r) =>
            {
                slot.ErrorCode = r.Partition.ErrorCode;
                slot.ErrorMessage = r.Partition.ErrorMessage;
                slot.ActiveProducers = r.Partition.ActiveProducers;
            });
        })).ConfigureAwait(false);
        return response;
    }
}
