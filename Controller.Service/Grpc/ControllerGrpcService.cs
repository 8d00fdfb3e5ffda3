using Grpc.Core;
using StreamPlatform.Controller.Hosting;
using StreamPlatform.Controller.Metadata;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.Controller.Grpc;

/// <summary>The ControllerService gRPC surface; all logic lives in <see cref="MetadataController"/>.</summary>
public sealed class ControllerGrpcService(
    MetadataController controller,
    ControllerMetrics metrics,
    IHostApplicationLifetime lifetime,
    ILogger<ControllerGrpcService> logger) : ControllerService.ControllerServiceBase
{
    private static T Guard<T>(Func<T> call)
    {
        try
        {
            return call();
        }
        catch (ControllerNotReadyException ex)
        {
            // Clients retry UNAVAILABLE; the controller becomes available once replay finishes.
            throw new RpcException(new Status(StatusCode.Unavailable, ex.Message));
        }
    }

    public override Task<RegisterBrokerResponse> RegisterBroker(RegisterBrokerRequest request, ServerCallContext context)
        => Task.FromResult(Guard(() => controller.RegisterBroker(request)));

    public override Task<BrokerHeartbeatResponse> BrokerHeartbeat(BrokerHeartbeatRequest request, ServerCallContext context)
        => Task.FromResult(Guard(() => controller.BrokerHeartbeat(request)));

    public override Task<RegisterGatewayResponse> RegisterGateway(RegisterGatewayRequest request, ServerCallContext context)
        => Task.FromResult(Guard(() => controller.RegisterGateway(request)));

    public override Task<GatewayHeartbeatResponse> GatewayHeartbeat(GatewayHeartbeatRequest request, ServerCallContext context)
        => Task.FromResult(Guard(() => controller.GatewayHeartbeat(request)));

    public override Task<CreateTopicsResponse> CreateTopics(CreateTopicsRequest request, ServerCallContext context)
        => Guard(() => controller.CreateTopicsAsync(request, context.CancellationToken));

    public override Task<DeleteTopicsResponse> DeleteTopics(DeleteTopicsRequest request, ServerCallContext context)
        => Task.FromResult(Guard(() => controller.DeleteTopics(request)));

    public override Task<AlterConfigsResponse> AlterConfigs(AlterConfigsRequest request, ServerCallContext context)
        => Task.FromResult(Guard(() => controller.AlterConfigs(request)));

    public override Task<AlterPartitionResponse> AlterPartition(AlterPartitionRequest request, ServerCallContext context)
        => Task.FromResult(Guard(() => controller.AlterPartition(request)));

    public override Task<ElectLeadersResponse> ElectLeaders(ElectLeadersRequest request, ServerCallContext context)
        => Task.FromResult(Guard(() => controller.ElectLeaders(request)));

    public override Task<CreatePartitionsResponse> CreatePartitions(CreatePartitionsRequest request, ServerCallContext context)
        => Task.FromResult(Guard(() => controller.CreatePartitions(request)));

    public override Task<AlterReassignmentsResponse> AlterPartitionReassignments(AlterReassignmentsRequest request, ServerCallContext context)
        => Task.FromResult(Guard(() => controller.AlterPartitionReassignments(request)));

    public override Task<ListReassignmentsResponse> ListPartitionReassignments(ListReassignmentsRequest request, ServerCallContext context)
        => Task.FromResult(Guard(() => controller.ListPartitionReassignments(request)));

    public override Task<AllocateProducerIdsResponse> AllocateProducerIds(AllocateProducerIdsRequest request, ServerCallContext context)
        => Task.FromResult(Guard(() => controller.AllocateProducerIds(request)));

    public override Task<MetadataSnapshot> GetMetadata(GetMetadataRequest request, ServerCallContext context)
        => Task.FromResult(Guard(controller.GetMetadata));

    public override async Task WatchMetadata(WatchMetadataRequest request, IServerStreamWriter<MetadataUpdate> responseStream, ServerCallContext context)
    {
        Guard(() => controller.IsReady ? 0 : throw new ControllerNotReadyException());
        // Ends on client cancellation and on host shutdown, so Kestrel never waits on open watches.
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, lifetime.ApplicationStopping);
        metrics.WatcherStarted();
        logger.LogInformation("Metadata watcher {Watcher} connected (known epoch {KnownEpoch})", request.Watcher, request.KnownEpoch);
        try
        {
            await MetadataWatch.RunAsync(controller.Publisher, request.KnownEpoch,
                (snapshot, ct) => responseStream.WriteAsync(new MetadataUpdate { Snapshot = snapshot }, ct), cts.Token);
        }
        finally
        {
            metrics.WatcherStopped();
            logger.LogInformation("Metadata watcher {Watcher} disconnected", request.Watcher);
        }
    }
}
