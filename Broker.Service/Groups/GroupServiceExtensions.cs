using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Broker.Transactions;

namespace StreamPlatform.Broker.Groups;

public static class GroupServiceExtensions
{
    /// <summary>The classic group coordinator, its metadata follower and its config source.</summary>
    public static IServiceCollection AddGroupCoordinator(this IServiceCollection services)
    {
        services.AddSingleton<GroupConfigSource>();
        services.AddSingleton(sp =>
        {
            var watcher = sp.GetRequiredService<MetadataWatcher>();
            var config = sp.GetRequiredService<GroupConfigSource>();
            var coordinator = new GroupCoordinator(sp.GetRequiredService<TimeProvider>(), () => config.Current,
                sp.GetRequiredService<ILogger<GroupCoordinator>>(),
                (topic, partition) => watcher.Current.TryGetPartition(topic, partition, out _, out _))
            {
                TopicLookup = name => watcher.Current.TopicsByName.TryGetValue(name, out var t) && t.TopicId.Length == 16
                    ? new ServerAssignors.TopicMeta(name, TopicIds.ToGuid(t.TopicId), t.Partitions.Count)
                    : null,
                TopicNameById = id => watcher.Current.TopicsById.TryGetValue(id, out var t) ? t.Name : null,
                // Resolved at each TxnOffsetCommit (the transaction coordinator may be registered after us, or not at all).
                TransactionVerifier = () => sp.GetService<ITransactionVerifier>(),
            };
            sp.GetService<StreamPlatform.Broker.Services.BrokerMetrics>()?.ObserveGroups(coordinator, sp.GetRequiredService<StreamPlatform.Broker.Replication.ReplicaManager>());
            return coordinator;
        });
        // Markers written to __consumer_offsets decide the pending transactional offsets.
        services.AddSingleton<ITransactionMarkerObserver>(sp => sp.GetRequiredService<GroupCoordinator>());
        services.AddHostedService<GroupCoordinatorHost>();
        return services;
    }
}
