using Grpc.Core;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using Ctl = StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.Gateway.Apis;

// AlterPartitionReassignments v0 (our codec's 3.9 definitions stop there; Kafka 4.1 adds v1 with
// allow_replication_factor_change): moves partitions to the target replicas (Broker.Service
// ids, as CreateTopics assignments), or cancels with null replicas; forwarded to the controller
// (see docs/CONTROLLER.md). Added replicas catch up through replication and join the ISR; then the
// old ones leave. Per partition: UNKNOWN_TOPIC_OR_PARTITION (3), INVALID_REPLICA_ASSIGNMENT (39),
// NO_REASSIGNMENT_IN_PROGRESS (85). timeout_ms bounds the call and the wait for this gateway's
// metadata to show the change. Controller unreachable: NOT_CONTROLLER (41) for the request, or
// REQUEST_TIMED_OUT (7) when the deadline passed.
public sealed class AlterPartitionReassignmentsApi(TopicAdmin admin, ILogger<AlterPartitionReassignmentsApi> logger) : ApiHandler<AlterPartitionReassignmentsRequest>
{
    public override ApiKey Key => ApiKey.AlterPartitionReassignments;
    public override short MinVersion => 0;
    public override short MaxVersion => Math.Min((short)0, AlterPartitionReassignmentsResponse.HighestSupportedVersion);
    public override bool Sequential => true;

    protected override async Task<IKafkaResponse?> HandleAsync(AlterPartitionReassignmentsRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var response = new AlterPartitionReassignmentsResponse { ErrorMessage = null };
        var forward = new Ctl.AlterReassignmentsRequest();
        foreach (var t in request.Topics)
        {
            var topic = new Ctl.ReassignTopic { Name = t.Name };
            foreach (var p in t.Partitions)
            {
                var item = new Ctl.ReassignPartition { Partition = p.PartitionIndex };
                if (p.Replicas is not null) item.Replicas = new Ctl.ReplicaList { BrokerIds = { p.Replicas } };
                topic.Partitions.Add(item);
            }
            forward.Topics.Add(topic);
        }
        try
        {
            var answer = await admin.AlterReassignmentsAsync(forward, request.TimeoutMs, cancellationToken).ConfigureAwait(false);
            foreach (var t in answer.Topics)
            {
                var result = new AlterPartitionReassignmentsResponse.ReassignableTopicResponse { Name = t.Name };
                foreach (var p in t.Partitions)
                {
                    result.Partitions.Add(new AlterPartitionReassignmentsResponse.ReassignablePartitionResponse
                    {
                        PartitionIndex = p.Partition,
                        ErrorCode = (short)p.ErrorCode,
                        ErrorMessage = string.IsNullOrEmpty(p.ErrorMessage) ? null : p.ErrorMessage,
                    });
                }
                response.Responses.Add(result);
            }
            if (request.TimeoutMs > 0 && answer.Topics.Any(t => t.Partitions.Any(p => p.ErrorCode == 0)))
            {
                var wait = TimeSpan.FromMilliseconds(Math.Min(request.TimeoutMs, TopicAdmin.CreateWaitMax.TotalMilliseconds));
                await admin.WaitForAsync(m => m.Epoch >= answer.MetadataEpoch, wait, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (RpcException ex)
        {
            ControllerConnection.LogFailure(logger, "AlterPartitionReassignments", ex, cancellationToken);
            response.ErrorCode = (short)ControllerConnection.ErrorFor(ex);
            response.Responses.Clear();
        }
        return response;
    }
}
