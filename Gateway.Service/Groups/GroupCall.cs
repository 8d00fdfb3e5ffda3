using Grpc.Core;
using StreamPlatform.Protos.Grpc.Groups;

namespace StreamPlatform.Gateway.Groups;

/// <summary>Which GroupCoordinatorService call a forwarded group request uses.</summary>
public delegate AsyncUnaryCall<KafkaGroupResponse> GroupCall(GroupCoordinatorService.GroupCoordinatorServiceClient client, KafkaGroupRequest request, CallOptions options);
