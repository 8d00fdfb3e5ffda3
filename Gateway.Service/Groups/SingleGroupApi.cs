using StreamPlatform.Gateway.Apis;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Groups;

/// <summary>
/// A group API whose request names one group: forwarded as it is to that group's coordinator
/// broker. No coordinator (offsets topic missing or leaderless) or an unreachable broker:
/// COORDINATOR_NOT_AVAILABLE, so the client looks the coordinator up again. A broker that no
/// longer coordinates the group answers NOT_COORDINATOR itself.
/// </summary>
public abstract class SingleGroupApi<TRequest, TResponse>(GroupRouter router) : ApiHandler<TRequest>
    where TRequest : class, IKafkaRequest, new()
    where TResponse : class, IKafkaResponse, new()
{
    /// <summary>Deadline of calls that do not wait for a rebalance (plus the gateway's broker call margin).</summary>
    public const int PlainCallWaitMs = 10_000;

    protected GroupRouter Router => router;

    protected abstract string GroupIdOf(TRequest request);

    protected abstract TResponse ErrorResponse(TRequest request, short version, ErrorCode error);

    protected abstract GroupCall Call { get; }

    /// <summary>How long the coordinator may legitimately hold the request (JoinGroup/SyncGroup wait for the rebalance).</summary>
    protected virtual int WaitMs(TRequest request) => PlainCallWaitMs;

    protected override async Task<IKafkaResponse?> HandleAsync(TRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var groupId = GroupIdOf(request);
        if (string.IsNullOrEmpty(groupId)) return ErrorResponse(request, context.ApiVersion, ErrorCode.InvalidGroupId);
        var (error, broker) = router.Coordinator(router.Watcher.Current, groupId);
        if (broker is null) return ErrorResponse(request, context.ApiVersion, error);
        var response = await router.ForwardAsync<TResponse>(broker, Call, request, context, WaitMs(request), cancellationToken).ConfigureAwait(false);
        return response ?? ErrorResponse(request, context.ApiVersion, ErrorCode.CoordinatorNotAvailable);
    }
}
