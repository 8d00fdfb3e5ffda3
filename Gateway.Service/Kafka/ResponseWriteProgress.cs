namespace StreamPlatform.Gateway.Kafka;

/// <summary>
/// How far a connection's writer has got through its response queue: entries queued by the read
/// loop, entries the writer is done with (written or dropped). A request whose response may be
/// large (Fetch, <c>IApiHandler.ResponseMayBeLarge</c>) starts only once every entry queued before
/// it is done, so a client that pipelines fetches and never reads makes the gateway hold at most
/// one fetch answer for it. Waiters are kept in increasing count order (entries are queued in order).
/// </summary>
internal sealed class ResponseWriteProgress
{
    private readonly Queue<(long Count, TaskCompletionSource Done)> _waiters = new();
    private long _queued; // touched by the read loop only
    private long _written;
    private volatile bool _stopped;

    /// <summary>Entries queued so far (read loop only).</summary>
    public long Queued => _queued;

    /// <summary>The writer has stopped: no later response will be written.</summary>
    public bool Stopped => _stopped;

    /// <summary>The read loop queued one more entry.</summary>
    public void EntryQueued() => _queued++;

    /// <summary>Completes once the writer is done with the first <paramref name="count"/> entries (or has stopped).</summary>
    public Task WhenWritten(long count)
    {
        lock (_waiters)
        {
            if (_written >= count || _stopped) return Task.CompletedTask;
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Enqueue((count, done));
            return done.Task;
        }
    }

    /// <summary>The writer is done with one more entry.</summary>
    public void EntryWritten() => Advance(stopped: false);

    /// <summary>The writer stopped: every waiter is released (and finds <see cref="Stopped"/> set).</summary>
    public void WriterStopped() => Advance(stopped: true);

    private void Advance(bool stopped)
    {
        lock (_waiters)
        {
            if (stopped) _stopped = true;
            else _written++;
            while (_waiters.TryPeek(out var head) && (_stopped || head.Count <= _written))
                _waiters.Dequeue().Done.TrySetResult();
        }
    }
}
