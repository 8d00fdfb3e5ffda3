using Google.Protobuf;
using Grpc.Core;
using StreamPlatform.Protos.Grpc.Groups;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Broker.Groups;

/// <summary>
/// GroupCoordinatorService: decodes the Kafka request body the gateway passed through, runs it
/// on the <see cref="GroupCoordinator"/> and encodes the Kafka response at the same version.
/// A body that does not decode is INVALID_ARGUMENT (the gateway decoded it once already, so
/// this means a bug or a mismatched codec, not a client error).
/// </summary>
public sealed class GroupCoordinatorGrpcService(GroupCoordinator coordinator) : GroupCoordinatorService.GroupCoordinatorServiceBase
{
    public override async Task<KafkaGroupResponse> JoinGroup(KafkaGroupRequest request, ServerCallContext context)
    {
        var (r, v) = Decode<JoinGroupRequest>(request);
        return Encode(await coordinator.JoinGroupAsync(r, v, request.ClientId, request.ClientHost).WaitAsync(context.CancellationToken).ConfigureAwait(false), v);
    }

    public override async Task<KafkaGroupResponse> SyncGroup(KafkaGroupRequest request, ServerCallContext context)
    {
        var (r, v) = Decode<SyncGroupRequest>(request);
        return Encode(await coordinator.SyncGroupAsync(r, v).WaitAsync(context.CancellationToken).ConfigureAwait(false), v);
    }

    public override Task<KafkaGroupResponse> Heartbeat(KafkaGroupRequest request, ServerCallContext context)
        => Run<HeartbeatRequest>(request, coordinator.Heartbeat);

    public override Task<KafkaGroupResponse> LeaveGroup(KafkaGroupRequest request, ServerCallContext context)
        => Run<LeaveGroupRequest>(request, coordinator.LeaveGroup);

    public override Task<KafkaGroupResponse> OffsetCommit(KafkaGroupRequest request, ServerCallContext context)
        => Run<OffsetCommitRequest>(request, coordinator.OffsetCommit);

    public override Task<KafkaGroupResponse> OffsetFetch(KafkaGroupRequest request, ServerCallContext context)
        => Run<OffsetFetchRequest>(request, coordinator.OffsetFetch);

    public override Task<KafkaGroupResponse> ListGroups(KafkaGroupRequest request, ServerCallContext context)
        => Run<ListGroupsRequest>(request, coordinator.ListGroups);

    public override Task<KafkaGroupResponse> DescribeGroups(KafkaGroupRequest request, ServerCallContext context)
        => Run<DescribeGroupsRequest>(request, coordinator.DescribeGroups);

    public override Task<KafkaGroupResponse> DeleteGroups(KafkaGroupRequest request, ServerCallContext context)
        => Run<DeleteGroupsRequest>(request, coordinator.DeleteGroups);

    public override Task<KafkaGroupResponse> OffsetDelete(KafkaGroupRequest request, ServerCallContext context)
        => Run<OffsetDeleteRequest>(request, coordinator.OffsetDelete);

    public override Task<KafkaGroupResponse> ConsumerGroupHeartbeat(KafkaGroupRequest request, ServerCallContext context)
    {
        var (r, v) = Decode<ConsumerGroupHeartbeatRequest>(request);
        return Task.FromResult(Encode(coordinator.ConsumerGroupHeartbeat(r, v, request.ClientId, request.ClientHost), v));
    }

    public override Task<KafkaGroupResponse> ConsumerGroupDescribe(KafkaGroupRequest request, ServerCallContext context)
        => Run<ConsumerGroupDescribeRequest>(request, coordinator.ConsumerGroupDescribe);

    private static Task<KafkaGroupResponse> Run<TRequest>(KafkaGroupRequest request, Func<TRequest, short, IKafkaResponse> handle)
        where TRequest : class, IKafkaRequest, new()
    {
        var (r, v) = Decode<TRequest>(request);
        return Task.FromResult(Encode(handle(r, v), v));
    }

    private static (T Request, short Version) Decode<T>(KafkaGroupRequest request) where T : class, IKafkaRequest, new()
    {
        if (request.ApiVersion is < 0 or > short.MaxValue) throw new RpcException(new Status(StatusCode.InvalidArgument, $"api_version {request.ApiVersion} is out of range."));
        var version = (short)request.ApiVersion;
        var message = new T();
        try
        {
            var reader = new KafkaReader(request.Body.Memory);
            message.Read(ref reader, version);
        }
        catch (KafkaProtocolException ex)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"{typeof(T).Name} v{version} does not decode: {ex.Message}"));
        }
        return (message, version);
    }

    public static KafkaGroupResponse Encode(IKafkaResponse response, short version)
    {
        var bytes = new byte[response.ComputeSize(version)];
        var writer = new KafkaWriter(bytes);
        response.Write(ref writer, version);
        return new KafkaGroupResponse { Body = UnsafeByteOperations.UnsafeWrap(bytes) };
    }
}
