using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Grpc;
using Grpc.Core;
using StreamPlatform.Broker.Services;

namespace StreamPlatform.Broker.Replication;

/// <summary>
/// One <see cref="ReplicaFetcher"/> per leader broker this broker follows partitions of (Kafka's
/// ReplicaFetcherManager): partitions are added when they become followers, moved when their
/// leader changes, removed when they become leaders or go away. A leader whose endpoint changed
/// (restarted elsewhere) gets a new fetcher; one with no partitions left is stopped. Channels
/// are the broker's <see cref="BrokerChannels"/> (one per endpoint, without the resilience
/// handler: a stream is not retried blindly).
/// </summary>
public sealed class ReplicaFetcherManager : IAsyncDisposable
{
    private readonly ReplicaManager _replicas;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggers;
    private readonly Func<string, CallInvoker> _clients;
    // Channels of a manager made without the broker's pool (unit tests): its own, disposed with it.
    private readonly BrokerChannels? _ownChannels;
    private readonly object _lock = new();
    private readonly Dictionary<int, ReplicaFetcher> _fetchers = [];
    private readonly Dictionary<TopicPartition, int> _leaderOf = [];
    private bool _disposed;

    internal ReplicaFetcherManager(ReplicaManager replicas, TimeProvider time, ILoggerFactory loggers, Func<string, CallInvoker>? clients)
    {
        _replicas = replicas;
        _time = time;
        _loggers = loggers;
        if (clients is null) _ownChannels = new BrokerChannels();
        _clients = clients ?? _ownChannels!.Invoker;
    }

    /// <summary>The fetchers by leader broker id (a snapshot).</summary>
    public IReadOnlyDictionary<int, ReplicaFetcher> Fetchers { get { lock (_lock) return new Dictionary<int, ReplicaFetcher>(_fetchers); } }

    /// <summary>Fetches <paramref name="partition"/> from <paramref name="leader"/>; null (no live leader): fetched from nobody until metadata names one.</summary>
    public void Follow(Partition partition, BrokerInfo? leader)
    {
        var tp = partition.TopicPartition;
        if (leader is null || string.IsNullOrEmpty(leader.GrpcEndpoint))
        {
            Remove(tp);
            return;
        }
        List<ReplicaFetcher> stopped = [];
        lock (_lock)
        {
            if (_disposed) return;
            if (_leaderOf.TryGetValue(tp, out var previous) && previous != leader.BrokerId) RemoveLocked(tp, stopped);
            if (_fetchers.TryGetValue(leader.BrokerId, out var fetcher) && fetcher.Endpoint != leader.GrpcEndpoint)
            {
                // Restarted at another address: a new stream, with everything the old one fetched.
                _fetchers.Remove(leader.BrokerId);
                stopped.Add(fetcher);
                var moved = fetcher.Snapshot();
                fetcher = NewFetcher(leader);
                foreach (var (p, epoch) in moved) fetcher.Add(p, epoch);
            }
            else if (fetcher is null)
            {
                fetcher = NewFetcher(leader);
            }
            fetcher.Add(partition, partition.LeaderEpoch);
            _leaderOf[tp] = leader.BrokerId;
        }
        foreach (var f in stopped) _ = f.DisposeAsync().AsTask();
    }

    private ReplicaFetcher NewFetcher(BrokerInfo leader)
    {
        var fetcher = new ReplicaFetcher(leader.BrokerId, leader.GrpcEndpoint, _clients(leader.GrpcEndpoint), _replicas, _time, _loggers.CreateLogger<ReplicaFetcher>());
        _fetchers[leader.BrokerId] = fetcher;
        fetcher.Start();
        return fetcher;
    }

    public void Remove(TopicPartition tp)
    {
        List<ReplicaFetcher> stopped = [];
        lock (_lock) RemoveLocked(tp, stopped);
        foreach (var f in stopped) _ = f.DisposeAsync().AsTask();
    }

    private void RemoveLocked(TopicPartition tp, List<ReplicaFetcher> stopped)
    {
        if (!_leaderOf.Remove(tp, out var leaderId) || !_fetchers.TryGetValue(leaderId, out var fetcher)) return;
        fetcher.Remove(tp);
        if (fetcher.Count > 0) return;
        _fetchers.Remove(leaderId);
        stopped.Add(fetcher);
    }

    public async ValueTask DisposeAsync()
    {
        ReplicaFetcher[] all;
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            all = [.. _fetchers.Values];
            _fetchers.Clear();
            _leaderOf.Clear();
        }
        foreach (var f in all) await f.DisposeAsync().ConfigureAwait(false);
        _ownChannels?.Dispose();
    }
}
