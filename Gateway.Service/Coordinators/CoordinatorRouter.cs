using System.Collections.Concurrent;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Apis;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Groups;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.ServiceDefaults;

namespace StreamPlatform.Gateway.Coordinators;

/// <summary>
/// One gRPC call that carries a Kafka body (streamplatform.groups.KafkaGroupRequest/Response) on
/// a client of type <typeparamref name="TClient"/>: GroupCoordinatorService, TransactionCoordinatorService
/// or BrokerService (DescribeProducers).
/// </summary>
public delegate AsyncUnaryCall<KafkaGroupResponse> KafkaBodyCall<in TClient>(TClient client, KafkaGroupRequest request, CallOptions options);

/// <summary>
/// Finds coordinators (the broker leading a key's partition of its internal topic: groups over
/// __consumer_offsets, transactional ids over __transaction_state, creating the topic on first
/// use through <see cref="CoordinatorTopics"/>) and forwards Kafka requests to brokers as body
/// bytes over gRPC (groups.proto, transactions.proto, BrokerService.DescribeProducers). One
/// channel per broker endpoint, made without retries: a JoinGroup or EndTxn retried behind the
/// client's back would act twice.
/// </summary>
public sealed class CoordinatorRouter(
    CoordinatorTopics topics,
    IOptions<GatewayOptions> options,
    TimeProvider time,
    ILogger<CoordinatorRouter> logger) : IDisposable
{
    /// <summary>Deadline of coordinator calls that do not wait for a rebalance (plus the gateway's broker call margin).</summary>
    public const int PlainCallWaitMs = 10_000;

    private readonly ConcurrentDictionary<string, (GrpcChannel Channel, CallInvoker Invoker)> _channels = new(StringComparer.Ordinal);
    // Typed clients over the channels above, one per (endpoint, client type); made on first use.
    private readonly ConcurrentDictionary<(string Endpoint, Type Client), object> _clients = new();

    public MetadataWatcher Watcher => topics.Watcher;

    public GatewayOptions Options => options.Value;

    public CoordinatorTopics Topics => topics;

    /// <summary>The coordinator broker of a group, or the error a client should see.</summary>
    public (ErrorCode Error, BrokerInfo? Broker) Coordinator(ClusterMetadata metadata, string groupId)
        => CoordinatorTopics.Coordinator(metadata, CoordinatorKind.Group, groupId);

    /// <summary>The coordinator broker of <paramref name="key"/> (group id or transactional id), or the error a client should see.</summary>
    public (ErrorCode Error, BrokerInfo? Broker) Coordinator(ClusterMetadata metadata, CoordinatorKind kind, string key)
        => CoordinatorTopics.Coordinator(metadata, kind, key);

    private TClient? ClientFor<TClient>(BrokerInfo broker, Func<CallInvoker, TClient> create) where TClient : class
    {
        if (_clients.TryGetValue((broker.GrpcEndpoint, typeof(TClient)), out var made)) return (TClient)made;
        if (!_channels.TryGetValue(broker.GrpcEndpoint, out var entry))
        {
            if (!Uri.TryCreate(broker.GrpcEndpoint, UriKind.Absolute, out var uri)) return null;
            var channel = GrpcChannels.Create(uri);
            entry = (channel, channel.CreateCallInvoker());
            if (!_channels.TryAdd(broker.GrpcEndpoint, entry))
            {
                channel.Dispose();
                entry = _channels[broker.GrpcEndpoint];
            }
        }
        return (TClient)_clients.GetOrAdd((broker.GrpcEndpoint, typeof(TClient)), static (_, arg) => arg.create(arg.Invoker), (create, entry.Invoker));
    }

    /// <summary>A group request: <see cref="ForwardAsync{TClient, TResponse}"/> on the broker's GroupCoordinatorService.</summary>
    public Task<TResponse?> ForwardAsync<TResponse>(BrokerInfo broker, Groups.GroupCall call, IKafkaRequest request, RequestContext context,
        int waitMs, CancellationToken cancellationToken) where TResponse : class, IKafkaResponse, new()
        => ForwardAsync<GroupCoordinatorService.GroupCoordinatorServiceClient, TResponse>(broker, static i => new(i), call.Invoke, request, context,
            waitMs, cancellationToken);

    /// <summary>
    /// Sends the request to the broker as its Kafka body at the client's version and decodes the
    /// answer; null when the broker could not be reached, did not answer in time or answered
    /// something that does not decode (callers answer COORDINATOR_NOT_AVAILABLE, or
    /// NOT_LEADER_OR_FOLLOWER for partition requests, so clients look the broker up again).
    /// </summary>
    /// <param name="createClient">Makes the typed client over the broker's channel (once per endpoint).</param>
    public async Task<TResponse?> ForwardAsync<TClient, TResponse>(BrokerInfo broker, Func<CallInvoker, TClient> createClient, KafkaBodyCall<TClient> call,
        IKafkaRequest request, RequestContext context, int waitMs, CancellationToken cancellationToken)
        where TClient : class
        where TResponse : class, IKafkaResponse, new()
    {
        var client = ClientFor(broker, createClient);
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
        foreach (var (channel, _) in _channels.Values) channel.Dispose();
        _channels.Clear();
        _clients.Clear();
    }
}
