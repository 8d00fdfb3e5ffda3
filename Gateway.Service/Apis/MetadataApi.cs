using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Gateway.Security;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

// Metadata v0-v12 (up to the codec's highest). The live gateways are presented as the brokers;
// each partition's leader is the gateway picked from the real leader broker id (GatewayMapping),
// replicas and ISR are mapped the same way (deduplicated: with one gateway every list is
// [gatewayId]); leader epoch is passed through (v7+), topic ids v10+, cluster id v2+, the
// controller id is a gateway id. topics=null (v1+; an empty list at v0) means all topics.
// Missing topics are auto-created through the controller when the request allows it (v4+; always
// for v0-v3) and auto.create.topics.enable is true; right after creation a topic is answered with
// LEADER_NOT_AVAILABLE (5) until its leaders are known, as Kafka does. Unknown topics:
// UNKNOWN_TOPIC_OR_PARTITION (3); unknown topic ids: UNKNOWN_TOPIC_ID (100); illegal names:
// INVALID_TOPIC_EXCEPTION (17). A partition whose leader is not live: LEADER_NOT_AVAILABLE, leader -1.
// Authorized operations (v8+), from IAuthorizer as Kafka's AclEntry.supportedOperations bitfield:
// per topic when include_topic_authorized_operations, the cluster's (v8-10) when
// include_cluster_authorized_operations (0 when DESCRIBE on the cluster is denied); not asked:
// -2147483648.
public sealed class MetadataApi(TopicAdmin admin, IOptions<GatewayOptions> options, IAuthorizer authorizer) : ApiHandler<MetadataRequest>
{
    public override ApiKey Key => ApiKey.Metadata;
    public override short MinVersion => 0;
    public override short MaxVersion => Math.Min((short)12, MetadataResponse.HighestSupportedVersion);

    protected override async Task<IKafkaResponse?> HandleAsync(MetadataRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var metadata = admin.Watcher.Current;
        var toCreate = TopicsToCreate(metadata, request, context.ApiVersion);
        Dictionary<string, ErrorCode>? created = null;
        if (toCreate.Count > 0)
        {
            created = await admin.AutoCreateAsync(toCreate, cancellationToken).ConfigureAwait(false);
            metadata = admin.Watcher.Current;
        }
        var response = Build(metadata, options.Value, request, context.ApiVersion, created);
        SetAuthorizedOperations(response, request, context, authorizer);
        return response;
    }

    /// <summary>The authorized operations the request asked for (Kafka fills them after building the topics).</summary>
    public static void SetAuthorizedOperations(MetadataResponse response, MetadataRequest request, RequestContext context, IAuthorizer authorizer)
    {
        if (context.ApiVersion < 8) return;
        if (context.ApiVersion <= 10 && request.IncludeClusterAuthorizedOperations)
            response.ClusterAuthorizedOperations = AuthorizedOperations.OfCluster(authorizer, context);
        if (request.IncludeTopicAuthorizedOperations)
            foreach (var topic in response.Topics)
                topic.TopicAuthorizedOperations = AuthorizedOperations.Of(authorizer, context, AclResourceType.Topic, topic.Name ?? "");
    }

    /// <summary>Named topics that are missing, legal, and may be auto-created for this request.</summary>
    public static List<string> TopicsToCreate(ClusterMetadata metadata, MetadataRequest request, short version)
    {
        var result = new List<string>();
        if (request.Topics is null || !TopicAdmin.AutoCreateEnabled(metadata)) return result;
        // AllowAutoTopicCreation exists from v4; older clients always allowed it.
        if (version >= 4 && !request.AllowAutoTopicCreation) return result;
        foreach (var t in request.Topics)
        {
            if (t.Name is { } name && TopicNames.IsValid(name) && !metadata.TopicsByName.ContainsKey(name) && !result.Contains(name))
                result.Add(name);
        }
        return result;
    }

