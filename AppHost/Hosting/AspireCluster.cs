using System.Net.Sockets;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.AppHost.Hosting;

/// <summary>
/// Turns the cluster's model (<see cref="ClusterTopology"/>) into Aspire project resources: one per
/// service, named as the topology names them (controller-1, broker-1.., gateway-1..), with the
/// topology's ports as non-proxied endpoints (clients reach the gateway process itself, as Kafka
/// clients must), the environment <see cref="ServiceEnvironment"/> gives, a /health check, and
/// WaitFor ordering: the controller, then the brokers, then the gateways.
/// </summary>
public static class AspireCluster
{
    /// <summary>Environment variables Aspire sets for project resources that our own settings replace.</summary>
    private static readonly string[] AspireBindingVariables = ["ASPNETCORE_URLS", "HTTP_PORTS", "HTTPS_PORTS"];

    public static IReadOnlyDictionary<string, IResourceBuilder<ProjectResource>> AddStreamPlatform(
        this IDistributedApplicationBuilder builder, ClusterTopology topology, ClusterTelemetry telemetry)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(topology);
        var hosting = HostingContext.Local(topology.Options.DataDir);
        var added = new Dictionary<string, IResourceBuilder<ProjectResource>>(StringComparer.Ordinal);
        var controllers = new List<IResourceBuilder<ProjectResource>>();
        var brokers = new List<IResourceBuilder<ProjectResource>>();

        foreach (var resource in topology.Resources)
        {
            // launchProfileName: null: the services have no launch profiles; every setting comes from here.
            var project = resource.Kind switch
            {
                ServiceKind.Controller => builder.AddProject<Projects.Controller_Service>(resource.Name, launchProfileName: null),
                ServiceKind.Broker => builder.AddProject<Projects.Broker_Service>(resource.Name, launchProfileName: null),
                ServiceKind.Gateway => builder.AddProject<Projects.Gateway_Service>(resource.Name, launchProfileName: null),
                _ => throw new ArgumentOutOfRangeException(nameof(topology), resource.Kind, "Unknown service kind."),
            };

            foreach (var endpoint in resource.Endpoints)
            {
                project.WithEndpoint(
                    port: endpoint.Port,
                    targetPort: endpoint.Port,
                    scheme: endpoint.Scheme,
                    name: endpoint.Name,
                    isProxied: false,
                    protocol: ProtocolType.Tcp);
                // The address the service binds (ServiceEnvironment's listen host), so the URLs
                // Aspire shows and hands out are the ones clients and the gateway's advertised
                // address use, not "localhost" (which may resolve to ::1 first).
                project.WithEndpoint(endpoint.Name, e => e.TargetHost = hosting.ListenHost, createIfNotExists: false);
            }

            var environment = ServiceEnvironment.Build(topology, resource, hosting);
            project.WithEnvironment(context =>
            {
                foreach (var name in AspireBindingVariables)
                    context.EnvironmentVariables.Remove(name);
                foreach (var (name, value) in environment)
                {
                    // Aspire names the telemetry of a resource after the resource (OTEL_SERVICE_NAME,
                    // service.instance.id) so the dashboard can match them: keep its values.
                    if (name is "OTEL_SERVICE_NAME" or "OTEL_RESOURCE_ATTRIBUTES")
                        continue;
                    context.EnvironmentVariables[name] = value;
                }
                telemetry.Apply(context.EnvironmentVariables);
            });
            project.WithHttpHealthCheck("/health", endpointName: EndpointNames.Http);

            switch (resource.Kind)
            {
                case ServiceKind.Controller:
                    controllers.Add(project);
                    break;
                case ServiceKind.Broker:
                    foreach (var controller in controllers)
                        project.WaitFor(controller);
                    brokers.Add(project);
                    break;
                case ServiceKind.Gateway:
                    foreach (var controller in controllers)
                        project.WaitFor(controller);
                    foreach (var broker in brokers)
                        project.WaitFor(broker);
                    break;
            }
            added.Add(resource.Name, project);
        }
        return added;
    }
}
