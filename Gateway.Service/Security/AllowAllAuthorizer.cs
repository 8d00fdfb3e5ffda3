using StreamPlatform.Gateway.Apis;

namespace StreamPlatform.Gateway.Security;

/// <summary>No authorizer configured: every operation is allowed, as in a Kafka cluster without one.</summary>
public sealed class AllowAllAuthorizer : IAuthorizer
{
    public bool Authorize(RequestContext context, AclOperation operation, AclResourceType resourceType, string resourceName) => true;
}
