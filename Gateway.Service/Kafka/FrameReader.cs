using System.Buffers;
using System.Buffers.Binary;

namespace StreamPlatform.Gateway.Kafka;

public enum FrameStatus
{
    /// <summary>Not enough bytes yet: wait for more (nothing consumed).</summary>
    Incomplete,
    /// <summary>A whole frame was sliced off the buffer.</summary>
    Complete,
    /// <summary>The declared size is negative or above the limit: the connection must be closed.</summary>
    Invalid,
}

/// <summary>
/// Kafka framing: a 4-byte big-endian size, then that many bytes (request header + body).
/// </summary>
public static class FrameReader
{
    public const int SizePrefixBytes = 4;

    /// <summary>
    /// Slices one frame (without its size prefix) off the front of <paramref name="buffer"/>.
    /// The declared size is checked against <paramref name="maxFrameBytes"/> as soon as the 4
    /// prefix bytes are there, i.e. before any of the body is buffered: a hostile or broken client
    /// cannot make us hold 2 GiB waiting for a frame we would reject anyway.
    /// </summary>
    public static FrameStatus TryReadFrame(ref ReadOnlySequence<byte> buffer, int maxFrameBytes,
        out ReadOnlySequence<byte> frame, out int declaredSize)
    {
        frame = default;
        declaredSize = 0;
        if (buffer.Length < SizePrefixBytes) return FrameStatus.Incomplete;

        Span<byte> prefix = stackalloc byte[SizePrefixBytes];
        buffer.Slice(0, SizePrefixBytes).CopyTo(prefix);
        declaredSize = BinaryPrimitives.ReadInt32BigEndian(prefix);
        if (declaredSize < 0 || declaredSize > maxFrameBytes) return FrameStatus.Invalid;
        if (buffer.Length - SizePrefixBytes < declaredSize) return FrameStatus.Incomplete;

        frame = buffer.Slice(SizePrefixBytes, declaredSize);
        buffer = buffer.Slice(frame.End);
        return FrameStatus.Complete;
    }
}
