using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using Ctl = StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.Gateway.Apis;

// IncrementalAlterConfigs v0-v1: per config SET (0), DELETE (1), APPEND (2), SUBTRACT (3), for
// topics (resource type 2), the cluster-wide broker default (type 4, empty name), one broker
// (type 4, name = broker id: a per-broker dynamic value, DYNAMIC_BROKER_CONFIG) and groups
// (type 32, KIP-848 group configs such as consumer.session.timeout.ms, applied by the group
// coordinator). Validated and recorded by the controller (see docs/CONTROLLER.md):
// UNKNOWN_TOPIC_OR_PARTITION (3), INVALID_CONFIG (40: unknown key, bad value, list op on a
// non-list, group values out of the broker's group.* bounds), INVALID_REQUEST (42: duplicate
// resource or key, unknown op or resource type, a broker config Kafka cannot update dynamically,
// a broker name that is not a non-negative int, an empty group name). Each resource is all or
// nothing; brokers apply the change from metadata without a restart.
public sealed class IncrementalAlterConfigsApi(ConfigAlterations alterations) : ApiHandler<IncrementalAlterConfigsRequest>
{
    public override ApiKey Key => ApiKey.IncrementalAlterConfigs;
    public override short MinVersion => 0;
    public override short MaxVersion => Math.Min((short)1, IncrementalAlterConfigsResponse.HighestSupportedVersion);
    public override bool Sequential => true;

    protected override async Task<IKafkaResponse?> HandleAsync(IncrementalAlterConfigsRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var forward = new Ctl.AlterConfigsRequest { ValidateOnly = request.ValidateOnly };
        foreach (var resource in request.Resources)
        {
            var r = new Ctl.AlterConfigsResource { ResourceType = resource.ResourceType, ResourceName = resource.ResourceName };
            foreach (var c in resource.Configs)
            {
                var config = new Ctl.AlterableConfig { Name = c.Name, Op = c.ConfigOperation };
                if (c.Value is not null) config.Value = c.Value;
                r.Configs.Add(config);
            }
            forward.Resources.Add(r);
        }
        var results = await alterations.AlterAsync(forward, cancellationToken).ConfigureAwait(false);
        var response = new IncrementalAlterConfigsResponse();
        for (var i = 0; i < request.Resources.Count; i++)
        {
            response.Responses.Add(new IncrementalAlterConfigsResponse.AlterConfigsResourceResponse
            {
                ResourceType = request.Resources[i].ResourceType,
                ResourceName = request.Resources[i].ResourceName,
                ErrorCode = results[i].ErrorCode,
                ErrorMessage = results[i].ErrorMessage,
            });
        }
        return response;
    }
}
