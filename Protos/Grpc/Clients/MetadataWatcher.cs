using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.Protos.Grpc.Clients;

/// <summary>
/// Holds a ControllerService.WatchMetadata stream open and publishes each snapshot as an indexed
/// <see cref="ClusterMetadata"/>. Used by brokers and gateways. The stream is long-lived, so it
/// does not go through the standard resilience handler: on any failure it waits (bounded
/// exponential backoff) and reconnects, asking for snapshots above the epoch it already has.
/// </summary>
public sealed class MetadataWatcher : IAsyncDisposable
{
    private static readonly TimeSpan BackoffMin = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan BackoffMax = TimeSpan.FromSeconds(2);

    private readonly ControllerService.ControllerServiceClient _client;
    private readonly string _watcherName;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _gate = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _loop;
    private volatile ClusterMetadata _current = ClusterMetadata.Empty;

    public MetadataWatcher(GrpcChannel controllerChannel, string watcherName, ILogger logger, TimeProvider? time = null)
    {
        _client = new ControllerService.ControllerServiceClient(controllerChannel);
        _watcherName = watcherName;
        _logger = logger;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The newest applied metadata (epoch 0 and empty before the first snapshot).</summary>
    public ClusterMetadata Current => _current;

    /// <summary>Raised after each new snapshot is applied, on the watcher's loop (keep it quick).</summary>
    public event Action<ClusterMetadata>? Applied;

    public void Start()
    {
        lock (_gate) _loop ??= Task.Run(() => RunAsync(_stop.Token));
    }

    /// <summary>Completes once metadata at or above <paramref name="epoch"/> is applied.</summary>
    public async Task WaitForEpochAsync(long epoch, CancellationToken cancellationToken)
    {
        while (_current.Epoch < epoch)
        {
            Task changed;
            lock (_gate) changed = _changed.Task;
            if (_current.Epoch >= epoch) return;
            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Completes when the next snapshot after the current one is applied.</summary>
    public Task WaitForNextAsync(CancellationToken cancellationToken)
    {
        lock (_gate) return _changed.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Applies a snapshot obtained out of band (e.g. from a CreateTopics round trip).</summary>
    public void Apply(MetadataSnapshot snapshot)
    {
        TaskCompletionSource changed;
        ClusterMetadata applied;
        lock (_gate)
        {
            // Epochs only move forward: an older snapshot arriving late is ignored.
            if (snapshot.MetadataEpoch <= _current.Epoch && _current.Epoch != 0) return;
            applied = new ClusterMetadata(snapshot);
            _current = applied;
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        changed.TrySetResult();
        try
        {
            Applied?.Invoke(applied);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "A metadata subscriber failed on epoch {Epoch}", applied.Epoch);
        }
    }

    private Task RunAsync(CancellationToken stop) => ReconnectingStream.RunAsync(
        async (progress, ct) =>
        {
            using var call = _client.WatchMetadata(
                new WatchMetadataRequest { Watcher = _watcherName, KnownEpoch = _current.Epoch },
                cancellationToken: ct);
            await foreach (var update in call.ResponseStream.ReadAllAsync(ct).ConfigureAwait(false))
            {
                progress();
                if (update.KindCase == MetadataUpdate.KindOneofCase.Snapshot)
                    Apply(update.Snapshot);
            }
        },
        (ex, delay) =>
        {
            if (ex is not null)
                _logger.LogWarning("Metadata watch to the controller broke ({Reason}); reconnecting in {DelayMs} ms",
                    ReconnectingStream.Reason(ex), (int)delay.TotalMilliseconds);
        },
        _time, BackoffMin, BackoffMax, stop);

    private int _disposed;

    public async ValueTask DisposeAsync()
    {
        // Idempotent: hosts and DI containers may both dispose it.
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stop.Cancel();
        if (_loop is not null)
        {
            try { await _loop.ConfigureAwait(false); } catch (OperationCanceledException) { }
        }
        _stop.Dispose();
    }
}
