namespace StreamPlatform.AppHost.Orchestration;

/// <summary>
/// The declarative model of a cluster: one controller, N brokers, M gateways, their named
/// endpoints and ports, references (brokers and gateways reference the controller's grpc
/// endpoint) and extra settings. Hosting-specific values (addresses, data paths) are filled in
/// by <see cref="ServiceEnvironment"/> for a given <see cref="HostingContext"/>.
/// </summary>
public sealed class ClusterTopology
{
    /// <summary>The controller's resource name. Services find it as "controller" (see <see cref="ServiceResource.DiscoveryName"/>).</summary>
    public const string ControllerName = "controller-1";

    private ClusterTopology(ClusterOptions options, IReadOnlyList<ServiceResource> resources)
    {
        Options = options;
        Resources = resources;
    }

    public ClusterOptions Options { get; }

    /// <summary>Resources in start order: controller, brokers, gateways.</summary>
    public IReadOnlyList<ServiceResource> Resources { get; }

    public ServiceResource Controller => Resources[0];

    public IEnumerable<ServiceResource> Brokers => Resources.Where(r => r.Kind == ServiceKind.Broker);

    public IEnumerable<ServiceResource> Gateways => Resources.Where(r => r.Kind == ServiceKind.Gateway);

    /// <summary>Kafka bootstrap servers for clients, e.g. "127.0.0.1:9092" (all gateways, comma-separated).</summary>
    public string BootstrapServers =>
        string.Join(",", Gateways.Select(g => $"127.0.0.1:{g.GetEndpoint(EndpointNames.Kafka).Port}"));

    public ServiceResource this[string name] =>
        Resources.FirstOrDefault(r => r.Name == name)
        ?? throw new KeyNotFoundException(
            $"No service named '{name}'. Services: {string.Join(", ", Resources.Select(r => r.Name))}.");

    public static string BrokerName(int brokerId) => $"broker-{brokerId}";

    public static string GatewayName(int nodeId) => $"gateway-{nodeId}";

    /// <summary>Builds and validates the model. Throws <see cref="ArgumentException"/> on bad options.</summary>
    public static ClusterTopology Create(ClusterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Brokers is < 1 or > ClusterOptions.BrokerCountMax)
            throw new ArgumentException($"Broker count must be 1..{ClusterOptions.BrokerCountMax}, got {options.Brokers}.");
        if (options.Gateways is < 1 or > ClusterOptions.GatewayCountMax)
            throw new ArgumentException($"Gateway count must be 1..{ClusterOptions.GatewayCountMax}, got {options.Gateways}.");
        if (string.IsNullOrWhiteSpace(options.DataDir))
            throw new ArgumentException("A data directory is required.");
        if (options.OtlpEndpoint is { } otlp && !Uri.TryCreate(otlp, UriKind.Absolute, out _))
            throw new ArgumentException($"OTLP endpoint '{otlp}' is not an absolute URL (e.g. http://127.0.0.1:4317).");

        var layout = options.Ports;
        var endpointCount = 2 + 2 * options.Brokers + 3 * options.Gateways;
        var dynamicPorts = layout.IsDynamic ? new Queue<int>(PortAllocation.FindFreePorts(endpointCount)) : null;

        int Port(string resource, ServiceKind kind, int index, string endpoint)
        {
            if (layout.Overrides.TryGetValue((resource, endpoint), out var overridden))
                return overridden;
            return dynamicPorts is not null ? dynamicPorts.Dequeue() : layout.FixedPort(kind, index, endpoint);
        }

        IReadOnlyDictionary<string, string> Settings(ServiceKind kind, string name)
        {
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            if (options.EnvironmentByKind.TryGetValue(kind, out var byKind))
                foreach (var (k, v) in byKind) result[k] = v;
            if (options.EnvironmentByResource.TryGetValue(name, out var byName))
                foreach (var (k, v) in byName) result[k] = v;
            return result;
        }

        var controllerRef = new ResourceReference(ControllerName, EndpointNames.Grpc);
        var resources = new List<ServiceResource>
        {
            new(ControllerName, ServiceKind.Controller, nodeId: 1,
                [
                    new EndpointSpec(EndpointNames.Http, Port(ControllerName, ServiceKind.Controller, 0, EndpointNames.Http), "http", false),
                    new EndpointSpec(EndpointNames.Grpc, Port(ControllerName, ServiceKind.Controller, 0, EndpointNames.Grpc), "http", true),
                ],
                [], Settings(ServiceKind.Controller, ControllerName), hasData: true),
        };
        for (var i = 1; i <= options.Brokers; i++)
        {
            var name = BrokerName(i);
            resources.Add(new ServiceResource(name, ServiceKind.Broker, nodeId: i,
                [
                    new EndpointSpec(EndpointNames.Http, Port(name, ServiceKind.Broker, i, EndpointNames.Http), "http", false),
                    new EndpointSpec(EndpointNames.Grpc, Port(name, ServiceKind.Broker, i, EndpointNames.Grpc), "http", true),
                ],
                [controllerRef], Settings(ServiceKind.Broker, name), hasData: true));
        }
        for (var j = 0; j < options.Gateways; j++)
        {
            var name = GatewayName(j + 1);
            resources.Add(new ServiceResource(name, ServiceKind.Gateway, nodeId: j + 1,
                [
                    new EndpointSpec(EndpointNames.Kafka, Port(name, ServiceKind.Gateway, j, EndpointNames.Kafka), "tcp", false),
                    new EndpointSpec(EndpointNames.Http, Port(name, ServiceKind.Gateway, j, EndpointNames.Http), "http", false),
                    new EndpointSpec(EndpointNames.Grpc, Port(name, ServiceKind.Gateway, j, EndpointNames.Grpc), "http", true),
                ],
                [controllerRef], Settings(ServiceKind.Gateway, name), hasData: false));
        }

        foreach (var name in options.EnvironmentByResource.Keys)
        {
            if (resources.All(r => r.Name != name))
                throw new ArgumentException($"Extra environment given for unknown service '{name}'.");
        }
        foreach (var ((resource, endpoint), _) in layout.Overrides)
        {
            var target = resources.FirstOrDefault(r => r.Name == resource)
                ?? throw new ArgumentException($"Port override for unknown service '{resource}'.");
            if (!target.TryGetEndpoint(endpoint, out _))
                throw new ArgumentException($"Port override for unknown endpoint '{resource}.{endpoint}'.");
        }

        var seen = new Dictionary<int, string>();
        foreach (var resource in resources)
        {
            foreach (var endpoint in resource.Endpoints)
            {
                if (endpoint.Port is < 1 or > 65535)
                    throw new ArgumentException($"Port {endpoint.Port} of {resource.Name}.{endpoint.Name} is outside 1..65535.");
                if (seen.TryGetValue(endpoint.Port, out var other))
                    throw new ArgumentException($"Port {endpoint.Port} is used by both {other} and {resource.Name}.{endpoint.Name}.");
                seen[endpoint.Port] = $"{resource.Name}.{endpoint.Name}";
            }
        }

        return new ClusterTopology(options, resources);
    }
}
