using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using Ctl = StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.Gateway.Apis;

// AlterConfigs v0-v2 (the legacy, non-incremental form): the listed configs become the
// resource's whole set of explicit configs; any other explicit config is removed. Same resources
// (topics, the cluster-wide broker default, one broker id, KIP-848 groups) and error codes as
// IncrementalAlterConfigs (forwarded to the controller's AlterConfigs with replace_all); a null
// value is INVALID_REQUEST (42).
public sealed class AlterConfigsApi(ConfigAlterations alterations) : ApiHandler<AlterConfigsRequest>
{
    public override ApiKey Key => ApiKey.AlterConfigs;
    public override short MinVersion => 0;
    public override short MaxVersion => Math.Min((short)2, AlterConfigsResponse.HighestSupportedVersion);
    public override bool Sequential => true;

    protected override async Task<IKafkaResponse?> HandleAsync(AlterConfigsRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var forward = new Ctl.AlterConfigsRequest { ValidateOnly = request.ValidateOnly };
        foreach (var resource in request.Resources)
        {
            var r = new Ctl.AlterConfigsResource { ResourceType = resource.ResourceType, ResourceName = resource.ResourceName, ReplaceAll = true };
            foreach (var c in resource.Configs)
            {
                var config = new Ctl.AlterableConfig { Name = c.Name, Op = 0 };
                if (c.Value is not null) config.Value = c.Value;
                r.Configs.Add(config);
            }
            forward.Resources.Add(r);
        }
        var results = await alterations.AlterAsync(forward, cancellationToken).ConfigureAwait(false);
        var response = new AlterConfigsResponse();
        for (var i = 0; i < request.Resources.Count; i++)
        {
            response.Responses.Add(new AlterConfigsResponse.AlterConfigsResourceResponse
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
