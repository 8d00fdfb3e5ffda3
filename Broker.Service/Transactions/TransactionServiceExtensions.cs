using Microsoft.Extensions.Options;
using StreamPlatform.Broker.Groups;
using StreamPlatform.Broker.Services;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.Broker.Transactions;

public static class TransactionServiceExtensions
{
    /// <summary>Producer-id blocks, the transaction coordinator over __transaction_state, and the KIP-890 verifier (issue 13).</summary>
    public static IServiceCollection AddTransactionCoordinator(this IServiceCollection services)
    {
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<BrokerOptions>>().Value;
            var registration = sp.GetRequiredService<BrokerRegistration>();
            // The broker's one controller channel (the client registration and heartbeats use).
            return new ProducerIdManager(sp.GetRequiredService<ControllerService.ControllerServiceClient>(), options.BrokerId,
                () => registration.Registered ? registration.BrokerEpoch : -1, sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<ILogger<ProducerIdManager>>(), options.ControllerCallTimeoutMs);
        });
        services.AddSingleton<TransactionConfigSource>();
        services.AddSingleton(sp =>
        {
            var config = sp.GetRequiredService<TransactionConfigSource>();
            return new TransactionStateManager(sp.GetRequiredService<TimeProvider>(), () => config.Current, sp.GetRequiredService<ILogger<TransactionStateManager>>());
        });
        services.AddSingleton(sp =>
        {
            var watcher = sp.GetRequiredService<MetadataWatcher>();
            return new TransactionMarkerSender(sp.GetRequiredService<TransactionStateManager>(), () => watcher.Current,
                sp.GetRequiredService<BrokerChannels>().Invoker, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<TransactionMarkerSender>>());
        });
        services.AddSingleton(sp =>
        {
            var watcher = sp.GetRequiredService<MetadataWatcher>();
            var groupConfig = sp.GetRequiredService<GroupConfigSource>();
            return new TransactionCoordinator(sp.GetRequiredService<TransactionStateManager>(), sp.GetRequiredService<ProducerIdManager>(),
                sp.GetRequiredService<TransactionMarkerSender>(), (topic, partition) => watcher.Current.TryGetPartition(topic, partition, out _, out _),
                () => groupConfig.Current.OffsetsTopicPartitions, sp.GetRequiredService<ILogger<TransactionCoordinator>>());
        });
        services.AddSingleton<ITransactionVerifier>(sp =>
        {
            var watcher = sp.GetRequiredService<MetadataWatcher>();
            var options = sp.GetRequiredService<IOptions<BrokerOptions>>().Value;
            return new TransactionVerifier(sp.GetRequiredService<TransactionCoordinator>(), () => watcher.Current, sp.GetRequiredService<BrokerChannels>().Invoker,
                options.BrokerId, options.ControllerCallTimeoutMs, sp.GetRequiredService<ILogger<TransactionVerifier>>());
        });
        services.AddHostedService<TransactionCoordinatorHost>();
        return services;
    }

    /// <summary>Serves TransactionCoordinatorService (called from Program.cs).</summary>
    public static WebApplication MapTransactionCoordinator(this WebApplication app)
    {
        app.MapGrpcService<TransactionCoordinatorGrpcService>();
        return app;
    }
}
