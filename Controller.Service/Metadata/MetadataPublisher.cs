using StreamPlatform.Protos.Grpc;

namespace StreamPlatform.Controller.Metadata;

/// <summary>
/// Holds the newest committed snapshot and wakes watchers when it changes. Keeps only the latest
/// snapshot, never a queue: a slow watcher skips intermediate epochs and gets the newest one
/// (each snapshot is complete, so nothing is lost by skipping).
/// </summary>
public sealed class MetadataPublisher
{
    private readonly Lock _gate = new();
    private MetadataSnapshot? _current;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Null until the log has been replayed.</summary>
    public MetadataSnapshot? Current
    {
        get { lock (_gate) return _current; }
    }

    public void Publish(MetadataSnapshot snapshot)
    {
        TaskCompletionSource old;
        lock (_gate)
        {
            if (_current is not null && snapshot.MetadataEpoch <= _current.MetadataEpoch) return;
            _current = snapshot;
            old = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        old.TrySetResult();
    }

    /// <summary>Returns the newest snapshot once its epoch is above <paramref name="epoch"/>.</summary>
    public async Task<MetadataSnapshot> WaitForNewerAsync(long epoch, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                if (_current is not null && _current.MetadataEpoch > epoch) return _current;
                changed = _changed.Task;
            }
            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
