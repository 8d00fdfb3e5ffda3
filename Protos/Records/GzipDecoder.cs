using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Protos.Records;

/// <summary>
/// Decodes the records region of a gzip batch and checks its framing completely (RFC 1952):
/// exactly one member, header fields well formed (FHCRC verified when present), a deflate stream
/// that ends exactly 8 bytes before the input does, and the trailer's CRC32 and ISIZE matching
/// what was inflated. <see cref="GZipStream"/> alone accepts a cut-off trailer, a cut-off
/// deflate stream and trailing garbage without a word; such a batch was stored and then made
/// librdkafka consumers spin and kafka-python raise EOFError.
/// More than one member is refused too: Java reads every member, other clients only the first,
/// so they would see different records.
/// </summary>
internal static class GzipDecoder
{
    private const byte Id1 = 0x1f;
    private const byte Id2 = 0x8b;
    private const byte MethodDeflate = 8;
    private const byte FlagHeaderCrc = 0x02;
    private const byte FlagExtra = 0x04;
    private const byte FlagName = 0x08;
    private const byte FlagComment = 0x10;
    private const byte FlagsReserved = 0xE0;
    private const int FixedHeaderBytes = 10;
    private const int TrailerBytes = 8;
    private const int ChunkBytes = 16 * 1024;

    /// <summary>The trailer's ISIZE (uncompressed size mod 2^32), or -1 when the input is too short to have one.</summary>
    public static long DeclaredSize(ReadOnlySpan<byte> input)
        => input.Length >= FixedHeaderBytes + TrailerBytes ? BinaryPrimitives.ReadUInt32LittleEndian(input[^4..]) : -1;

    public static unsafe int Decompress(ReadOnlySpan<byte> input, IBufferWriter<byte> output, int decompressedBytesMax)
    {
        var headerBytes = ReadHeader(input);
        if (input.Length - headerBytes < TrailerBytes)
            throw Corrupt($"the trailer (CRC32, ISIZE) needs {TrailerBytes} bytes after the header, {input.Length - headerBytes} are left");
        var declaredSize = BinaryPrimitives.ReadUInt32LittleEndian(input[^4..]);
        var declaredCrc = BinaryPrimitives.ReadUInt32LittleEndian(input[^8..]);
        // ISIZE is the size mod 2^32 and the cap is far below 4 GiB: output beyond ISIZE is an
        // error as soon as it appears, so a bomb lying about its size stops there. An ISIZE above
        // the cap may be true (a bomb: MESSAGE_TOO_LARGE once the cap is passed) or garbage (a
        // cut-off trailer: the stream does not end where it should), so it is not believed yet.
        var limit = Math.Min(declaredSize, (uint)decompressedBytesMax);
        var deflate = input[headerBytes..^TrailerBytes];
        var crc = new Crc32();
        long total = 0;
        fixed (byte* pointer = deflate)
        {
            var source = new ExactInputStream(pointer, deflate.Length);
            using (var inflater = new DeflateStream(source, CompressionMode.Decompress))
            {
                Span<byte> probe = stackalloc byte[1];
                while (true)
                {
                    if (total == limit)
                    {
                        if (inflater.Read(probe) == 0) break;
                        if (declaredSize > limit)
                            throw new RecordBatchFormatException($"Decompressed records exceed the limit of {decompressedBytesMax} bytes.", ErrorCodes.MessageTooLarge);
                        throw Corrupt($"the stream inflates to more than ISIZE ({declaredSize} bytes)");
                    }
                    var want = (int)Math.Min(ChunkBytes, limit - total);
                    var span = output.GetSpan(want)[..want];
                    var read = inflater.Read(span);
                    if (read == 0) break;
                    total += read;
                    crc.Append(span[..read]);
                    output.Advance(read);
                }
            }
            if (source.AskedPastEnd) throw Corrupt("the deflate stream is cut off before its last block ends");
            if (!source.Consumed) throw Corrupt("bytes follow the end of the deflate stream before the trailer");
        }
        if ((uint)total != declaredSize) throw Corrupt($"ISIZE says {declaredSize} bytes, the stream inflates to {total}");
        var actualCrc = crc.GetCurrentHashAsUInt32();
        if (actualCrc != declaredCrc) throw Corrupt($"trailer CRC32 {declaredCrc:x8} does not match the data's {actualCrc:x8}");
        return (int)total;
    }

    /// <summary>Length of a well-formed member header at the start of <paramref name="input"/>.</summary>
    private static int ReadHeader(ReadOnlySpan<byte> input)
    {
        if (input.Length < FixedHeaderBytes) throw Corrupt($"{input.Length} bytes are too few for a header");
        if (input[0] != Id1 || input[1] != Id2) throw Corrupt("no gzip magic");
        if (input[2] != MethodDeflate) throw Corrupt($"compression method {input[2]} is not deflate");
        var flags = input[3];
        if ((flags & FlagsReserved) != 0) throw Corrupt($"reserved header flags set ({flags:x2})");
        var position = FixedHeaderBytes;
        if ((flags & FlagExtra) != 0)
        {
            if (input.Length - position < 2) throw Corrupt("header extra field cut off");
            var extraBytes = BinaryPrimitives.ReadUInt16LittleEndian(input[position..]);
            position += 2;
            if (input.Length - position < extraBytes) throw Corrupt("header extra field cut off");
            position += extraBytes;
        }
        if ((flags & FlagName) != 0) position = SkipZeroTerminated(input, position, "file name");
        if ((flags & FlagComment) != 0) position = SkipZeroTerminated(input, position, "comment");
        if ((flags & FlagHeaderCrc) != 0)
        {
            if (input.Length - position < 2) throw Corrupt("header CRC cut off");
            var expected = (ushort)Crc32.HashToUInt32(input[..position]);
            if (BinaryPrimitives.ReadUInt16LittleEndian(input[position..]) != expected) throw Corrupt("header CRC mismatch");
            position += 2;
        }
        return position;
    }

    private static int SkipZeroTerminated(ReadOnlySpan<byte> input, int position, string what)
    {
        var end = input[position..].IndexOf((byte)0);
        if (end < 0) throw Corrupt($"header {what} not terminated");
        return position + end + 1;
    }

    private static RecordBatchFormatException Corrupt(string why) => new($"Corrupt gzip data: {why}.", ErrorCodes.CorruptMessage);

    /// <summary>
    /// The deflate bytes, handed to the inflater so that where the stream ends can be told
    /// exactly: everything but the last byte in large reads, then the last byte on its own. The
    /// inflater asks for more only while its stream is unfinished, so: it never asked for the
    /// last byte = the stream ended earlier (bytes follow it); it asked again after the last one =
    /// the stream is cut off. Only valid inside the caller's <c>fixed</c> block.
    /// </summary>
    private sealed unsafe class ExactInputStream(byte* bytes, int length) : Stream
    {
        private int _position;

        public bool AskedPastEnd { get; private set; }
        public bool Consumed => _position == length;

        public override int Read(Span<byte> buffer)
        {
            var left = length - _position;
            if (left == 0)
            {
                AskedPastEnd = true;
                return 0;
            }
            if (buffer.IsEmpty) return 0;
            var count = left > 1 ? Math.Min(buffer.Length, left - 1) : 1;
            new ReadOnlySpan<byte>(bytes + _position, count).CopyTo(buffer);
            _position += count;
            return count;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
