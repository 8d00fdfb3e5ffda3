namespace StreamPlatform.Controller.Metadata;

/// <summary>
/// The newest metadata epoch each broker reports having applied (BrokerHeartbeat
/// <c>metadata_epoch</c>): a broker that has applied epoch E has the logs and leadership of
/// every partition as of E, so it takes writes for them. Liveness-like, so in memory only (a
/// controller restart starts empty and learns it from the next heartbeats).
/// </summary>
public sealed class AppliedEpochs
{
    private readonly Lock _gate = new();
    private readonly Dictionary<int, long> _epochs = [];
    private TaskCompletionSource _advanced = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public long Of(int brokerId)
    {
        lock (_gate) return _epochs.TryGetValue(brokerId, out var e) ? e : 0;
    }

    /// <summary>Records a report; epochs only move forward within one registration.</summary>
    public void Report(int brokerId, long epoch)
    {
        TaskCompletionSource advanced;
        lock (_gate)
        {
            if (_epochs.TryGetValue(brokerId, out var known) && known >= epoch) return;
            _epochs[brokerId] = epoch;
            advanced = _advanced;
            _advanced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        advanced.TrySetResult();
    }

    /// <summary>A new registration is a new process: what the previous one applied says nothing about it.</summary>
    public void Forget(int brokerId)
    {
        lock (_gate) _epochs.Remove(brokerId);
    }

    /// <summary>Waits until <paramref name="ready"/> holds (checked after every report), at most <paramref name="max"/>. False on timeout.</summary>
    public async Task<bool> WaitAsync(Func<bool> ready, TimeSpan max, TimeProvider time, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(max, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        while (true)
        {
            Task advanced;
            lock (_gate) advanced = _advanced.Task;
            if (ready()) return true;
            try
            {
                await advanced.WaitAsync(linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                return ready();
            }
        }
    }
}
