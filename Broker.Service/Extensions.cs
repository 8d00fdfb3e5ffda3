using Microsoft.Extensions.Options;
using StreamPlatform.Broker.Groups;
using StreamPlatform.Broker.Replication;
using StreamPlatform.Broker.Services;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Broker.Transactions;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Controller;
using StreamPlatform.Protos.Records;
using StreamPlatform.ServiceDefaults;

namespace StreamPlatform.Broker;

public static class BrokerServiceExtensions
{
    public static WebApplicationBuilder AddApplicationServices(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        var configuration = builder.Configuration;
        services.AddOptions<BrokerOptions>().Bind(configuration.GetSection(BrokerOptions.Section))
            .PostConfigure(o =>
            {
                if (string.IsNullOrWhiteSpace(o.AdvertisedGrpcEndpoint))
                    o.AdvertisedGrpcEndpoint = configuration["Kestrel:Endpoints:grpc:Url"] ?? "";
                if (string.IsNullOrWhiteSpace(o.DataDir))
                    o.DataDir = Path.Combine(AppContext.BaseDirectory, "data", $"broker-{o.BrokerId}");
            })
            .Validate(o => o.BrokerId >= 0, "Broker:BrokerId must be set (0 or more).")
            .Validate(o => Uri.TryCreate(o.AdvertisedGrpcEndpoint, UriKind.Absolute, out _), "Broker:AdvertisedGrpcEndpoint (or Kestrel:Endpoints:grpc:Url) must be an absolute URL.")
            .Validate(o => o.RetentionCheckIntervalMs > 0, "Broker:RetentionCheckIntervalMs must be positive.")
            .Validate(o => o.CleanerBackoffMs > 0, "Broker:CleanerBackoffMs must be positive.")
            .Validate(o => o.CleanerOffsetMapBytesMax >= PartitionLog.OffsetMapEntryBytes, "Broker:CleanerOffsetMapBytesMax must hold at least one entry.")
            .Validate(o => o.DecompressedBytesHeldMax >= CompressionCodecs.DecompressedBytesMaxDefault, "Broker:DecompressedBytesHeldMax must hold at least one batch's records (64 MiB).")
            .Validate(o => o.DecompressionWaitMs >= 0, "Broker:DecompressionWaitMs must not be negative.")
            .ValidateOnStart();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(sp => new LogManager(sp.GetRequiredService<IOptions<BrokerOptions>>().Value.DataDir,
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<LogManager>>(), sp.GetRequiredService<IOptions<BrokerOptions>>().Value.BrokerId));
        services.AddSingleton(sp => GrpcChannels.Create(ServiceEndpoints.ResolveRequired(configuration, "controller", "grpc")));
        services.AddSingleton(sp => new ControllerService.ControllerServiceClient(sp.GetRequiredService<Grpc.Net.Client.GrpcChannel>()));
        services.AddSingleton(sp => new MetadataWatcher(sp.GetRequiredService<Grpc.Net.Client.GrpcChannel>(),
            $"broker-{sp.GetRequiredService<IOptions<BrokerOptions>>().Value.BrokerId}",
            sp.GetRequiredService<ILogger<MetadataWatcher>>(), sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<BrokerMetrics>();
        services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<BrokerOptions>>().Value;
            return new DecompressionMemory(o.DecompressedBytesHeldMax, o.DecompressionWaitMs);
        });
        // One channel pool to other brokers: replica fetchers, transaction markers and verification share it.
        services.AddSingleton<BrokerChannels>();
        services.AddSingleton(sp => new ReplicaManager(sp.GetRequiredService<LogManager>(), sp.GetRequiredService<IOptions<BrokerOptions>>(),
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>(), sp.GetRequiredService<BrokerMetrics>(),
            sp.GetRequiredService<ControllerService.ControllerServiceClient>(), sp.GetRequiredService<BrokerChannels>().Invoker));
        services.AddSingleton<BrokerRegistration>();
        services.AddHostedService(sp => sp.GetRequiredService<BrokerRegistration>());
        // After the registration: stopped before it (hosted services stop in reverse order), so
        // fetchers end before the logs are closed.
        services.AddHostedService(sp => sp.GetRequiredService<ReplicaManager>());
        services.AddHostedService<LogFlushScheduler>();
        // WriteTxnMarkers: tells every registered ITransactionMarkerObserver (the group coordinator's).
        services.AddSingleton<StreamPlatform.Broker.Transactions.TransactionMarkerWriter>();
        services.AddHostedService(sp => new LogRetentionService(sp.GetRequiredService<LogManager>(), sp.GetRequiredService<TimeProvider>(),
            TimeSpan.FromMilliseconds(sp.GetRequiredService<IOptions<BrokerOptions>>().Value.RetentionCheckIntervalMs),
            sp.GetRequiredService<ILogger<LogRetentionService>>()));
        services.AddHostedService(sp =>
        {
            var o = sp.GetRequiredService<IOptions<BrokerOptions>>().Value;
            return new LogCleaner(sp.GetRequiredService<LogManager>(), new LogCleanerOptions(o.CleanerOffsetMapBytesMax, TimeSpan.FromMilliseconds(o.CleanerBackoffMs)),
                sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<LogCleaner>>());
        });
        services.AddGroupCoordinator();
        services.AddTransactionCoordinator();
        services.AddHealthChecks().AddCheck<BrokerReadinessCheck>("broker-ready").AddCheck<ReplicationHealthCheck>("replication");
        services.AddSingleton<ServiceErrorInterceptor>(); // one instance, not one per call
        services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = 104857600; // a produce may carry up to socket.request.max.bytes
            o.MaxSendMessageSize = 64 * 1024 * 1024;
            o.Interceptors.Add<ServiceErrorInterceptor>();
        });
        return builder;
    }
}
