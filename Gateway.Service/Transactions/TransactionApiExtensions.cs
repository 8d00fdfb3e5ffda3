using StreamPlatform.Gateway.Apis;

namespace StreamPlatform.Gateway.Transactions;

public static class TransactionApiExtensions
{
    /// <summary>The idempotence and transaction APIs (forwarded to transaction coordinators, group coordinators and partition leaders); needs AddCoordinatorRouting.</summary>
    public static IServiceCollection AddTransactionApis(this IServiceCollection services)
    {
        services.AddSingleton<IApiHandler, InitProducerIdApi>();
        services.AddSingleton<IApiHandler, AddPartitionsToTxnApi>();
        services.AddSingleton<IApiHandler, AddOffsetsToTxnApi>();
        services.AddSingleton<IApiHandler, EndTxnApi>();
        services.AddSingleton<IApiHandler, TxnOffsetCommitApi>();
        services.AddSingleton<IApiHandler, DescribeProducersApi>();
        services.AddSingleton<IApiHandler, DescribeTransactionsApi>();
        services.AddSingleton<IApiHandler, ListTransactionsApi>();
        return services;
    }
}
