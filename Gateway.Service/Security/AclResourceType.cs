namespace StreamPlatform.Gateway.Security;

/// <summary>Kafka's ResourceType codes for ACLs (not ConfigResource.Type, whose codes differ).</summary>
public enum AclResourceType : byte
{
    Unknown = 0,
    Any = 1,
    Topic = 2,
    Group = 3,
    Cluster = 4,
    TransactionalId = 5,
    DelegationToken = 6,
    User = 7,
}
