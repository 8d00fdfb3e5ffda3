using Grpc.Core;
using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Protos.Grpc.Groups;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Groups;

/// <summary>
/// A group API whose request names one group: forwarded as it is to that group's coordinator
/// broker (<see cref="SingleCoordinatorApi{TRequest, TResponse, TClient}"/> over
/// GroupCoordinatorService). An empty group id: INVALID_GROUP_ID.
/// </summary>
public abstract class SingleGroupApi<TRequest, TResponse>(CoordinatorRouter router)
    : SingleCoordinatorApi<TRequest, TResponse, GroupCoordinatorService.GroupCoordinatorServiceClient>(router, CoordinatorKind.Group)
    where TRequest : class, IKafkaRequest, new()
    where TResponse : class, IKafkaResponse, new()
{
    protected abstract string GroupIdOf(TRequest request);

    protected sealed override string? KeyOf(TRequest request) => GroupIdOf(request);

    protected sealed override Func<CallInvoker, GroupCoordinatorService.GroupCoordinatorServiceClient> CreateClient => static i => new(i);

    /// <summary>Which GroupCoordinatorService call the request uses.</summary>
    protected abstract GroupCall Call { get; }

    protected sealed override KafkaBodyCall<GroupCoordinatorService.GroupCoordinatorServiceClient> BodyCall => Call.Invoke;
}
