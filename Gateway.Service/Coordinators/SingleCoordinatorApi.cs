using Grpc.Core;
using StreamPlatform.Gateway.Apis;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Coordinators;

/// <summary>
/// An API whose request names one coordinator key (a group id, or a transactional id): forwarded
/// as it is to the key's coordinator broker. No coordinator (internal topic missing or
/// leaderless) or an unreachable broker: COORDINATOR_NOT_AVAILABLE, so the client looks the
/// coordinator up again. A broker that no longer coordinates the key answers NOT_COORDINATOR itself.
/// </summary>
public abstract class SingleCoordinatorApi<TRequest, TResponse, TClient>(CoordinatorRouter router, CoordinatorKind kind) : ApiHandler<TRequest>
    where TRequest : class, IKafkaRequest, new()
    where TResponse : class, IKafkaResponse, new()
    where TClient : class
{
    /// <summary>Deadline of calls that do not wait for a rebalance (plus the gateway's broker call margin).</summary>
    public const int PlainCallWaitMs = CoordinatorRouter.PlainCallWaitMs;

    protected CoordinatorRouter Router => router;

    protected abstract string? KeyOf(TRequest request);

    /// <summary>The answer to a key that is null or empty: INVALID_GROUP_ID for groups; INVALID_REQUEST for transactional ids (Kafka's TransactionCoordinator).</summary>
    protected virtual ErrorCode EmptyKeyError => kind == CoordinatorKind.Group ? ErrorCode.InvalidGroupId : ErrorCode.InvalidRequest;

    protected abstract TResponse ErrorResponse(TRequest request, short version, ErrorCode error);

    /// <summary>Makes the typed client over a broker's channel.</summary>
    protected abstract Func<CallInvoker, TClient> CreateClient { get; }

    /// <summary>Which call of <typeparamref name="TClient"/> the request uses.</summary>
    protected abstract KafkaBodyCall<TClient> BodyCall { get; }

    /// <summary>The API's authorization checks (Kafka's KafkaApis, via IAuthorizer) before anything else: an error answers the whole request; None forwards it.</summary>
    protected virtual ErrorCode Authorize(TRequest request, RequestContext context) => ErrorCode.None;

    /// <summary>How long the coordinator may legitimately hold the request (JoinGroup/SyncGroup wait for the rebalance).</summary>
    protected virtual int WaitMs(TRequest request) => PlainCallWaitMs;

    protected override async Task<IKafkaResponse?> HandleAsync(TRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var denied = Authorize(request, context);
        if (denied != ErrorCode.None) return ErrorResponse(request, context.ApiVersion, denied);
        var key = KeyOf(request);
        if (string.IsNullOrEmpty(key)) return ErrorResponse(request, context.ApiVersion, EmptyKeyError);
        var (error, broker) = router.Coordinator(router.Watcher.Current, kind, key);
        if (broker is null) return ErrorResponse(request, context.ApiVersion, error);
        var response = await router.ForwardAsync<TClient, TResponse>(broker, CreateClient, BodyCall, request, context, WaitMs(request), cancellationToken).ConfigureAwait(false);
        return response ?? ErrorResponse(request, context.ApiVersion, ErrorCode.CoordinatorNotAvailable);
    }
}
