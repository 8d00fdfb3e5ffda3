using System.Buffers;
using System.Collections.Concurrent;

namespace StreamPlatform.UnitTests;

/// <summary>A multi-segment <see cref="ReadOnlySequence{T}"/> built by hand, as a socket's pipe hands out bytes.</summary>
internal sealed class Segment : ReadOnlySequenceSegment<byte>
{
    public Segment(ReadOnlyMemory<byte> memory) => Memory = memory;

    public Segment Append(ReadOnlyMemory<byte> memory)
    {
        var next = new Segment(memory) { RunningIndex = RunningIndex + Memory.Length };
        Next = next;
        return next;
    }

    /// <summary>The bytes as a sequence of <paramref name="segmentBytes"/>-byte segments (fields straddle segment boundaries).</summary>
    public static ReadOnlySequence<byte> Split(byte[] bytes, int segmentBytes)
    {
        Segment? first = null, last = null;
        for (var i = 0; i < bytes.Length; i += segmentBytes)
        {
            var memory = bytes.AsMemory(i, Math.Min(segmentBytes, bytes.Length - i));
            last = last is null ? new Segment(memory) : last.Append(memory);
            first ??= last;
        }
        return first is null ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(first, 0, last!, last!.Memory.Length);
    }
}

/// <summary>
/// An array pool for tests of code that lends pooled buffers out: counts rents and returns, fails
/// on an array returned twice or never rented, hands out arrays larger than asked (as real pools
/// do) and fills a returned array with garbage, so a reader of returned bytes sees it.
/// </summary>
internal sealed class PoisoningArrayPool : ArrayPool<byte>
{
    public const byte Poison = 0xEE;
    public readonly ConcurrentDictionary<byte[], bool> Outstanding = new(ReferenceEqualityComparer.Instance);
    private int _rented;
    private int _returned;

    public int Rented => Volatile.Read(ref _rented);
    public int Returned => Volatile.Read(ref _returned);

    public override byte[] Rent(int minimumLength)
    {
        var array = new byte[minimumLength + 7];
        Outstanding[array] = true;
        Interlocked.Increment(ref _rented);
        return array;
    }

    public override void Return(byte[] array, bool clearArray = false)
    {
        Assert.True(Outstanding.TryRemove(array, out _), "returned twice or never rented");
        array.AsSpan().Fill(Poison);
        Interlocked.Increment(ref _returned);
    }
}

/// <summary>Protobuf wire-format pieces for hand-made malformed inputs.</summary>
internal static class ProtoBytes
{
    /// <summary>A varint's bytes (protobuf encoding of an unsigned 64-bit value).</summary>
    public static byte[] Varint(ulong value)
    {
        var bytes = new List<byte>();
        while (value >= 0x80)
        {
            bytes.Add((byte)(value | 0x80));
            value >>= 7;
        }
        bytes.Add((byte)value);
        return [.. bytes];
    }
}
