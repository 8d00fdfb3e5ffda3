using Grpc.Core;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Protos.Configs;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using Ctl = StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.Gateway.Apis;

// CreateTopics v0-v7 (up to the codec's highest). Forwarded to the controller, which validates
// partitions, replication factor, assignments and configs and answers with Kafka error codes.
// The gateway rejects names that appear twice in one request (INVALID_REQUEST 42, as Kafka) and
// illegal names (INVALID_TOPIC_EXCEPTION 17) itself. timeout_ms bounds the controller call, which
// answers once every new partition's leader broker has applied the creation (writable), and the
// wait for the new topics to appear in this gateway's metadata (so a Metadata or Produce request
// right after finds them with a leader that takes writes); timeout_ms 0 waits for neither.
// validate_only (v1+) is passed through. v5+ answers carry the partition count,
// replication factor and the topic's effective configs; v7+ the topic id. Controller unreachable:
// NOT_CONTROLLER (41, retriable), or REQUEST_TIMED_OUT (7) when the deadline passed.
public sealed class CreateTopicsApi(TopicAdmin admin, ILogger<CreateTopicsApi> logger) : ApiHandler<CreateTopicsRequest>
{
    public override ApiKey Key => ApiKey.CreateTopics;
    public override short MinVersion => 0;
    public override short MaxVersion => Math.Min((short)7, CreateTopicsResponse.HighestSupportedVersion);
    public override bool Sequential => true;

    protected override async Task<IKafkaResponse?> HandleAsync(CreateTopicsRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var response = new CreateTopicsResponse();
        var counts = request.Topics.GroupBy(t => t.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var forward = new Ctl.CreateTopicsRequest { ValidateOnly = request.validateOnly };
        var results = new Dictionary<string, CreateTopicsResponse.CreatableTopicResult>(StringComparer.Ordinal);
        foreach (var t in request.Topics)
        {
            var result = new CreateTopicsResponse.CreatableTopicResult { Name = t.Name, NumPartitions = -1, ReplicationFactor = -1 };
            response.Topics.Add(result);
            if (counts[t.Name] > 1)
            {
                result.ErrorCode = (short)ErrorCode.InvalidRequest;
                result.ErrorMessage = $"Create topics request from client contains a duplicate topic {t.Name}.";
                continue;
            }
            if (!TopicNames.IsValid(t.Name))
            {
                result.ErrorCode = (short)ErrorCode.InvalidTopicException;
                result.ErrorMessage = $"Topic name \"{t.Name}\" is illegal: it must be 1-{TopicNames.MaxLengthChars} characters of [a-zA-Z0-9._-] and not '.' or '..'.";
                continue;
            }
            var topic = new Ctl.CreatableTopic { Name = t.Name, NumPartitions = t.NumPartitions, ReplicationFactor = t.ReplicationFactor };
            foreach (var c in t.Configs)
            {
                if (c.Value is not null) topic.Configs[c.Name] = c.Value;
            }
            foreach (var a in t.Assignments)
            {
                var list = new Ctl.ReplicaList();
                list.BrokerIds.AddRange(a.BrokerIds);
                topic.Assignments[a.PartitionIndex] = list;
            }
            forward.Topics.Add(topic);
            results[t.Name] = result;
        }
        if (forward.Topics.Count == 0) return response;

        try
        {
            // timeout_ms 0 asks for no waiting (Kafka); otherwise the controller answers once the
            // new partitions' leaders take writes, so a produce right after this answer succeeds.
            var answer = await admin.CreateAsync(forward, request.timeoutMs, cancellationToken, waitForLeaders: request.timeoutMs > 0).ConfigureAwait(false);
            foreach (var r in answer.Results)
            {
                if (!results.TryGetValue(r.Name, out var target)) continue;
                target.ErrorCode = (short)r.ErrorCode;
                target.ErrorMessage = string.IsNullOrEmpty(r.ErrorMessage) ? null : r.ErrorMessage;
                if (r.ErrorCode != 0) continue;
                if (r.TopicId.Length == 16) target.TopicId = TopicIds.ToGuid(r.TopicId);
                target.NumPartitions = r.NumPartitions;
                target.ReplicationFactor = (short)r.ReplicationFactor;
                target.Configs = DescribeConfigs(r.Configs);
            }
            foreach (var target in results.Values)
            {
                if (!answer.Results.Any(r => r.Name == target.Name))
                    target.ErrorCode = (short)ErrorCode.UnknownServerError;
            }
            if (!request.validateOnly && request.timeoutMs > 0)
            {
                var created = answer.Results.Where(r => r.ErrorCode == 0).Select(r => r.Name).ToList();
                var wait = TimeSpan.FromMilliseconds(Math.Min(request.timeoutMs, TopicAdmin.CreateWaitMax.TotalMilliseconds));
                await admin.WaitForAsync(m => m.Epoch >= answer.MetadataEpoch && created.All(m.TopicsByName.ContainsKey), wait, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (RpcException ex)
        {
            ControllerConnection.LogFailure(logger, "CreateTopics", ex, cancellationToken);
            var code = ControllerConnection.ErrorFor(ex);
            foreach (var target in results.Values) target.ErrorCode = (short)code;
        }
        return response;
    }

    /// <summary>Every catalog topic config with its effective value: set explicitly (DYNAMIC_TOPIC_CONFIG) or the default.</summary>
    private static List<CreateTopicsResponse.CreatableTopicConfigs> DescribeConfigs(IDictionary<string, string> explicitConfigs)
    {
        var list = new List<CreateTopicsResponse.CreatableTopicConfigs>();
        foreach (var def in ConfigCatalog.Topic.Values.OrderBy(d => d.Name, StringComparer.Ordinal))
        {
            var isSet = explicitConfigs.TryGetValue(def.Name, out var value);
            list.Add(new CreateTopicsResponse.CreatableTopicConfigs
            {
                Name = def.Name,
                Value = def.Sensitive ? null : isSet ? value : def.DefaultValue,
                ReadOnly = def.ReadOnly,
                ConfigSource = (sbyte)(isSet ? ConfigSource.DynamicTopicConfig : ConfigSource.DefaultConfig),
                IsSensitive = def.Sensitive,
            });
        }
        return list;
    }
}