    public static MetadataResponse Build(ClusterMetadata metadata, GatewayOptions self, MetadataRequest request, short version,
        IReadOnlyDictionary<string, ErrorCode>? created)
    {
        var gateways = GatewayMapping.Gateways(metadata, self);
        var response = new MetadataResponse
        {
            ClusterId = string.IsNullOrEmpty(metadata.Snapshot.ClusterId) ? null : metadata.Snapshot.ClusterId,
            ControllerId = GatewayMapping.ControllerFor(gateways, metadata.Snapshot.ControllerId),
        };
        foreach (var g in gateways)
            response.Brokers.Add(new MetadataResponse.MetadataResponseBroker
            {
                NodeId = g.NodeId, Host = g.KafkaHost, Port = g.KafkaPort, Rack = string.IsNullOrEmpty(g.Rack) ? null : g.Rack,
            });

        var allTopics = request.Topics is null || (version == 0 && request.Topics.Count == 0);
        if (allTopics)
        {
            foreach (var topic in metadata.Snapshot.Topics.OrderBy(t => t.Name, StringComparer.Ordinal))
                response.Topics.Add(Describe(metadata, gateways, topic));
            return response;
        }

        foreach (var requested in request.Topics!)
        {
            if (requested.Name is null)
            {
                // Lookup by id (v10+ clients may name a topic only by id).
                if (requested.TopicId != Guid.Empty && metadata.TopicsById.TryGetValue(requested.TopicId, out var byId))
                    response.Topics.Add(Describe(metadata, gateways, byId));
                else
                    response.Topics.Add(new MetadataResponse.MetadataResponseTopic
                    {
                        Name = null, TopicId = requested.TopicId, ErrorCode = ErrorCodes.UnknownTopicId,
                    });
                continue;
            }
            var name = requested.Name;
            if (!TopicNames.IsValid(name))
            {
                response.Topics.Add(new MetadataResponse.MetadataResponseTopic { Name = name, ErrorCode = ErrorCodes.InvalidTopicException });
                continue;
            }
            var createdHere = created is not null && created.TryGetValue(name, out var c) ? c : (ErrorCode?)null;
            if (createdHere is null && metadata.TopicsByName.TryGetValue(name, out var topic))
            {
                response.Topics.Add(Describe(metadata, gateways, topic));
                continue;
            }
            // The request that auto-creates a topic answers it LEADER_NOT_AVAILABLE with no
            // partitions, as Kafka does; the client asks again and then finds writable leaders.
            var error = createdHere is { } code
                ? (code == ErrorCode.None ? ErrorCode.LeaderNotAvailable : code)
                : ErrorCode.UnknownTopicOrPartition;
            response.Topics.Add(new MetadataResponse.MetadataResponseTopic { Name = name, ErrorCode = (short)error });
        }
        return response;
    }

    /// <summary>
    /// Kafka's offline_replicas through the gateway mapping: a gateway is offline for a
    /// partition when every real replica it stands for is on a fenced (or unknown) broker, and
    /// never when it shows the leader. With one gateway that is only a partition without any
    /// live replica; the real broker-level offline replicas and ISR are in GetStatus.
    /// </summary>
    private static IEnumerable<int> OfflineGateways(ClusterMetadata metadata, IReadOnlyList<StreamPlatform.Protos.Grpc.GatewayInfo> gateways,
        StreamPlatform.Protos.Grpc.PartitionInfo p, int leaderGateway)
    {
        var live = new HashSet<int>();
        foreach (var r in p.Replicas)
            if (metadata.BrokersById.TryGetValue(r, out var b) && !b.Fenced) live.Add(GatewayMapping.GatewayFor(gateways, r));
        return GatewayMapping.MapBrokers(gateways, p.Replicas).Where(g => g != leaderGateway && !live.Contains(g));
    }

    private static MetadataResponse.MetadataResponseTopic Describe(ClusterMetadata metadata,
        IReadOnlyList<StreamPlatform.Protos.Grpc.GatewayInfo> gateways, StreamPlatform.Protos.Grpc.TopicInfo topic)
    {
        var result = new MetadataResponse.MetadataResponseTopic
        {
            Name = topic.Name,
            TopicId = topic.TopicId.Length == 16 ? TopicIds.ToGuid(topic.TopicId) : Guid.Empty,
            IsInternal = topic.Internal,
        };
        foreach (var p in topic.Partitions)
        {
            var leader = metadata.LeaderOf(p);
            var partition = new MetadataResponse.MetadataResponsePartition
            {
                PartitionIndex = p.Partition,
                LeaderId = leader is null ? -1 : GatewayMapping.GatewayFor(gateways, leader.BrokerId),
                LeaderEpoch = p.LeaderEpoch,
                ErrorCode = leader is null ? ErrorCodes.LeaderNotAvailable : ErrorCodes.None,
            };
            partition.ReplicaNodes.AddRange(GatewayMapping.MapBrokers(gateways, p.Replicas));
            partition.IsrNodes.AddRange(GatewayMapping.MapBrokers(gateways, p.Isr));
            // A gateway listed as a replica must be in the ISR of a led partition; the mapped
            // leader is always in both (clients assert leader ∈ replicas).
            if (partition.LeaderId >= 0)
            {
                if (!partition.ReplicaNodes.Contains(partition.LeaderId)) partition.ReplicaNodes.Insert(0, partition.LeaderId);
                if (!partition.IsrNodes.Contains(partition.LeaderId)) partition.IsrNodes.Insert(0, partition.LeaderId);
            }
            partition.OfflineReplicas.AddRange(OfflineGateways(metadata, gateways, p, partition.LeaderId));
            result.Partitions.Add(partition);
        }
        return result;
    }
}
