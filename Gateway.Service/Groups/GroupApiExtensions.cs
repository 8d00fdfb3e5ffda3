using StreamPlatform.Gateway.Apis;
using StreamPlatform.Gateway.Coordinators;

namespace StreamPlatform.Gateway.Groups;

public static class GroupApiExtensions
{
    /// <summary>The coordinators' router and internal topics, shared by the group and transaction APIs.</summary>
    public static IServiceCollection AddCoordinatorRouting(this IServiceCollection services)
    {
        services.AddSingleton<CoordinatorTopics>();
        services.AddSingleton<CoordinatorRouter>();
        return services;
    }

    /// <summary>The consumer group APIs (FindCoordinator and everything forwarded to group coordinators); needs <see cref="AddCoordinatorRouting"/>.</summary>
    public static IServiceCollection AddGroupApis(this IServiceCollection services)
    {
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
