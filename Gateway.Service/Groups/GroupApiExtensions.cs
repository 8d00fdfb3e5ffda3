using StreamPlatform.Gateway.Apis;

namespace StreamPlatform.Gateway.Groups;

public static class GroupApiExtensions
{
    /// <summary>The consumer group APIs (FindCoordinator and everything forwarded to coordinators) and their router.</summary>
    public static IServiceCollection AddGroupApis(this IServiceCollection services)
    {
        services.AddSingleton<GroupRouter>();
        services.AddSingleton<IApiHandler, FindCoordinatorApi>();
        services.AddSingleton<IApiHandler, JoinGroupApi>();
        services.AddSingleton<IApiHandler, SyncGroupApi>();
        services.AddSingleton<IApiHandler, HeartbeatApi>();
        services.AddSingleton<IApiHandler, LeaveGroupApi>();
        services.AddSingleton<IApiHandler, OffsetCommitApi>();
        services.AddSingleton<IApiHandler, OffsetFetchApi>();
        services.AddSingleton<IApiHandler, OffsetDeleteApi>();
        services.AddSingleton<IApiHandler, ListGroupsApi>();
        services.AddSingleton<IApiHandler, DescribeGroupsApi>();
        services.AddSingleton<IApiHandler, DeleteGroupsApi>();
        services.AddSingleton<IApiHandler, ConsumerGroupHeartbeatApi>();
        services.AddSingleton<IApiHandler, ConsumerGroupDescribeApi>();
        return services;
    }
}
