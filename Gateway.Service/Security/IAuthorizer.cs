using StreamPlatform.Gateway.Apis;

namespace StreamPlatform.Gateway.Security;

/// <summary>
/// Decides whether the client of a request may perform an operation on a resource (Kafka's
/// Authorizer). Handlers ask it; today <see cref="AllowAllAuthorizer"/> answers (a Kafka cluster
/// without authorizer.class.name), ACLs will back it later.
/// </summary>
public interface IAuthorizer
{
    bool Authorize(RequestContext context, AclOperation operation, AclResourceType resourceType, string resourceName);
}
