using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Apis;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Gateway.Groups;
using StreamPlatform.Gateway.Kafka;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Gateway.Transactions;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.ServiceDefaults;

namespace StreamPlatform.Gateway;

public static class GatewayExtensions
{
    public static WebApplicationBuilder AddApplicationServices(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddGrpc();
        services.AddOptions<GatewayOptions>().Bind(builder.Configuration.GetSection(GatewayOptions.Section))
            .Validate(o => o.KafkaPort is > 0 and <= 65535, "Gateway:KafkaPort must be 1-65535")
            .Validate(o => o.MaxFrameBytes > 0, "Gateway:MaxFrameBytes must be positive")
            .Validate(o => o.MaxInFlightRequestsPerConnection > 0, "Gateway:MaxInFlightRequestsPerConnection must be positive")
            .Validate(o => o.MaxInFlightRequestBytes > 0, "Gateway:MaxInFlightRequestBytes must be positive")
            .Validate(o => o.MaxUnauthenticatedFrameBytes > 0, "Gateway:MaxUnauthenticatedFrameBytes must be positive")
            .Validate(o => o.FrameReadTimeoutMs > 0, "Gateway:FrameReadTimeoutMs must be positive")
            .Validate(o => o.ConnectionsMaxIdleMs > 0, "Gateway:ConnectionsMaxIdleMs must be positive")
            .Validate(o => o.MaxConnections > 0, "Gateway:MaxConnections must be positive")
            .Validate(o => o.MaxConnectionsPerIp > 0, "Gateway:MaxConnectionsPerIp must be positive")
            .Validate(o => o.MaxQueuedResponseBytesPerConnection > 0, "Gateway:MaxQueuedResponseBytesPerConnection must be positive")
            .ValidateOnStart();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<GatewayMetrics>();
        services.AddSingleton(sp => new RequestMemoryBudget(sp.GetRequiredService<IOptions<GatewayOptions>>().Value.MaxInFlightRequestBytes));
        services.AddSingleton(sp => new ConnectionLimiter(sp.GetRequiredService<IOptions<GatewayOptions>>().Value));
        services.AddSingleton(sp => new ControllerConnection(
            GrpcChannels.Create(ServiceEndpoints.ResolveRequired(sp.GetRequiredService<IConfiguration>(), "controller", "grpc"))));
        services.AddSingleton(sp => new MetadataWatcher(
            sp.GetRequiredService<ControllerConnection>().Channel,
            $"gateway-{sp.GetRequiredService<IOptions<GatewayOptions>>().Value.NodeId}",
            sp.GetRequiredService<ILogger<MetadataWatcher>>(),
            sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<AppendSignals>();
        services.AddSingleton(sp => new BrokerClientPool(
            time: sp.GetRequiredService<TimeProvider>(), logger: sp.GetRequiredService<ILogger<BrokerClientPool>>(),
            appendSignals: sp.GetRequiredService<AppendSignals>()));
        services.AddSingleton<TopicAdmin>();
        services.AddSingleton<GatewayRegistration>();
        services.AddHostedService(sp => sp.GetRequiredService<GatewayRegistration>());
        services.AddHealthChecks().AddCheck<GatewayRegistration>("gateway-registered");

        // No ACLs yet: every operation is allowed (a Kafka cluster without authorizer.class.name).
        services.AddSingleton<StreamPlatform.Gateway.Security.IAuthorizer, StreamPlatform.Gateway.Security.AllowAllAuthorizer>();
        services.AddSingleton<IApiHandler, MetadataApi>();
        services.AddSingleton<IApiHandler, ProduceApi>();
        services.AddSingleton<IApiHandler, FetchApi>();
        services.AddSingleton<IApiHandler, ListOffsetsApi>();
        services.AddSingleton<IApiHandler, CreateTopicsApi>();
        services.AddSingleton<IApiHandler, DeleteTopicsApi>();
        services.AddSingleton<IApiHandler, CreatePartitionsApi>();
        services.AddSingleton<IApiHandler, ElectLeadersApi>();
        services.AddSingleton<IApiHandler, AlterPartitionReassignmentsApi>();
        services.AddSingleton<IApiHandler, ListPartitionReassignmentsApi>();
        services.AddSingleton<IApiHandler, DescribeConfigsApi>();
        services.AddSingleton<IApiHandler, DescribeClusterApi>();
        services.AddSingleton<ConfigAlterations>();
        services.AddSingleton<IApiHandler, DeleteRecordsApi>();
        services.AddSingleton<IApiHandler, AlterConfigsApi>();
        services.AddSingleton<IApiHandler, IncrementalAlterConfigsApi>();
        services.AddSingleton<IApiHandler, DescribeLogDirsApi>();
        services.AddCoordinatorRouting();
        services.AddGroupApis();
        services.AddTransactionApis();
        services.AddSingleton(sp => new ApiRegistry(sp.GetServices<IApiHandler>()));

        // The Kafka listener, in addition to the http/grpc endpoints from Kestrel:Endpoints config.
        var kafka = new GatewayOptions();
        builder.Configuration.GetSection(GatewayOptions.Section).Bind(kafka);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            if (IPAddress.TryParse(kafka.KafkaListenAddress, out var address))
                kestrel.Listen(address, kafka.KafkaPort, l => l.UseConnectionHandler<KafkaConnectionHandler>());
            else if (string.Equals(kafka.KafkaListenAddress, "localhost", StringComparison.OrdinalIgnoreCase))
                kestrel.ListenLocalhost(kafka.KafkaPort, l => l.UseConnectionHandler<KafkaConnectionHandler>());
            else
                throw new InvalidOperationException($"Gateway:KafkaListenAddress '{kafka.KafkaListenAddress}' is not an IP address or localhost.");
        });
        return builder;
    }
}
