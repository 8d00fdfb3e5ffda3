using Grpc.Core;
using Grpc.Net.Client;
using StreamPlatform.Protos.Grpc.Controller;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Cluster;

/// <summary>The channel to the controller, shared by registration, the metadata watch and admin APIs.</summary>
public sealed class ControllerConnection(GrpcChannel channel) : IDisposable
{
    public GrpcChannel Channel { get; } = channel;
    public ControllerService.ControllerServiceClient Client { get; } = new(channel);
    public void Dispose() => Channel.Dispose();

    /// <summary>
    /// The Kafka error for what an admin API asked of a controller call that failed: the deadline
    /// passing is REQUEST_TIMED_OUT (7); anything else (unreachable, restarting) NOT_CONTROLLER
    /// (41), which clients retry after refreshing metadata.
    /// </summary>
    public static ErrorCode ErrorFor(RpcException ex)
        => ex.StatusCode == StatusCode.DeadlineExceeded ? ErrorCode.RequestTimedOut : ErrorCode.NotController;

    /// <summary>
    /// Logs a controller call made for a client's request that failed. When the client went away
    /// (<paramref name="clientGone"/> cancelled) the call was cancelled with it: routine, logged
    /// at Debug as a client disconnect, never as the controller being unreachable (the status is
    /// then Cancelled, or Internal when the cancellation raced the response; see BrokerCaller).
    /// </summary>
    public static void LogFailure(ILogger logger, string what, RpcException ex, CancellationToken clientGone)
    {
        if (clientGone.IsCancellationRequested)
            logger.LogDebug("{What}: client disconnected, controller call cancelled ({Status})", what, ex.StatusCode);
        else
            logger.LogWarning("{What} failed: controller call {Status} {Detail}", what, ex.StatusCode, ex.Status.Detail);
    }
}
