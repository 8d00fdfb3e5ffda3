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
}
