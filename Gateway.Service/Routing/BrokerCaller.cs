using System.Runtime.CompilerServices;
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
///
/// A call cancelled by the gateway (its token cancelled: the client went away; or disposed: a
/// dropped long poll) fails as <see cref="StatusCode.Cancelled"/>, and one whose deadline passed
/// as <see cref="StatusCode.DeadlineExceeded"/>, whatever Grpc.Net.Client reports: when the
/// cancellation lands just after the response headers arrived, it disposes the response and
/// then reads its body, failing with Internal "Error starting gRPC call. InvalidOperationException:
/// The stream was already consumed" (or ObjectDisposedException), which looked like a broker fault.
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
        var deadline = time.GetUtcNow().UtcDateTime.AddMilliseconds(deadlineMs);
        try
        {
            return await call(client, deadline, cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException ex) when (Reclassify(ex, cancellationToken.IsCancellationRequested, deadline) is { } cause)
        {
            throw cause;
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
        if (invoker is null) return null;
        var deadline = time.GetUtcNow().UtcDateTime.AddMilliseconds(deadlineMs);
        try
        {
            var call = invoker.AsyncUnaryCall(method, null, new CallOptions(deadline: deadline, cancellationToken: cancellationToken), request);
            var disposed = new StrongBox<bool>();
            return new AsyncUnaryCall<TResponse>(ResponseAsync(call.ResponseAsync, disposed, deadline, cancellationToken),
                call.ResponseHeadersAsync, call.GetStatus, call.GetTrailers, () =>
                {
                    disposed.Value = true;
                    call.Dispose();
                });
        }
        catch (ObjectDisposedException)
        {
            // BrokerClientPool.Refresh disposed the channel between GetInvoker and the call (the
            // broker left the metadata): the same as an unreachable broker.
            return null;
        }
    }

    private async Task<TResponse> ResponseAsync<TResponse>(Task<TResponse> response, StrongBox<bool> disposed, DateTime deadline,
        CancellationToken cancellationToken)
    {
        try
        {
            return await response.ConfigureAwait(false);
        }
        catch (RpcException ex) when (Reclassify(ex, Volatile.Read(ref disposed.Value) || cancellationToken.IsCancellationRequested, deadline) is { } cause)
        {
            throw cause;
        }
    }

    /// <summary>The failure as what it is when the gateway cancelled the call or its deadline passed; null when the status already says so or neither happened.</summary>
    private RpcException? Reclassify(RpcException ex, bool cancelled, DateTime deadline)
    {
        if (ex.StatusCode is StatusCode.Cancelled or StatusCode.DeadlineExceeded) return null;
        if (cancelled) return new RpcException(new Status(StatusCode.Cancelled, $"cancelled by the gateway ({ex.StatusCode}: {ex.Status.Detail})", ex));
        if (time.GetUtcNow().UtcDateTime >= deadline)
            return new RpcException(new Status(StatusCode.DeadlineExceeded, $"deadline passed ({ex.StatusCode}: {ex.Status.Detail})", ex));
        return null;
    }

    /// <summary>
    /// Logs a failed call: a warning, except a cancelled one (the client went away, a long poll
    /// was dropped), which is routine.
    /// </summary>
    public void LogFailure(BrokerInfo broker, RpcException ex)
    {
        if (ex.StatusCode == StatusCode.Cancelled)
            logger.LogDebug("{Api} call to broker {BrokerId} cancelled (client disconnected or call dropped): {Detail}",
                apiName, broker.BrokerId, ex.Status.Detail);
        else
            logger.LogWarning("{Api} call to broker {BrokerId} at {Endpoint} failed: {Status} {Detail}",
                apiName, broker.BrokerId, broker.GrpcEndpoint, ex.StatusCode, ex.Status.Detail);
    }

    /// <summary>
    /// The Kafka error for the partitions of a failed call: the deadline passing is
    /// <paramref name="onDeadline"/> (REQUEST_TIMED_OUT 7 unless the API says otherwise); anything
    /// else (unreachable, channel disposed, broker crashed mid-call) is NOT_LEADER_OR_FOLLOWER (6),
    /// so the client refreshes metadata and retries against the current leader.
    /// </summary>
    public static ErrorCode ErrorFor(RpcException ex, ErrorCode onDeadline = ErrorCode.RequestTimedOut)
        => ex.StatusCode == StatusCode.DeadlineExceeded ? onDeadline : ErrorCode.NotLeaderOrFollower;
}
