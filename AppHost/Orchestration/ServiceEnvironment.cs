namespace StreamPlatform.AppHost.Orchestration;

/// <summary>
/// Hosting-specific facts the environment depends on: the address services bind, the address
/// others use to reach a resource, and each stateful resource's data directory. Local processes
/// bind and are reached on 127.0.0.1; a Kubernetes generator would bind 0.0.0.0 and advertise
/// the resource's service DNS name.
/// </summary>
public sealed record HostingContext(
    string ListenHost,
    Func<ServiceResource, string> AdvertisedHost,
    Func<ServiceResource, string> DataDirectory)
{
    public static HostingContext Local(string dataRoot) => new(
        "127.0.0.1",
        _ => "127.0.0.1",
        r => Path.Combine(Path.GetFullPath(dataRoot), r.Name));
}

/// <summary>
/// The environment variables of each service, exactly as docs/ARCHITECTURE.md lists them.
/// </summary>
public static class ServiceEnvironment
{
    public static IReadOnlyDictionary<string, string> Build(
        ClusterTopology topology, ServiceResource resource, HostingContext hosting)
    {
        var options = topology.Options;
        var env = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["ASPNETCORE_ENVIRONMENT"] = options.EnvironmentName,
            ["DOTNET_ENVIRONMENT"] = options.EnvironmentName,
            ["OTEL_SERVICE_NAME"] = resource.RoleName,
            ["OTEL_RESOURCE_ATTRIBUTES"] = $"service.instance.id={resource.Name}",
        };
        if (!string.IsNullOrWhiteSpace(options.OtlpEndpoint))
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = options.OtlpEndpoint;

        foreach (var endpoint in resource.Endpoints.Where(e => e.Scheme == "http"))
        {
            env[$"Kestrel__Endpoints__{endpoint.Name}__Url"] = $"http://{hosting.ListenHost}:{endpoint.Port}";
            if (endpoint.Http2Only)
                env[$"Kestrel__Endpoints__{endpoint.Name}__Protocols"] = "Http2";
        }

        // Aspire's service-discovery convention: services__{name}__{endpoint}__{index}.
        foreach (var reference in resource.References)
        {
            var target = topology[reference.Resource];
            var endpoint = target.GetEndpoint(reference.Endpoint);
            env[$"services__{target.DiscoveryName}__{endpoint.Name}__0"] =
                $"{endpoint.Scheme}://{hosting.AdvertisedHost(target)}:{endpoint.Port}";
        }

        var nodeId = resource.NodeId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        switch (resource.Kind)
        {
            case ServiceKind.Controller:
                env["Controller__NodeId"] = nodeId;
                env["Controller__DataDir"] = hosting.DataDirectory(resource);
                if (!string.IsNullOrWhiteSpace(options.ClusterId))
                    env["Controller__ClusterId"] = options.ClusterId;
                foreach (var (name, value) in options.EffectiveBrokerConfigs())
                    env[$"Controller__BrokerConfigs__{name}"] = value;
                break;
            case ServiceKind.Broker:
                env["Broker__BrokerId"] = nodeId;
                env["Broker__DataDir"] = hosting.DataDirectory(resource);
                env["Broker__AdvertisedGrpcEndpoint"] =
                    $"http://{hosting.AdvertisedHost(resource)}:{resource.GetEndpoint(EndpointNames.Grpc).Port}";
                break;
            case ServiceKind.Gateway:
                env["Gateway__NodeId"] = nodeId;
                env["Gateway__KafkaListenAddress"] = hosting.ListenHost;
                env["Gateway__KafkaPort"] = resource.GetEndpoint(EndpointNames.Kafka).Port
                    .ToString(System.Globalization.CultureInfo.InvariantCulture);
                env["Gateway__AdvertisedHost"] = hosting.AdvertisedHost(resource);
                break;
        }

        // Explicit extra settings win, so a test can override anything above.
        foreach (var (name, value) in resource.Settings)
            env[name] = value;
        return env;
    }
}
