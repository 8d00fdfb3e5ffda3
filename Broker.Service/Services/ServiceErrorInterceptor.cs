using Grpc.Core;
using Grpc.Core.Interceptors;

namespace StreamPlatform.Broker.Services;

/// <summary>
/// Logs the failures of our own service methods, so that gRPC's own error log
/// (<c>Grpc.AspNetCore.Server.ServerCallHandler</c>, event 6) can be turned off in appsettings:
/// that event also fires for every call the gateway resets before the broker read its request
/// ("The client reset the request stream" from ReadSingleMessage, when the reset arrives before
/// the request-aborted token is set), routine when the gateway drops a fetch long poll. What
/// the filter hides besides is transport-level (reading or writing a message of a call the peer
/// abandoned; the gateway logs its side of any failed call). Not logged here, like gRPC does
/// not log them as errors: <see cref="RpcException"/> (a status chosen on purpose) and the
/// failures of a cancelled call's reads and writes. Logging happens in an exception filter: nothing is caught
/// or rethrown, and a call that completes synchronously costs no extra allocation.
/// </summary>
public sealed class ServiceErrorInterceptor(ILogger<ServiceErrorInterceptor> logger) : Interceptor
{
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Task<TResponse> task;
        try
        {
            task = continuation(request, context);
        }
        catch (Exception ex) when (LogIfFault(ex, context))
        {
            throw; // unreachable: the filter returns false
        }
        return task.IsCompletedSuccessfully ? task : Observed(task, context);
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(requestStream, context).ConfigureAwait(false);
        }
        catch (Exception ex) when (LogIfFault(ex, context))
        {
            throw;
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
        }
        catch (Exception ex) when (LogIfFault(ex, context))
        {
            throw;
        }
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(requestStream, responseStream, context).ConfigureAwait(false);
        }
        catch (Exception ex) when (LogIfFault(ex, context))
        {
            throw;
        }
    }

    private async Task<TResponse> Observed<TResponse>(Task<TResponse> task, ServerCallContext context)
    {
        try
        {
            return await task.ConfigureAwait(false);
        }
        catch (Exception ex) when (LogIfFault(ex, context))
        {
            throw;
        }
    }

    /// <summary>Always false (an exception filter that only observes).</summary>
    private bool LogIfFault(Exception ex, ServerCallContext context)
    {
        // On a call the peer abandoned, gRPC's own reader and writer fail with these:
        // OperationCanceledException or IOException ("The client reset the request stream."),
        // and InvalidOperationException ("Can't write the message because the request is
        // complete.") from a response write after the reset, e.g. a ProduceStream answer written
        // just after the gateway dropped the stream.
        var routine = ex is RpcException
            || (ex is OperationCanceledException or IOException or InvalidOperationException && context.CancellationToken.IsCancellationRequested);
        if (!routine)
            logger.LogError(ex, "Service method {Method} failed", context.Method);
        return false;
    }
}
