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
/// snapshot and disposes channels of endpoints no broker advertises any more, and the channel of a
/// broker that registered again (new broker epoch: a new process). Each channel also
/// carries the broker's <see cref="BrokerProduceStream"/> (made on first produce), which is
/// disposed with it: its pending requests fail rather than wait on a channel that is gone.
/// </summary>
public sealed class BrokerClientPool : IDisposable
{
    private readonly ConcurrentDictionary<string, Entry> _byEndpoint = new(StringComparer.Ordinal);
    private readonly Func<Uri, GrpcChannel> _channelFactory;
    private readonly object _refreshGate = new();
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly int _produceOutstandingMax;
    private readonly AppendSignals? _appendSignals;

    private sealed class Entry(GrpcChannel channel, CallInvoker invoker, BrokerService.BrokerServiceClient client, long brokerEpoch)
    {
        public GrpcChannel Channel { get; } = channel;
        /// <summary>The registration of the broker process this channel was made for.</summary>
        public long BrokerEpoch { get; } = brokerEpoch;
        public CallInvoker Invoker { get; } = invoker;
        public BrokerService.BrokerServiceClient Client { get; } = client;
        public BrokerProduceStream? ProduceStream;
        public BrokerAppendWatch? AppendWatch;

        public void Dispose()
        {
            AppendWatch?.Dispose();
            // The stream first: its pending requests are answered before the channel's calls die.
            ProduceStream?.Dispose();
            Channel.Dispose();
        }
    }

    public BrokerClientPool(Func<Uri, GrpcChannel>? channelFactory = null, TimeProvider? time = null, ILogger<BrokerClientPool>? logger = null,
        int produceOutstandingMax = BrokerProduceStream.OutstandingRequestsMax, AppendSignals? appendSignals = null)
    {
        _appendSignals = appendSignals;
        _channelFactory = channelFactory ?? (uri => GrpcChannels.Create(uri));
        _time = time ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        _produceOutstandingMax = produceOutstandingMax;
    }

    public int ChannelCount => _byEndpoint.Count;

    /// <summary>The client for a broker, creating its channel on first use. Null when the endpoint is unusable.</summary>
    public BrokerService.BrokerServiceClient? GetClient(BrokerInfo broker) => GetEntry(broker)?.Client;

    /// <summary>The broker's produce stream, creating it (and its channel) on first use. Null when the endpoint is unusable.</summary>
    public BrokerProduceStream? GetProduceStream(BrokerInfo broker)
    {
        var entry = GetEntry(broker);
        if (entry is null) return null;
        if (Volatile.Read(ref entry.ProduceStream) is { } stream) return stream;
        lock (_refreshGate)
        {
            // Removed by Refresh meanwhile: a stream made now would never be disposed.
            if (!_byEndpoint.TryGetValue(broker.GrpcEndpoint, out var current) || !ReferenceEquals(current, entry)) return null;
            return entry.ProduceStream ??= new BrokerProduceStream(new BrokerProduceService.BrokerProduceServiceClient(entry.Channel), broker.GrpcEndpoint, _time, _logger, _produceOutstandingMax);
        }
    }

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
            entry = new Entry(channel, invoker, new BrokerService.BrokerServiceClient(invoker), broker.BrokerEpoch);
            _byEndpoint[broker.GrpcEndpoint] = entry;
            return entry;
        }
    }

    /// <summary>
    /// Drops channels to endpoints that are no longer in the metadata; with append signals, makes
    /// sure every broker in it has its append watch (opened here, ahead of the first fetch).
    /// </summary>
    public void Refresh(ClusterMetadata metadata)
    {
        var live = new HashSet<string>(metadata.Snapshot.Brokers.Select(b => b.GrpcEndpoint), StringComparer.Ordinal);
        lock (_refreshGate)
        {
            // A broker that registered again is a new process. The channel to the old one has
            // been failing to connect and sits in its reconnect backoff (1 s growing by 1.6x), so
            // calls on it would fail for seconds after the broker is back: start afresh.
            foreach (var broker in metadata.Snapshot.Brokers)
            {
                if (!broker.Fenced && broker.BrokerEpoch > 0 && _byEndpoint.TryGetValue(broker.GrpcEndpoint, out var old)
                    && old.BrokerEpoch > 0 && old.BrokerEpoch < broker.BrokerEpoch && _byEndpoint.TryRemove(broker.GrpcEndpoint, out _))
                {
                    _logger.LogInformation("Broker at {Endpoint} registered again (broker epoch {Epoch}): new channel", broker.GrpcEndpoint, broker.BrokerEpoch);
                    old.Dispose();
                }
            }
            if (_appendSignals is not null)
            {
                foreach (var broker in metadata.Snapshot.Brokers)
                {
                    if (GetEntry(broker) is { AppendWatch: null } entry)
                        entry.AppendWatch = new BrokerAppendWatch(entry.Client, broker.GrpcEndpoint, _appendSignals, _time, _logger);
                }
            }
            foreach (var (endpoint, entry) in _byEndpoint)
            {
                if (live.Contains(endpoint)) continue;
                if (_byEndpoint.TryRemove(endpoint, out _))
                    entry.Dispose(); // in-flight calls and produce requests on it fail: NOT_LEADER_OR_FOLLOWER
            }
        }
    }

    public void Dispose()
    {
        lock (_refreshGate)
        {
            foreach (var entry in _byEndpoint.Values) entry.Dispose();
            _byEndpoint.Clear();
        }
    }
}
