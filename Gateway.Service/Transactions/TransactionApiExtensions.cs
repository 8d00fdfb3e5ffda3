using StreamPlatform.Gateway.Apis;

namespace StreamPlatform.Gateway.Transactions;

public static class TransactionApiExtensions
{
    /// <summary>The idempotence and transaction APIs (forwarded to transaction coordinators, group coordinators and partition leaders); needs AddCoordinatorRouting.</summary>
    public static IServiceCollection AddTransactionApis(this IServiceCollection services)
    {
        services.AddSingleton<IApiHandler, InitProducerIdApi>();
        return services;
    }
}
