using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Replication;

/// <summary>
/// One leader partition's acks=-1 produce waiters (Kafka's DelayedProduce in its purgatory,
/// keyed by partition): each waits until the high watermark reaches the offset after its last
/// appended record, and completes with an error code: 0, NOT_ENOUGH_REPLICAS_AFTER_APPEND (the
/// ISR shrank below min.insync.replicas meanwhile), REQUEST_TIMED_OUT (its request's timeout
/// token fired first) or NOT_LEADER_OR_FOLLOWER (leadership lost). Checked whenever the high
/// watermark advances; waiters of one partition never hold up those of another.
/// </summary>
public sealed class CommitPurgatory
{
    /// <summary>
    /// Waiters held at most per partition. Callers bound themselves well below it (a produce
    /// stream holds at most <see cref="Services.BrokerGrpcService.StreamWaitingRequestsMax"/> waiting
    /// requests); past it a waiter is answered REQUEST_TIMED_OUT at once (its records are appended,
    /// only the commit is not awaited, as when a timeout fires).
    /// </summary>
    public const int WaitersMax = 65536;

    private readonly object _lock = new();
    // Min-heap by required offset: appends of different requests register in any order.
    private readonly PriorityQueue<Waiter, long> _waiters = new();

    /// <summary>Waiters registered and not yet removed (completed ones are removed lazily).</summary>
    public int Count { get { lock (_lock) return _waiters.Count; } }

    /// <summary>
    /// Registers a waiter for <paramref name="requiredOffset"/> (last offset + 1). The caller
    /// checks the high watermark right after (<see cref="CompleteUpTo"/>), so an advance between
    /// its append and this call is not missed, and only then arms the timeout
    /// (<see cref="Waiter.ArmTimeout"/>): a request whose timeout is 0 still succeeds when the
    /// records are committed at once (ISR = the leader alone), as Kafka's DelayedProduce does.
    /// </summary>
    internal Waiter Add(long requiredOffset)
    {
        var waiter = new Waiter(requiredOffset);
        lock (_lock)
        {
            if (_waiters.Count >= WaitersMax) PurgeCompletedLocked();
            if (_waiters.Count >= WaitersMax)
            {
                waiter.TrySetResult(ErrorCodes.RequestTimedOut);
                return waiter;
            }
            _waiters.Enqueue(waiter, requiredOffset);
        }
        return waiter;
    }

    /// <summary>Waits (tests, internal writers) for <paramref name="requiredOffset"/> with a timeout token.</summary>
    public Task<short> WaitAsync(long requiredOffset, CancellationToken timeout)
    {
        var waiter = Add(requiredOffset);
        waiter.ArmTimeout(timeout);
        return waiter.Task;
    }

    /// <summary>Completes every waiter whose required offset is at or below <paramref name="highWatermark"/> with <paramref name="errorCode"/>.</summary>
    public void CompleteUpTo(long highWatermark, short errorCode)
    {
        List<Waiter>? done = null;
        lock (_lock)
        {
            while (_waiters.TryPeek(out var w, out var required) && required <= highWatermark)
            {
                _waiters.Dequeue();
                (done ??= []).Add(w);
            }
        }
        if (done is null) return;
        foreach (var w in done) w.Finish(errorCode);
    }

    /// <summary>Completes every waiter with <paramref name="errorCode"/> (leadership lost, partition stopped).</summary>
    public void CompleteAll(short errorCode)
    {
        Waiter[] all;
        lock (_lock)
        {
            all = [.. _waiters.UnorderedItems.Select(e => e.Element)];
            _waiters.Clear();
        }
        foreach (var w in all) w.Finish(errorCode);
    }

    private void PurgeCompletedLocked()
    {
        var live = _waiters.UnorderedItems.Where(e => !e.Element.Task.IsCompleted).ToList();
        _waiters.Clear();
        foreach (var (w, p) in live) _waiters.Enqueue(w, p);
    }

    internal sealed class Waiter(long requiredOffset) : TaskCompletionSource<short>(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public long RequiredOffset { get; } = requiredOffset;
        private CancellationTokenRegistration Registration { get; set; }

        /// <summary>From now on the token firing answers REQUEST_TIMED_OUT (unless completed before).</summary>
        public void ArmTimeout(CancellationToken timeout)
        {
            if (Task.IsCompleted || !timeout.CanBeCanceled) return;
            Registration = timeout.Register(static w => ((Waiter)w!).TrySetResult(ErrorCodes.RequestTimedOut), this);
        }

        public void Finish(short errorCode)
        {
            // Unregister, not Dispose: Dispose would block while a timeout callback runs.
            Registration.Unregister();
            TrySetResult(errorCode);
        }
    }
}
