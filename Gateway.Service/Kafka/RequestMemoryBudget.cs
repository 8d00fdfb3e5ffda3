namespace StreamPlatform.Gateway.Kafka;

/// <summary>
/// The bytes of request frames a gateway holds at once, over all its connections (Kafka's
/// queued.max.request.bytes). A frame is held from the moment it is copied out of the socket
/// until its handler has completed; a connection whose next frame does not fit stops reading
/// (TCP back-pressure) until enough is released. Per-connection limits alone (in-flight requests
/// times the frame size) would let a few pipelining producers make the gateway buffer gigabytes.
/// Waiters are served in arrival order, so a large frame is not starved by small ones; a frame
/// larger than the whole budget still goes through when nothing else is held (it is already
/// bounded by the frame size limit).
/// </summary>
public sealed class RequestMemoryBudget
{
    private readonly object _gate = new();
    private readonly LinkedList<Waiter> _waiters = new();
    private long _inUseBytes;

    private sealed class Waiter(int bytes)
    {
        public int Bytes { get; } = bytes;
        public TaskCompletionSource Granted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public RequestMemoryBudget(long capacityBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacityBytes, 1);
        CapacityBytes = capacityBytes;
    }

    public long CapacityBytes { get; }

    public long InUseBytes
    {
        get { lock (_gate) return _inUseBytes; }
    }

    public int Waiting
    {
        get { lock (_gate) return _waiters.Count; }
    }

    /// <summary>Completes once <paramref name="bytes"/> are held; each successful wait needs one <see cref="Release"/> of the same size.</summary>
    public ValueTask WaitAsync(int bytes, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Waiter waiter;
        LinkedListNode<Waiter> node;
        lock (_gate)
        {
            if (_waiters.Count == 0 && Fits(bytes))
            {
                _inUseBytes += bytes;
                return ValueTask.CompletedTask;
            }
            waiter = new Waiter(bytes);
            node = _waiters.AddLast(waiter);
        }
        return new ValueTask(WaitQueuedAsync(node, cancellationToken));
    }

    private async Task WaitQueuedAsync(LinkedListNode<Waiter> node, CancellationToken cancellationToken)
    {
        var waiter = node.Value;
        await using (cancellationToken.Register(() =>
        {
            lock (_gate)
            {
                // Granted meanwhile: the grant stands and the caller releases it as usual.
                if (waiter.Granted.Task.IsCompleted) return;
                _waiters.Remove(node);
                // A cancelled head may have been holding back smaller waiters behind it.
                GrantWaiters();
            }
            waiter.Granted.TrySetCanceled(cancellationToken);
        }).ConfigureAwait(false))
        {
            await waiter.Granted.Task.ConfigureAwait(false);
        }
    }

    public void Release(int bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        lock (_gate)
        {
            if (bytes > _inUseBytes) throw new InvalidOperationException($"Released {bytes} bytes with only {_inUseBytes} held.");
            _inUseBytes -= bytes;
            GrantWaiters();
        }
    }

    private bool Fits(int bytes) => _inUseBytes == 0 || _inUseBytes + bytes <= CapacityBytes;

    // Under _gate: grants waiters in order while the head fits.
    private void GrantWaiters()
    {
        while (_waiters.First is { } head && Fits(head.Value.Bytes))
        {
            _waiters.RemoveFirst();
            _inUseBytes += head.Value.Bytes;
            head.Value.Granted.TrySetResult();
        }
    }
}
