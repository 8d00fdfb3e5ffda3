using System.Collections.Concurrent;
using Grpc.Core;
using Grpc.Net.Client;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Broker;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.ServiceDefaults;

namespace StreamPlatform.Gateway.Routing;

/// <summary>
/// One gRPC channel per broker endpoint, shared by every client connection (HTTP/2 multiplexes
/// the calls). Channels are made by <see cref="GrpcChannels.Create"/>: no resilience handler, so a
/// Produce is never retried behind the client's back. <see cref="Refresh"/> runs on each metadata
/// snapshot and disposes channels of endpoints no broker advertises any more.
/// </summary>
public sealed class BrokerClientPool : IDisposable
{
    private readonly ConcurrentDictionary<string, Entry> _byEndpoint = new(StringComparer.Ordinal);
    private readonly Func<Uri, GrpcChannel> _channelFactory;
    private readonly object _refreshGate = new();

    private sealed record Entry(GrpcChannel Channel, CallInvoker Invoker, BrokerService.BrokerServiceClient Client);

    public BrokerClientPool(Func<Uri, GrpcChannel>? channelFactory = null)
    {
        _channelFactory = channelFactory ?? (uri => GrpcChannels.Create(uri));
    }

    public int ChannelCount => _byEndpoint.Count;

    /// <summary>The client for a broker, creating its channel on first use. Null when the endpoint is unusable.</summary>
    public BrokerService.BrokerServiceClient? GetClient(BrokerInfo broker) => GetEntry(broker)?.Client;

    /// <summary>The broker's channel as a call invoker, for methods with custom marshallers (<see cref="BrokerFetchResponse.Method"/>). Null when the endpoint is unusable.</summary>
    public CallInvoker? GetInvoker(BrokerInfo broker) => GetEntry(broker)?.Invoker;

    private Entry? GetEntry(BrokerInfo broker)
    {
        if (_byEndpoint.TryGetValue(broker.GrpcEndpoint, out var entry)) return entry;
        if (!Uri.TryCreate(broker.GrpcEndpoint, UriKind.Absolute, out var uri)) return null;
        lock (_refreshGate)
        {
            if (_byEndpoint.TryGetValue(broker.GrpcEndpoint, out entry)) return entry;
            var channel = _channelFactory(uri);
            var invoker = channel.CreateCallInvoker();
            entry = new Entry(channel, invoker, new BrokerService.BrokerServiceClient(invoker));
            _byEndpoint[broker.GrpcEndpoint] = entry;
            return entry;
        }
    }

    /// <summary>Drops channels to endpoints that are no longer in the metadata.</summary>
    public void Refresh(ClusterMetadata metadata)
    {
        var live = new HashSet<string>(metadata.Snapshot.Brokers.Select(b => b.GrpcEndpoint), StringComparer.Ordinal);
        lock (_refreshGate)
        {
            foreach (var (endpoint, entry) in _byEndpoint)
            {
                if (live.Contains(endpoint)) continue;
                if (_byEndpoint.TryRemove(endpoint, out _))
                    entry.Channel.Dispose(); // in-flight calls on it fail and map to NOT_LEADER_OR_FOLLOWER
            }
        }
    }

    public void Dispose()
    {
        foreach (var entry in _byEndpoint.Values) entry.Channel.Dispose();
        _byEndpoint.Clear();
    }
}
