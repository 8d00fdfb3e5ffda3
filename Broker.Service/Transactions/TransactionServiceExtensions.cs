using Microsoft.Extensions.Options;
using StreamPlatform.Broker.Services;
using StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.Broker.Transactions;

public static class TransactionServiceExtensions
{
    /// <summary>Producer-id blocks and the transaction coordinator (issue 13).</summary>
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
        services.AddSingleton<TransactionCoordinator>();
        return services;
    }

    /// <summary>Serves TransactionCoordinatorService (called from Program.cs).</summary>
    public static WebApplication MapTransactionCoordinator(this WebApplication app)
    {
        app.MapGrpcService<TransactionCoordinatorGrpcService>();
        return app;
    }
}
