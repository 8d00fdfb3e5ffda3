using Grpc.Core;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using Ctl = StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.Gateway.Apis;

// ElectLeaders v0-v2 (Kafka 4.x serves the same): a preferred (election_type 0; v0 is always
// preferred) or unclean (1) leader election, forwarded to the controller (see docs/CONTROLLER.md).
// Null topic_partitions = every partition; the answer then lists only the partitions that needed
// an election. Per partition: 0, UNKNOWN_TOPIC_OR_PARTITION (3), ELECTION_NOT_NEEDED (84),
// PREFERRED_LEADER_NOT_AVAILABLE (80), ELIGIBLE_LEADERS_NOT_AVAILABLE (83). An unknown election
// type is INVALID_REQUEST (42) for the request (v1+) and every named partition. timeout_ms bounds
// the controller call and the wait for the new leaders to show in this gateway's metadata, so a
// Metadata request right after the answer sees them. Controller unreachable: NOT_CONTROLLER (41),
// or REQUEST_TIMED_OUT (7) when the deadline passed.
public sealed class ElectLeadersApi(TopicAdmin admin, ILogger<ElectLeadersApi> logger) : ApiHandler<ElectLeadersRequest>
{
    public override ApiKey Key => ApiKey.ElectLeaders;
    public override short MinVersion => 0;
    public override short MaxVersion => Math.Min((short)2, ElectLeadersResponse.HighestSupportedVersion);
    public override bool Sequential => true;

    protected override async Task<IKafkaResponse?> HandleAsync(ElectLeadersRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var response = new ElectLeadersResponse();
        var forward = new Ctl.ElectLeadersRequest { ElectionType = context.ApiVersion >= 1 ? request.ElectionType : 0 };
        if (request.TopicPartitions is null) forward.AllPartitions = true;
        else
            foreach (var t in request.TopicPartitions)
                forward.Topics.Add(new Ctl.ElectLeadersTopic { Name = t.Topic, Partitions = { t.Partitions } });
        try
        {
            var answer = await admin.ElectLeadersAsync(forward, request.TimeoutMs, cancellationToken).ConfigureAwait(false);
            if (answer.ErrorCode != 0) return Failed(request, (ErrorCode)(short)answer.ErrorCode, answer.ErrorMessage);
            foreach (var t in answer.Topics)
            {
                var result = new ElectLeadersResponse.ReplicaElectionResult { Topic = t.Name };
                foreach (var p in t.Partitions)
                {
                    result.PartitionResult.Add(new ElectLeadersResponse.PartitionResult
                    {
                        PartitionId = p.Partition,
                        ErrorCode = (short)p.ErrorCode,
                        ErrorMessage = string.IsNullOrEmpty(p.ErrorMessage) ? null : p.ErrorMessage,
                    });
                }
                response.ReplicaElectionResults.Add(result);
            }
            if (request.TimeoutMs > 0 && answer.Topics.Any(t => t.Partitions.Any(p => p.ErrorCode == 0)))
            {
                var wait = TimeSpan.FromMilliseconds(Math.Min(request.TimeoutMs, TopicAdmin.CreateWaitMax.TotalMilliseconds));
                await admin.WaitForAsync(m => m.Epoch >= answer.MetadataEpoch, wait, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (RpcException ex)
        {
            ControllerConnection.LogFailure(logger, "ElectLeaders", ex, cancellationToken);
            return Failed(request, ControllerConnection.ErrorFor(ex), null);
        }
        return response;
    }

    /// <summary>A request-level error: in the top-level code (v1+) and, as Kafka, on every named partition (v0 has only those).</summary>
    private static ElectLeadersResponse Failed(ElectLeadersRequest request, ErrorCode code, string? message)
    {
        var response = new ElectLeadersResponse { ErrorCode = (short)code };
        foreach (var t in request.TopicPartitions ?? [])
        {
            var result = new ElectLeadersResponse.ReplicaElectionResult { Topic = t.Topic };
            foreach (var p in t.Partitions)
                result.PartitionResult.Add(new ElectLeadersResponse.PartitionResult { PartitionId = p, ErrorCode = (short)code, ErrorMessage = string.IsNullOrEmpty(message) ? null : message });
            response.ReplicaElectionResults.Add(result);
        }
        return response;
    }
}
