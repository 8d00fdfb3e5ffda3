namespace StreamPlatform.Gateway.Routing;

/// <summary>
/// The bytes every connection's read-ahead fetches (<see cref="FetchReadAhead"/>) may hold at
/// once, gateway-wide (GatewayOptions.FetchReadAheadBytesMax): a read-ahead that does not fit is
/// not started, so speculation never waits and never grows memory past the limit. Each started
/// read-ahead reserves the most its answer can hold (the request's max_bytes, capped by the sum
/// of its partitions' max bytes) until it is taken by a fetch or abandoned.
/// </summary>
public sealed class FetchReadAheadBudget(long capacityBytes)
{
    private long _inUseBytes;

    public long CapacityBytes { get; } = capacityBytes;
    public long InUseBytes => Interlocked.Read(ref _inUseBytes);

    /// <summary>Reserves <paramref name="bytes"/> when they fit; each success needs one <see cref="Release"/> of the same size.</summary>
    public bool TryReserve(long bytes)
    {
        if (bytes <= 0 || bytes > CapacityBytes) return false;
        while (true)
        {
            var used = Interlocked.Read(ref _inUseBytes);
            if (used + bytes > CapacityBytes) return false;
            if (Interlocked.CompareExchange(ref _inUseBytes, used + bytes, used) == used) return true;
        }
    }

    public void Release(long bytes)
    {
        var left = Interlocked.Add(ref _inUseBytes, -bytes);
        if (left < 0) throw new InvalidOperationException($"Read-ahead budget released more than reserved ({left} bytes).");
    }
}
