using Grpc.Core;

namespace StreamPlatform.Protos.Grpc.Clients;

/// <summary>
/// The reconnect loop of a long-lived watch stream (metadata from the controller, append notices
/// from a broker): such streams bypass the standard resilience handler, so this is their retry.
/// Runs a session (open the stream, read it to its end) until stopped; after a session ends or
/// fails it waits a backoff that doubles from <c>min</c> to <c>max</c> while sessions fail
/// without progress, and starts again from <c>min</c> once a session reports progress (a message
/// received). Stopping (the token) ends the loop quietly, whatever the session was doing.
/// </summary>
public static class ReconnectingStream
{
    /// <param name="session">One stream's life; calls its first argument on every message (progress).</param>
    /// <param name="onEnded">Told how a session ended (null: the stream ended normally) and the delay before the next one.</param>
    public static async Task RunAsync(
        Func<Action, CancellationToken, Task> session,
        Action<Exception?, TimeSpan> onEnded,
        TimeProvider time,
        TimeSpan backoffMin,
        TimeSpan backoffMax,
        CancellationToken stop)
    {
        var backoff = backoffMin;
        void Progress() => backoff = backoffMin;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await session(Progress, stop).ConfigureAwait(false);
                if (stop.IsCancellationRequested) return;
                onEnded(null, backoff);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException ex) when (stop.IsCancellationRequested && ex.StatusCode == StatusCode.Cancelled)
            {
                return;
            }
            catch (Exception ex)
            {
                onEnded(ex, backoff);
            }
            try
            {
                await Task.Delay(backoff, time, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, backoffMax.Ticks));
        }
    }

    /// <summary>What to log about a broken stream: the gRPC status detail, else the exception's message.</summary>
    public static string Reason(Exception ex) => ex is RpcException rpc ? rpc.Status.Detail : ex.Message;
}
