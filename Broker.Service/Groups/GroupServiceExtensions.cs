using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc;

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
            return new GroupCoordinator(sp.GetRequiredService<TimeProvider>(), () => config.Current,
                sp.GetRequiredService<ILogger<GroupCoordinator>>(),
                (topic, partition) => watcher.Current.TryGetPartition(topic, partition, out _, out _))
            {
                TopicLookup = name => watcher.Current.TopicsByName.TryGetValue(name, out var t) && t.TopicId.Length == 16
                    ? new ServerAssignors.TopicMeta(name, TopicIds.ToGuid(t.TopicId), t.Partitions.Count)
                    : null,
                TopicNameById = id => watcher.Current.TopicsById.TryGetValue(id, out var t) ? t.Name : null,
            };
        });
        services.AddHostedService<GroupCoordinatorHost>();
        return services;
    }
}
