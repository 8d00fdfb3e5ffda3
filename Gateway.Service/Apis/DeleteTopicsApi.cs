using Google.Protobuf;
using Grpc.Core;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using Ctl = StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.Gateway.Apis;

// DeleteTopics v0-v6 (up to the codec's highest): by name (topic_names, v0-v5) and by name or id
// (topics, v6+). Forwarded to the controller, which answers UNKNOWN_TOPIC_OR_PARTITION (3) /
// UNKNOWN_TOPIC_ID (100) / TOPIC_DELETION_DISABLED (73) per topic, and TOPIC_AUTHORIZATION_FAILED (29)
// for internal topics (__consumer_offsets, __transaction_state, __share_group_state: the controller
// never deletes them, see InternalTopics), with its message. timeout_ms bounds the call and
// the wait for the deletion to show in this gateway's metadata. Controller unreachable:
// NOT_CONTROLLER (41), or REQUEST_TIMED_OUT (7) when the deadline passed.
public sealed class DeleteTopicsApi(TopicAdmin admin, ILogger<DeleteTopicsApi> logger) : ApiHandler<DeleteTopicsRequest>
{
    public override ApiKey Key => ApiKey.DeleteTopics;
    public override short MinVersion => 0;
    public override short MaxVersion => Math.Min((short)6, DeleteTopicsResponse.HighestSupportedVersion);
    public override bool Sequential => true;

    protected override async Task<IKafkaResponse?> HandleAsync(DeleteTopicsRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var response = new DeleteTopicsResponse();
        var forward = new Ctl.DeleteTopicsRequest();
        if (context.ApiVersion >= 6)
        {
            foreach (var t in request.Topics)
            {
                response.Responses.Add(new DeleteTopicsResponse.DeletableTopicResult { Name = t.Name, TopicId = t.TopicId });
                forward.Topics.Add(new Ctl.TopicRef
                {
                    Name = t.Name ?? "",
                    TopicId = t.Name is null ? TopicIds.ToByteString(t.TopicId) : ByteString.Empty,
                });
            }
        }
        else
        {
            foreach (var name in request.TopicNames)
            {
                response.Responses.Add(new DeleteTopicsResponse.DeletableTopicResult { Name = name });
                forward.Topics.Add(new Ctl.TopicRef { Name = name });
            }
        }
        if (forward.Topics.Count == 0) return response;
        try
        {
            var answer = await admin.DeleteAsync(forward, request.TimeoutMs, cancellationToken).ConfigureAwait(false);
            // Results come back in request order; match by position, falling back to name/id.
            for (var i = 0; i < response.Responses.Count; i++)
            {
                var target = response.Responses[i];
                var r = i < answer.Results.Count ? answer.Results[i] : null;
                if (r is null) { target.ErrorCode = (short)ErrorCode.UnknownServerError; continue; }
                target.ErrorCode = (short)r.ErrorCode;
                target.ErrorMessage = string.IsNullOrEmpty(r.ErrorMessage) ? null : r.ErrorMessage;
                if (!string.IsNullOrEmpty(r.Name)) target.Name = r.Name;
                if (r.TopicId.Length == 16) target.TopicId = TopicIds.ToGuid(r.TopicId);
            }
            if (request.TimeoutMs > 0)
            {
                var deleted = response.Responses.Where(r => r.ErrorCode == 0 && r.Name is not null).Select(r => r.Name!).ToList();
                var wait = TimeSpan.FromMilliseconds(Math.Min(request.TimeoutMs, TopicAdmin.CreateWaitMax.TotalMilliseconds));
                await admin.WaitForAsync(m => !deleted.Any(m.TopicsByName.ContainsKey), wait, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (RpcException ex)
        {
            ControllerConnection.LogFailure(logger, "DeleteTopics", ex, cancellationToken);
            var code = ControllerConnection.ErrorFor(ex);
            foreach (var target in response.Responses) target.ErrorCode = (short)code;
        }
        return response;
    }
}
