using System.Collections.Concurrent;
using Grpc.Core;
using Grpc.Net.Client;
using StreamPlatform.ServiceDefaults;

namespace StreamPlatform.Broker.Services;

/// <summary>
/// The broker's gRPC channels to other brokers, one per endpoint, shared by every
/// broker-to-broker caller (replica fetchers, transaction markers, transaction verification).
/// Channels are made without the resilience handler (<see cref="GrpcChannels"/>): callers
/// decide about retries. Bounded by the brokers of the cluster: <see cref="EndpointsMax"/>
/// endpoints at most (an endpoint a broker left behind on restart stays until the broker stops).
/// </summary>
public sealed class BrokerChannels : IDisposable
{
    /// <summary>Most endpoints with a channel: well above any cluster's broker count.</summary>
    public const int EndpointsMax = 4096;

    private readonly ConcurrentDictionary<string, Lazy<GrpcChannel>> _channels = new(StringComparer.Ordinal);
    private volatile bool _disposed;

    /// <summary>A call invoker on the channel to <paramref name="endpoint"/> (made on first use).</summary>
    public CallInvoker Invoker(string endpoint)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_channels.TryGetValue(endpoint, out var channel))
        {
            if (_channels.Count >= EndpointsMax) throw new InvalidOperationException($"More than {EndpointsMax} broker endpoints.");
            channel = _channels.GetOrAdd(endpoint, e => new Lazy<GrpcChannel>(() => GrpcChannels.Create(new Uri(e))));
        }
        return channel.Value.CreateCallInvoker();
    }

    public void Dispose()
    {
        _disposed = true;
        foreach (var c in _channels.Values)
            if (c.IsValueCreated) c.Value.Dispose();
        _channels.Clear();
    }
}
