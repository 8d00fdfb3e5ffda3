using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

// ApiVersions v0-v4 (up to the codec's highest). Lists every API in the ApiRegistry with the
// version range its handler serves. No supported or finalized features (finalized epoch -1 is
// the default and is left out of the tagged section). A request at a version we do not know is
// answered by the connection itself with UNSUPPORTED_VERSION (35) and this list in a v0
// response, as Kafka does, so clients retry with a version from the list.
public sealed class ApiVersionsApi(ApiRegistry registry) : ApiHandler<ApiVersionsRequest>
{
    public override ApiKey Key => ApiKey.ApiVersions;
    public override short MinVersion => 0;
    public override short MaxVersion => Math.Min((short)4, ApiVersionsResponse.HighestSupportedVersion);

    protected override Task<IKafkaResponse?> HandleAsync(ApiVersionsRequest request, RequestContext context, CancellationToken cancellationToken)
        => Task.FromResult<IKafkaResponse?>(registry.BuildApiVersionsResponse(ErrorCode.None));
}
