using Grpc.Net.Client;
using StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.Gateway.Cluster;

/// <summary>The channel to the controller, shared by registration, the metadata watch and admin APIs.</summary>
public sealed class ControllerConnection(GrpcChannel channel) : IDisposable
{
    public GrpcChannel Channel { get; } = channel;
    public ControllerService.ControllerServiceClient Client { get; } = new(channel);
    public void Dispose() => Channel.Dispose();
}
