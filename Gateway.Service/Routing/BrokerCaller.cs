using Grpc.Core;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Broker;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Routing;

/// <summary>
/// One API's way of calling brokers: the client from the pool, a deadline from the injected
/// clock, and one place that logs a failed call and maps its gRPC status to the Kafka error the
/// call's partitions get. An endpoint the pool cannot use fails like an unreachable broker
/// (<see cref="StatusCode.Unavailable"/>), so callers handle one kind of failure.
/// </summary>
public sealed class BrokerCaller(BrokerClientPool brokers, TimeProvider time, ILogger logger, string apiName)
{
    /// <summary>Calls <paramref name="broker"/> with a deadline <paramref name="deadlineMs"/> from now; throws <see cref="RpcException"/> on failure.</summary>
    public async Task<TResponse> CallAsync<TResponse>(
        BrokerInfo broker,
        long deadlineMs,
        Func<BrokerService.BrokerServiceClient, DateTime, CancellationToken, AsyncUnaryCall<TResponse>> call,
        CancellationToken cancellationToken)
    {
        var client = brokers.GetClient(broker)
            ?? throw new RpcException(new Status(StatusCode.Unavailable, $"bad endpoint {broker.GrpcEndpoint}"));
        try
        {
            return await call(client, time.GetUtcNow().UtcDateTime.AddMilliseconds(deadlineMs), cancellationToken).ConfigureAwait(false);
        }
        catch (ObjectDisposedException ex)
        {
            // The channel was disposed by BrokerClientPool.Refresh while this call started (the
            // broker left the metadata): one kind of failure for callers, like an unreachable broker.
            throw new RpcException(new Status(StatusCode.Unavailable, $"channel to {broker.GrpcEndpoint} closed", ex));
        }
    }

    /// <summary>
    /// Starts a call of a custom-marshalled <paramref name="method"/> with a deadline
    /// <paramref name="deadlineMs"/> from now; null when the endpoint is unusable (fail it like
    /// an unreachable broker). The caller owns the call: dispose it to cancel it.
    /// </summary>
    public AsyncUnaryCall<TResponse>? Start<TRequest, TResponse>(BrokerInfo broker, Method<TRequest, TResponse> method, TRequest request,
        long deadlineMs, CancellationToken cancellationToken)
        where TRequest : class where TResponse : class
    {
        var invoker = brokers.GetInvoker(broker);
        try
        {
            return invoker?.AsyncUnaryCall(method, null,
                new CallOptions(deadline: time.GetUtcNow().UtcDateTime.AddMilliseconds(deadlineMs), cancellationToken: cancellationToken), request);
        }
        catch (ObjectDisposedException)
        {
            // BrokerClientPool.Refresh disposed the channel between GetInvoker and the call (the
            // broker left the metadata): the same as an unreachable broker.
            return null;
        }
    }

    public void LogFailure(BrokerInfo broker, RpcException ex)
        => logger.LogWarning("{Api} call to broker {BrokerId} at {Endpoint} failed: {Status} {Detail}",
            apiName, broker.BrokerId, broker.GrpcEndpoint, ex.StatusCode, ex.Status.Detail);

    /// <summary>
    /// The Kafka error for the partitions of a failed call: the deadline passing is
    /// <paramref name="onDeadline"/> (REQUEST_TIMED_OUT 7 unless the API says otherwise); anything
    /// else (unreachable, channel disposed, broker crashed mid-call) is NOT_LEADER_OR_FOLLOWER (6),
    /// so the client refreshes metadata and retries against the current leader.
    /// </summary>
    public static ErrorCode ErrorFor(RpcException ex, ErrorCode onDeadline = ErrorCode.RequestTimedOut)
        => ex.StatusCode == StatusCode.DeadlineExceeded ? onDeadline : ErrorCode.NotLeaderOrFollower;
}
