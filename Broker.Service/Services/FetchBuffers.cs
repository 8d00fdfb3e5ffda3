using System.Buffers;

namespace StreamPlatform.Broker.Services;

/// <summary>
/// The rented buffers one Fetch response's records live in. A 1 MiB partition read copied into a
/// fresh array per fetch lands on the Large Object Heap (page faults, gen2 collections); renting
/// avoids that, but the buffers may only go back to the pool once nothing can read them: the
/// gRPC call registers the instance with the HTTP response, which disposes it after the
/// response was serialized and sent (or the call aborted). Not thread-safe: one fetch uses it.
/// </summary>
public sealed class FetchBuffers(ArrayPool<byte> pool) : IDisposable
{
    private readonly List<byte[]> _rented = [];

    /// <summary>Bytes rented and not returned yet (tests).</summary>
    public long RentedBytes { get; private set; }

    /// <summary>A buffer of at least <paramref name="length"/> bytes, owned until <see cref="ReturnAll"/>.</summary>
    public byte[] Rent(int length)
    {
        var buffer = pool.Rent(length);
        _rented.Add(buffer);
        RentedBytes += buffer.Length;
        return buffer;
    }

    /// <summary>Gives every buffer back: the responses built from them must be unreachable by then.</summary>
    public void ReturnAll()
    {
        foreach (var buffer in _rented) pool.Return(buffer);
        _rented.Clear();
        RentedBytes = 0;
    }

    public void Dispose() => ReturnAll();
}
