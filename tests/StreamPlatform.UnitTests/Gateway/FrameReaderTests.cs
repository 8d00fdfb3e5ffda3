using System.Buffers;
using System.Buffers.Binary;
using StreamPlatform.Gateway.Kafka;

namespace StreamPlatform.UnitTests.Gateway;

public class FrameReaderTests
{
    private static byte[] Frame(params byte[] body)
    {
        var bytes = new byte[4 + body.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, body.Length);
        body.CopyTo(bytes, 4);
        return bytes;
    }

    [Fact]
    public void Partial_prefix_and_partial_body_wait_for_more_bytes()
    {
        var full = Frame(1, 2, 3, 4, 5);
        for (var cut = 0; cut < full.Length; cut++)
        {
            var buffer = new ReadOnlySequence<byte>(full, 0, cut);
            var status = FrameReader.TryReadFrame(ref buffer, 100, out _, out _);
            Assert.Equal(FrameStatus.Incomplete, status);
            Assert.Equal(cut, buffer.Length); // nothing consumed
        }
    }

    [Fact]
    public void Oversized_frame_is_rejected_from_the_prefix_alone()
    {
        var prefix = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(prefix, 1_000_001);
        var buffer = new ReadOnlySequence<byte>(prefix);
        Assert.Equal(FrameStatus.Invalid, FrameReader.TryReadFrame(ref buffer, 1_000_000, out _, out var declared));
        Assert.Equal(1_000_001, declared);
    }

    [Fact]
    public void Negative_size_is_rejected()
    {
        var buffer = new ReadOnlySequence<byte>(new byte[] { 0xFF, 0xFF, 0xFF, 0xFE, 1, 2 });
        Assert.Equal(FrameStatus.Invalid, FrameReader.TryReadFrame(ref buffer, 100, out _, out var declared));
        Assert.Equal(-2, declared);
    }

    [Fact]
    public void Pipelined_frames_are_sliced_one_by_one_and_a_trailing_partial_stays()
    {
        var bytes = Frame(1, 2).Concat(Frame(3)).Concat(Frame()).Concat(Frame(9, 9, 9)[..5]).ToArray();
        var buffer = new ReadOnlySequence<byte>(bytes);
        Assert.Equal(FrameStatus.Complete, FrameReader.TryReadFrame(ref buffer, 100, out var f1, out _));
        Assert.Equal(new byte[] { 1, 2 }, f1.ToArray());
        Assert.Equal(FrameStatus.Complete, FrameReader.TryReadFrame(ref buffer, 100, out var f2, out _));
        Assert.Equal(new byte[] { 3 }, f2.ToArray());
        Assert.Equal(FrameStatus.Complete, FrameReader.TryReadFrame(ref buffer, 100, out var f3, out _));
        Assert.Equal(0, f3.Length);
        Assert.Equal(FrameStatus.Incomplete, FrameReader.TryReadFrame(ref buffer, 100, out _, out _));
        Assert.Equal(5, buffer.Length);
    }

    [Fact]
    public void Frame_split_across_segments_is_read_whole()
    {
        var bytes = Frame(1, 2, 3, 4, 5, 6);
        var first = new Segment(bytes.AsMemory(0, 3));
        var last = first.Append(bytes.AsMemory(3, 4)).Append(bytes.AsMemory(7));
        var buffer = new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
        Assert.Equal(FrameStatus.Complete, FrameReader.TryReadFrame(ref buffer, 100, out var frame, out _));
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6 }, frame.ToArray());
        Assert.True(buffer.IsEmpty);
    }
}
