using System.Collections.Concurrent;
using System.Globalization;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Apis;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Protos.Configs;
using StreamPlatform.Protos.Groups;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Groups;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.ServiceDefaults;
using Ctl = StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.Gateway.Groups;

/// <summary>Which GroupCoordinatorService call a forwarded request uses.</summary>
public delegate AsyncUnaryCall<KafkaGroupResponse> GroupCall(GroupCoordinatorService.GroupCoordinatorServiceClient client, KafkaGroupRequest request, CallOptions options);

/// <summary>
/// Finds a group's coordinator (the broker leading its __consumer_offsets partition, creating the
/// topic on first use) and forwards Kafka group requests to it as body bytes over gRPC
/// (groups.proto). One channel per broker endpoint, made without retries: a JoinGroup retried
/// behind the client's back would join twice.
/// </summary>
public sealed class GroupRouter(
    TopicAdmin admin,
    IOptions<GatewayOptions> options,
    TimeProvider time,
    ILogger<GroupRouter> logger) : IDisposable
{
    private readonly ConcurrentDictionary<string, (GrpcChannel Channel, GroupCoordinatorService.GroupCoordinatorServiceClient Client)> _clients = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _createGate = new(1, 1);
    private long _tooFewBrokersLoggedMs = long.MinValue / 2;

    /// <summary>How often the "too few brokers for the offsets topic" warning may repeat.</summary>
    public const long TooFewBrokersLogIntervalMs = 30_000;

    /// <summary>How long a FindCoordinator waits for a just-created offsets topic to get leaders before answering COORDINATOR_NOT_AVAILABLE (clients retry).</summary>
    public static readonly TimeSpan OffsetsTopicWaitMax = TimeSpan.FromSeconds(5);

    public MetadataWatcher Watcher => admin.Watcher;

    public GatewayOptions Options => options.Value;

    /// <summary>The coordinator broker of a group, or the error a client should see.</summary>
    public (ErrorCode Error, BrokerInfo? Broker) Coordinator(ClusterMetadata metadata, string groupId)
    {
        if (!metadata.TopicsByName.TryGetValue(OffsetsTopic.Name, out var topic) || topic.Partitions.Count == 0)
            return (ErrorCode.CoordinatorNotAvailable, null);
        var index = OffsetsTopic.PartitionFor(groupId, topic.Partitions.Count);
        var partition = topic.Partitions.FirstOrDefault(p => p.Partition == index);
        var leader = partition is null ? null : metadata.LeaderOf(partition);
        return leader is null ? (ErrorCode.CoordinatorNotAvailable, null) : (ErrorCode.None, leader);
    }

    /// <summary>Creates __consumer_offsets when it does not exist yet (FindCoordinator's first use), then waits briefly for leaders.</summary>
    public async Task EnsureOffsetsTopicAsync(CancellationToken cancellationToken)
    {
        if (admin.Watcher.Current.TopicsByName.ContainsKey(OffsetsTopic.Name)) return;
        await _createGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var metadata = admin.Watcher.Current;
            if (!metadata.TopicsByName.ContainsKey(OffsetsTopic.Name))
            {
                var configs = metadata.Snapshot.BrokerConfigs;
                int Config(string name) => int.Parse(configs.TryGetValue(name, out var v) ? v : ConfigCatalog.Broker[name].DefaultValue!, CultureInfo.InvariantCulture);
                var replicationFactor = Config("offsets.topic.replication.factor");
                var liveBrokers = metadata.Snapshot.Brokers.Count(b => !b.Fenced);
                if (liveBrokers < replicationFactor)
                {
                    // As Kafka: never create the offsets topic with fewer replicas than configured
                    // (it would stay under-replicated for ever). FindCoordinator answers
                    // COORDINATOR_NOT_AVAILABLE and clients retry until enough brokers are up.
                    LogTooFewBrokers(liveBrokers, replicationFactor);
                    return;
                }
                var topic = new Ctl.CreatableTopic
                {
                    Name = OffsetsTopic.Name,
                    NumPartitions = Config("offsets.topic.num.partitions"),
                    ReplicationFactor = replicationFactor,
                    Internal = true,
                };
                // Compacted: only the newest record per group and per committed partition matters.
                topic.Configs.Add("cleanup.policy", "compact");
                topic.Configs.Add("segment.bytes", "104857600");
                try
                {
                    var response = await admin.CreateAsync(new Ctl.CreateTopicsRequest { Topics = { topic } }, 0, cancellationToken).ConfigureAwait(false);
                    foreach (var r in response.Results)
                        if (r.ErrorCode != 0 && r.ErrorCode != (int)ErrorCode.TopicAlreadyExists)
                            logger.LogWarning("Creating {Topic} failed: {Code} {Message}", OffsetsTopic.Name, r.ErrorCode, r.ErrorMessage);
                        else
                            logger.LogInformation("Created {Topic} with {Partitions} partitions", OffsetsTopic.Name, topic.NumPartitions);
                }
                catch (RpcException ex)
                {
                    ControllerConnection.LogFailure(logger, $"Creating {OffsetsTopic.Name}", ex, cancellationToken);
                    return;
                }
            }
        }
        finally
        {
            _createGate.Release();
        }
        await admin.WaitForAsync(m => m.TopicsByName.TryGetValue(OffsetsTopic.Name, out var t) && t.Partitions.All(p => p.Leader >= 0),
            OffsetsTopicWaitMax, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Kafka's message for a cluster still starting up; logged at most once per <see cref="TooFewBrokersLogIntervalMs"/> (clients retry FindCoordinator often).</summary>
    private void LogTooFewBrokers(int liveBrokers, int replicationFactor)
    {
        var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        var last = Interlocked.Read(ref _tooFewBrokersLoggedMs);
        if (nowMs - last < TooFewBrokersLogIntervalMs || Interlocked.CompareExchange(ref _tooFewBrokersLoggedMs, nowMs, last) != last) return;
        logger.LogWarning("Number of alive brokers '{Live}' does not meet the required replication factor '{Rf}' for the offsets topic " +
            "(configured via 'offsets.topic.replication.factor'). This error can be ignored if the cluster is starting up and not all brokers are up yet.",
            liveBrokers, replicationFactor);
    }

    private GroupCoordinatorService.GroupCoordinatorServiceClient? ClientFor(BrokerInfo broker)
    {
        if (_clients.TryGetValue(broker.GrpcEndpoint, out var entry)) return entry.Client;
        if (!Uri.TryCreate(broker.GrpcEndpoint, UriKind.Absolute, out var uri)) return null;
        var channel = GrpcChannels.Create(uri);
        entry = (channel, new GroupCoordinatorService.GroupCoordinatorServiceClient(channel));
        if (_clients.TryAdd(broker.GrpcEndpoint, entry)) return entry.Client;
        channel.Dispose();
        return _clients[broker.GrpcEndpoint].Client;
    }

    /// <summary>
    /// Sends the request to the broker and decodes its answer; null when the broker could not be
    /// reached or did not answer in time (callers answer COORDINATOR_NOT_AVAILABLE, so clients
    /// look the coordinator up again).
    /// </summary>
    public async Task<TResponse?> ForwardAsync<TResponse>(BrokerInfo broker, GroupCall call, IKafkaRequest request, RequestContext context,
        int waitMs, CancellationToken cancellationToken) where TResponse : class, IKafkaResponse, new()
    {
        var client = ClientFor(broker);
        if (client is null) return null;
        var version = context.ApiVersion;
        var body = new byte[request.ComputeSize(version)];
        var writer = new KafkaWriter(body);
        request.Write(ref writer, version);
        var grpcRequest = new KafkaGroupRequest
        {
            ApiVersion = version, Body = UnsafeByteOperations.UnsafeWrap(body), ClientId = context.ClientId ?? "", ClientHost = context.ClientHost,
        };
        var deadline = time.GetUtcNow().UtcDateTime.AddMilliseconds((long)Math.Max(waitMs, 0) + options.Value.BrokerCallMarginMs);
        try
        {
            var answer = await call(client, grpcRequest, new CallOptions(deadline: deadline, cancellationToken: cancellationToken)).ResponseAsync.ConfigureAwait(false);
            var response = new TResponse();
            var reader = new KafkaReader(answer.Body.Memory);
            response.Read(ref reader, version);
            return response;
        }
        catch (RpcException ex) when (cancellationToken.IsCancellationRequested)
        {
            // The client went away and its call with it: routine, not a broker fault.
            logger.LogDebug("{Api} on broker {BrokerId}: client disconnected, call cancelled ({Status})", request.GetType().Name, broker.BrokerId, ex.StatusCode);
            return null;
        }
        catch (RpcException ex)
        {
            logger.LogWarning("{Api} on broker {BrokerId} failed: {Status} {Detail}", request.GetType().Name, broker.BrokerId, ex.StatusCode, ex.Status.Detail);
            return null;
        }
        catch (KafkaProtocolException ex)
        {
            logger.LogError("{Api} answer from broker {BrokerId} does not decode: {Message}", request.GetType().Name, broker.BrokerId, ex.Message);
            return null;
        }
    }

    public void Dispose()
    {
        foreach (var (channel, _) in _clients.Values) channel.Dispose();
        _clients.Clear();
        _createGate.Dispose();
    }
}
