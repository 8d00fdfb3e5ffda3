namespace StreamPlatform.Gateway.Kafka;

/// <summary>
/// The bytes of request frames a gateway holds at once, over all its connections (Kafka's
/// queued.max.request.bytes). A frame is held from the moment it is copied out of the socket
/// until its handler has completed; a connection whose next frame does not fit stops reading
/// (TCP back-pressure) until enough is released. Per-connection limits alone (in-flight requests
/// times the frame size) would let a few pipelining producers make the gateway buffer gigabytes.
/// Waiters are served in arrival order, so a large frame is not starved by small ones; a frame
/// larger than the whole budget still goes through when nothing else is held (it is already
/// bounded by the frame size limit). A waiter that does not keep its place (a frame of which
/// only the size has arrived: <c>keepsPlace: false</c>) is granted whenever it fits but holds
/// nobody back: a client declaring large frames it never sends cannot queue every other
/// connection behind it.
/// </summary>
public sealed class RequestMemoryBudget
{
    private readonly object _gate = new();
    private readonly LinkedList<Waiter> _waiters = new();
    private long _inUseBytes;

    private int _placeKeepers; // waiters with KeepsPlace

    private sealed class Waiter(int bytes, bool keepsPlace)
    {
        public int Bytes { get; } = bytes;
        public bool KeepsPlace { get; } = keepsPlace;
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

    /// <summary>
    /// Completes once <paramref name="bytes"/> are held; each successful wait needs one
    /// <see cref="Release"/> of the same size. <paramref name="keepsPlace"/> false: granted when
    /// it fits, without holding back those who arrive after it.
    /// </summary>
    public ValueTask WaitAsync(int bytes, CancellationToken cancellationToken, bool keepsPlace = true)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Waiter waiter;
        LinkedListNode<Waiter> node;
        lock (_gate)
        {
            if (_placeKeepers == 0 && Fits(bytes))
            {
                _inUseBytes += bytes;
                return ValueTask.CompletedTask;
            }
            waiter = new Waiter(bytes, keepsPlace);
            node = _waiters.AddLast(waiter);
            if (keepsPlace) _placeKeepers++;
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
                if (waiter.KeepsPlace) _placeKeepers--;
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

    // Under _gate: grants waiters in order while they fit, up to the first place keeper that does not.
    private void GrantWaiters()
    {
        var node = _waiters.First;
        while (node is not null)
        {
            var next = node.Next;
            var waiter = node.Value;
            if (Fits(waiter.Bytes))
            {
                _waiters.Remove(node);
                if (waiter.KeepsPlace) _placeKeepers--;
                _inUseBytes += waiter.Bytes;
                waiter.Granted.TrySetResult();
            }
            else if (waiter.KeepsPlace)
            {
                return;
            }
            node = next;
        }
    }
}
