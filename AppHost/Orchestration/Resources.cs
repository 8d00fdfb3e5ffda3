namespace StreamPlatform.AppHost.Orchestration;

/// <summary>The three process roles of a cluster (docs/ARCHITECTURE.md).</summary>
public enum ServiceKind
{
    Controller,
    Broker,
    Gateway,
}

/// <summary>Well-known endpoint names, as Aspire names them ("http", "grpc") plus the Kafka listener.</summary>
public static class EndpointNames
{
    public const string Http = "http";
    public const string Grpc = "grpc";
    public const string Kafka = "kafka";
}

/// <summary>
/// A named port a resource listens on. <paramref name="Scheme"/> is "http" for Kestrel endpoints
/// (health and gRPC) and "tcp" for the Kafka listener; <paramref name="Http2Only"/> marks gRPC
/// endpoints, which run cleartext HTTP/2 (h2c) and so must not offer HTTP/1.1.
/// </summary>
public sealed record EndpointSpec(string Name, int Port, string Scheme, bool Http2Only);

/// <summary>
/// Like Aspire's WithReference(resource.GetEndpoint(name)): the referencing resource is told
/// where <paramref name="Resource"/>'s <paramref name="Endpoint"/> is, through
/// services__{Resource}__{Endpoint}__0.
/// </summary>
public sealed record ResourceReference(string Resource, string Endpoint);

/// <summary>
/// One process of the cluster, declared without saying how it is hosted: the local orchestrator
/// turns it into a process with 127.0.0.1 URLs; a Kubernetes generator can turn the same model
/// into a Deployment/StatefulSet with service DNS names (see <see cref="HostingContext"/>).
/// </summary>
public sealed class ServiceResource
{
    public ServiceResource(
        string name,
        ServiceKind kind,
        int nodeId,
        IReadOnlyList<EndpointSpec> endpoints,
        IReadOnlyList<ResourceReference> references,
        IReadOnlyDictionary<string, string> settings,
        bool hasData)
    {
        Name = name;
        Kind = kind;
        NodeId = nodeId;
        Endpoints = endpoints;
        References = references;
        Settings = settings;
        HasData = hasData;
    }

    /// <summary>Resource name: "controller-1", "broker-1", "gateway-1": the Aspire resource and the log prefix.</summary>
    public string Name { get; }

    /// <summary>
    /// The name other services look this one up by (services__{DiscoveryName}__{endpoint}__N):
    /// "controller" for the controller, whose quorum members are found under one name, else
    /// <see cref="Name"/>.
    /// </summary>
    public string DiscoveryName => Kind == ServiceKind.Controller ? "controller" : Name;

    public ServiceKind Kind { get; }

    /// <summary>Controller__NodeId, Broker__BrokerId or Gateway__NodeId.</summary>
    public int NodeId { get; }

    public IReadOnlyList<EndpointSpec> Endpoints { get; }

    public IReadOnlyList<ResourceReference> References { get; }

    /// <summary>Extra configuration (environment variable name -> value) given for this resource.</summary>
    public IReadOnlyDictionary<string, string> Settings { get; }

    /// <summary>True when the service keeps state on disk (controller and brokers).</summary>
    public bool HasData { get; }

    /// <summary>The project (and assembly) that implements this role.</summary>
    public string ProjectName => Kind switch
    {
        ServiceKind.Controller => "Controller.Service",
        ServiceKind.Broker => "Broker.Service",
        ServiceKind.Gateway => "Gateway.Service",
        _ => throw new InvalidOperationException($"Unknown service kind {Kind}."),
    };

    /// <summary>Lower-case role name, used as OTEL_SERVICE_NAME.</summary>
    public string RoleName => Kind.ToString().ToLowerInvariant();

    public EndpointSpec GetEndpoint(string name) =>
        Endpoints.FirstOrDefault(e => e.Name == name)
        ?? throw new InvalidOperationException($"Resource '{Name}' has no endpoint named '{name}'.");

    public bool TryGetEndpoint(string name, out EndpointSpec endpoint)
    {
        endpoint = Endpoints.FirstOrDefault(e => e.Name == name)!;
        return endpoint is not null;
    }

    public override string ToString() => Name;
}
