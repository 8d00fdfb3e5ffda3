using StreamPlatform.Protos.Grpc.Clients;

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
                (topic, partition) => watcher.Current.TryGetPartition(topic, partition, out _, out _));
        });
        services.AddHostedService<GroupCoordinatorHost>();
        return services;
    }
}
