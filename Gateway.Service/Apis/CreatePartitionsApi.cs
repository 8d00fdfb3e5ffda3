using Grpc.Core;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using Ctl = StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.Gateway.Apis;

// CreatePartitions v0-v3 (Kafka 4.x serves the same): raises a topic's partition count, forwarded
// to the controller (see docs/CONTROLLER.md), which assigns the new partitions (or takes the
// given assignments: broker ids, as CreateTopics) and answers per topic UNKNOWN_TOPIC_OR_PARTITION
// (3), INVALID_PARTITIONS (37: count not above the current one, or above the limit),
// INVALID_REPLICATION_FACTOR (38), INVALID_REPLICA_ASSIGNMENT (39), INVALID_REQUEST (42: a topic
// named twice), TOPIC_AUTHORIZATION_FAILED (29: internal topics). validate_only checks without
// creating. Brokers create the new logs and gateways serve the new partitions from metadata;
// timeout_ms bounds the call and the wait for this gateway's metadata to show them.
// Controller unreachable: NOT_CONTROLLER (41), or REQUEST_TIMED_OUT (7) when the deadline passed.
public sealed class CreatePartitionsApi(TopicAdmin admin, ILogger<CreatePartitionsApi> logger) : ApiHandler<CreatePartitionsRequest>
{
    public override ApiKey Key => ApiKey.CreatePartitions;
    public override short MinVersion => 0;
    public override short MaxVersion => Math.Min((short)3, CreatePartitionsResponse.HighestSupportedVersion);
    public override bool Sequential => true;

    protected override async Task<IKafkaResponse?> HandleAsync(CreatePartitionsRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var response = new CreatePartitionsResponse();
        var forward = new Ctl.CreatePartitionsRequest { ValidateOnly = request.ValidateOnly };
        foreach (var t in request.Topics)
        {
            response.Results.Add(new CreatePartitionsResponse.CreatePartitionsTopicResult { Name = t.Name });
            var topic = new Ctl.CreatePartitionsTopic { Name = t.Name, Count = t.Count };
            foreach (var a in t.Assignments ?? [])
                topic.Assignments.Add(new Ctl.ReplicaList { BrokerIds = { a.BrokerIds } });
            forward.Topics.Add(topic);
        }
        if (forward.Topics.Count == 0) return response;
        try
        {
            var answer = await admin.CreatePartitionsAsync(forward, request.TimeoutMs, cancellationToken).ConfigureAwait(false);
            // Results come back in request order.
            for (var i = 0; i < response.Results.Count; i++)
            {
                var target = response.Results[i];
                var r = i < answer.Results.Count ? answer.Results[i] : null;
                if (r is null)
                {
                    target.ErrorCode = (short)ErrorCode.UnknownServerError;
                    continue;
                }
                target.ErrorCode = (short)r.ErrorCode;
                target.ErrorMessage = string.IsNullOrEmpty(r.ErrorMessage) ? null : r.ErrorMessage;
            }
            if (!request.ValidateOnly && request.TimeoutMs > 0 && response.Results.Any(r => r.ErrorCode == 0))
            {
                var wait = TimeSpan.FromMilliseconds(Math.Min(request.TimeoutMs, TopicAdmin.CreateWaitMax.TotalMilliseconds));
                await admin.WaitForAsync(m => m.Epoch >= answer.MetadataEpoch, wait, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (RpcException ex)
        {
            ControllerConnection.LogFailure(logger, "CreatePartitions", ex, cancellationToken);
            var code = ControllerConnection.ErrorFor(ex);
            foreach (var target in response.Results) target.ErrorCode = (short)code;
        }
        return response;
    }
}
