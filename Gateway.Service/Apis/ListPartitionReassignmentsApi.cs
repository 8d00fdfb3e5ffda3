using Grpc.Core;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using Ctl = StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.Gateway.Apis;

// ListPartitionReassignments v0 (Kafka 4.x serves the same): the partitions with a reassignment in
// progress, every one (null topics) or among those named (unknown names are left out, as Kafka),
// with their replicas (Broker.Service ids: target first, then those being removed) and the adding
// and removing replicas. Answered by the controller. Controller unreachable: NOT_CONTROLLER (41),
// or REQUEST_TIMED_OUT (7) when the deadline passed.
public sealed class ListPartitionReassignmentsApi(TopicAdmin admin, ILogger<ListPartitionReassignmentsApi> logger) : ApiHandler<ListPartitionReassignmentsRequest>
{
    public override ApiKey Key => ApiKey.ListPartitionReassignments;
    public override short MinVersion => 0;
    public override short MaxVersion => Math.Min((short)0, ListPartitionReassignmentsResponse.HighestSupportedVersion);

    protected override async Task<IKafkaResponse?> HandleAsync(ListPartitionReassignmentsRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var response = new ListPartitionReassignmentsResponse { ErrorMessage = null };
        var forward = new Ctl.ListReassignmentsRequest { AllPartitions = request.Topics is null };
        foreach (var t in request.Topics ?? [])
            forward.Topics.Add(new Ctl.ReassignmentQuery { Name = t.Name, Partitions = { t.PartitionIndexes } });
        try
        {
            var answer = await admin.ListReassignmentsAsync(forward, request.TimeoutMs, cancellationToken).ConfigureAwait(false);
            foreach (var group in answer.Reassignments.GroupBy(r => r.Topic, StringComparer.Ordinal))
            {
                var topic = new ListPartitionReassignmentsResponse.OngoingTopicReassignment { Name = group.Key };
                foreach (var r in group)
                {
                    topic.Partitions.Add(new ListPartitionReassignmentsResponse.OngoingPartitionReassignment
                    {
                        PartitionIndex = r.Partition,
                        Replicas = [.. r.Replicas],
                        AddingReplicas = [.. r.AddingReplicas],
                        RemovingReplicas = [.. r.RemovingReplicas],
                    });
                }
                response.Topics.Add(topic);
            }
        }
        catch (RpcException ex)
        {
            ControllerConnection.LogFailure(logger, "ListPartitionReassignments", ex, cancellationToken);
            response.ErrorCode = (short)ControllerConnection.ErrorFor(ex);
        }
        return response;
    }
}
