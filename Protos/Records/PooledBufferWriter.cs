using System.Buffers;

namespace StreamPlatform.Protos.Records;

/// <summary>
/// An <see cref="IBufferWriter{T}"/> over one array rented from a pool (<see cref="ArrayPool{T}.Shared"/>
/// unless given, e.g. <see cref="DecompressionMemory"/> for decompressed records), grown by doubling. Decompressed records and encoded batches land here instead of fresh arrays;
/// <see cref="Dispose"/> returns the array, after which slices of <see cref="WrittenMemory"/> are invalid.
/// </summary>
public sealed class PooledBufferWriter : IBufferWriter<byte>, IDisposable
{
    private const int InitialCapacityBytes = 256;
    // Array.MaxLength: the largest byte[] the runtime allows.
    private const int CapacityBytesMax = 0x7FFFFFC7;

    private readonly ArrayPool<byte> _pool;
    private byte[] _buffer;
    private int _written;

    public PooledBufferWriter(int initialCapacityBytes = InitialCapacityBytes, ArrayPool<byte>? pool = null)
    {
        _pool = pool ?? ArrayPool<byte>.Shared;
        _buffer = _pool.Rent(Math.Max(initialCapacityBytes, 16));
    }

    public int WrittenCount => _written;
    public ReadOnlyMemory<byte> WrittenMemory => Buffer.AsMemory(0, _written);
    public ReadOnlySpan<byte> WrittenSpan => Buffer.AsSpan(0, _written);
    /// <summary>Writable view of what was written (the builder patches header fields in place).</summary>
    public Span<byte> WrittenSpanMutable => Buffer.AsSpan(0, _written);

    // After Dispose the buffer is the empty array and nothing is written: views are empty.
    private byte[] Buffer => _buffer;

    public void Clear() => _written = 0;

    public void Advance(int count)
    {
        if (count < 0 || count > _buffer.Length - _written) throw new ArgumentOutOfRangeException(nameof(count));
        _written += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_written);
    }

    /// <summary>Copies the written bytes into a new array (tests, callers that must own the bytes).</summary>
    public byte[] ToArray() => WrittenSpan.ToArray();

    private void Ensure(int sizeHint)
    {
        ObjectDisposedException.ThrowIf(_buffer.Length == 0, this);
        if (sizeHint <= 0) sizeHint = 1;
        if (sizeHint <= _buffer.Length - _written) return;
        var needed = (long)_written + sizeHint;
        if (needed > CapacityBytesMax) throw new InsufficientMemoryException($"Buffer would exceed {CapacityBytesMax} bytes.");
        var size = Math.Min(Math.Max((long)_buffer.Length * 2, needed), CapacityBytesMax);
        var next = _pool.Rent((int)size);
        _buffer.AsSpan(0, _written).CopyTo(next);
        _pool.Return(_buffer);
        _buffer = next;
    }

    public void Dispose()
    {
        if (_buffer.Length == 0) return;
        _pool.Return(_buffer);
        _buffer = [];
        _written = 0;
    }
}
