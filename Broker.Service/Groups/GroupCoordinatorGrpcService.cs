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
/// <para>Requests that change a group (joins, syncs, leaves, commits, deletes, KIP-848
/// heartbeats) are answered only once the coordinator's writes for the group's partition are
/// committed: <see cref="GroupCoordinator.WaitCommittedAsync"/>, else the error it gives
/// (Kafka's CoordinatorRuntime defers write responses to the high watermark the same way).
/// Reads (OffsetFetch, Describe*, ListGroups) and classic heartbeats answer from memory at once
/// (see Groups/README.md, "Replication").</para>
/// </summary>
public sealed class GroupCoordinatorGrpcService(GroupCoordinator coordinator) : GroupCoordinatorService.GroupCoordinatorServiceBase
{
    public override async Task<KafkaGroupResponse> JoinGroup(KafkaGroupRequest request, ServerCallContext context)
    {
        var (r, v) = Decode<JoinGroupRequest>(request);
        var response = await coordinator.JoinGroupAsync(r, v, request.ClientId, request.ClientHost).WaitAsync(context.CancellationToken).ConfigureAwait(false);
        var error = await coordinator.WaitCommittedAsync([r.GroupId], context.CancellationToken).ConfigureAwait(false);
        if (error != ErrorCode.None)
            response = new JoinGroupResponse { ErrorCode = (short)error, GenerationId = -1, MemberId = r.MemberId, Leader = "", ProtocolName = null };
        return Encode(response, v);
    }

    public override async Task<KafkaGroupResponse> SyncGroup(KafkaGroupRequest request, ServerCallContext context)
    {
        var (r, v) = Decode<SyncGroupRequest>(request);
        var response = await coordinator.SyncGroupAsync(r, v).WaitAsync(context.CancellationToken).ConfigureAwait(false);
        var error = await coordinator.WaitCommittedAsync([r.GroupId], context.CancellationToken).ConfigureAwait(false);
        if (error != ErrorCode.None) response = new SyncGroupResponse { ErrorCode = (short)error };
        return Encode(response, v);
    }

    public override Task<KafkaGroupResponse> Heartbeat(KafkaGroupRequest request, ServerCallContext context)
        => Run<HeartbeatRequest>(request, coordinator.Heartbeat);

    public override Task<KafkaGroupResponse> LeaveGroup(KafkaGroupRequest request, ServerCallContext context)
        => RunWrite<LeaveGroupRequest, LeaveGroupResponse>(request, context, coordinator.LeaveGroup, r => [r.GroupId],
            (response, error) => new LeaveGroupResponse { ErrorCode = (short)error });

    public override Task<KafkaGroupResponse> OffsetCommit(KafkaGroupRequest request, ServerCallContext context)
        => RunWrite<OffsetCommitRequest, OffsetCommitResponse>(request, context, coordinator.OffsetCommit, r => [r.GroupId], (response, error) =>
        {
            // Kafka's OffsetCommitRequest.getErrorResponse: every partition carries the error.
            foreach (var p in response.Topics.SelectMany(t => t.Partitions)) p.ErrorCode = (short)error;
            return response;
        });

    /// <summary>TxnOffsetCommit: verified, written as the producer's transactional batch, answered once that write is committed.</summary>
    public override async Task<KafkaGroupResponse> TxnOffsetCommit(KafkaGroupRequest request, ServerCallContext context)
    {
        var (r, v) = Decode<TxnOffsetCommitRequest>(request);
        var response = await coordinator.TxnOffsetCommitAsync(r, v, context.CancellationToken).ConfigureAwait(false);
        var error = await coordinator.WaitCommittedAsync([r.GroupId], context.CancellationToken).ConfigureAwait(false);
        if (error != ErrorCode.None) response = GroupCoordinator.TxnFailAll(response, error);
        return Encode(response, v);
    }

    public override Task<KafkaGroupResponse> OffsetFetch(KafkaGroupRequest request, ServerCallContext context)
        => Run<OffsetFetchRequest>(request, coordinator.OffsetFetch);

    public override Task<KafkaGroupResponse> ListGroups(KafkaGroupRequest request, ServerCallContext context)
        => Run<ListGroupsRequest>(request, coordinator.ListGroups);

    public override Task<KafkaGroupResponse> DescribeGroups(KafkaGroupRequest request, ServerCallContext context)
        => Run<DescribeGroupsRequest>(request, coordinator.DescribeGroups);

    public override Task<KafkaGroupResponse> DeleteGroups(KafkaGroupRequest request, ServerCallContext context)
        => RunWrite<DeleteGroupsRequest, DeleteGroupsResponse>(request, context, coordinator.DeleteGroups, r => r.GroupsNames, (response, error) =>
        {
            // Groups that failed already keep their own error; the deleted ones are not known deleted.
            foreach (var result in response.Results.Where(x => x.ErrorCode == 0)) result.ErrorCode = (short)error;
            return response;
        });

    public override Task<KafkaGroupResponse> OffsetDelete(KafkaGroupRequest request, ServerCallContext context)
        => RunWrite<OffsetDeleteRequest, OffsetDeleteResponse>(request, context, coordinator.OffsetDelete, r => [r.GroupId],
            (response, error) => new OffsetDeleteResponse { ErrorCode = (short)error });

    public override Task<KafkaGroupResponse> ConsumerGroupHeartbeat(KafkaGroupRequest request, ServerCallContext context)
        => RunWrite<ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse>(request, context,
            (r, v) => coordinator.ConsumerGroupHeartbeat(r, v, request.ClientId, request.ClientHost), r => [r.GroupId],
            (response, error) => new ConsumerGroupHeartbeatResponse { ErrorCode = (short)error, HeartbeatIntervalMs = response.HeartbeatIntervalMs });

    public override Task<KafkaGroupResponse> ConsumerGroupDescribe(KafkaGroupRequest request, ServerCallContext context)
        => Run<ConsumerGroupDescribeRequest>(request, coordinator.ConsumerGroupDescribe);

    private static Task<KafkaGroupResponse> Run<TRequest>(KafkaGroupRequest request, Func<TRequest, short, IKafkaResponse> handle)
        where TRequest : class, IKafkaRequest, new()
    {
        var (r, v) = Decode<TRequest>(request);
        return Task.FromResult(Encode(handle(r, v), v));
    }

    /// <summary>Runs a request that may write, then holds its answer until those writes are committed (or answers the commit's error).</summary>
    private async Task<KafkaGroupResponse> RunWrite<TRequest, TResponse>(KafkaGroupRequest request, ServerCallContext context,
        Func<TRequest, short, TResponse> handle, Func<TRequest, IEnumerable<string>> groupIds, Func<TResponse, ErrorCode, TResponse> failed)
        where TRequest : class, IKafkaRequest, new()
        where TResponse : IKafkaResponse
    {
        var (r, v) = Decode<TRequest>(request);
        var response = handle(r, v);
        var error = await coordinator.WaitCommittedAsync(groupIds(r), context.CancellationToken).ConfigureAwait(false);
        return Encode(error == ErrorCode.None ? response : failed(response, error), v);
    }

    internal static (T Request, short Version) Decode<T>(KafkaGroupRequest request) where T : class, IKafkaRequest, new()
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
