using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using K4os.Compression.LZ4;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Protos.Records;

/// <summary>
/// Decodes the records region of an lz4 batch: one LZ4 frame (magic 0x184D2204), checked
/// completely. As Kafka's Lz4BlockInputStream: version 01, reserved and dictionary-id bits clear,
/// independent blocks only (Kafka refuses linked blocks; every client writes independent ones),
/// block size id 4-7, header checksum verified, blocks no larger than the frame's maximum, block
/// checksums verified when flagged. Stricter than Kafka, because consumers' decoders (lz4's
/// LZ4F_decompress in librdkafka, python-lz4) check them and would otherwise fail on stored data:
/// the content checksum is verified, the content size (when given) must match, and nothing may
/// follow the frame.
/// </summary>
internal static class Lz4FrameDecoder
{
    private const uint Magic = 0x184D2204;
    private const int VersionShift = 6;
    private const byte FlagBlockIndependence = 0x20;
    private const byte FlagBlockChecksum = 0x10;
    private const byte FlagContentSize = 0x08;
    private const byte FlagContentChecksum = 0x04;
    private const byte FlagsReservedOrDictionary = 0x03;
    private const byte DescriptorReservedBits = 0x8F;
    private const uint BlockUncompressedFlag = 0x80000000;

    /// <summary>The frame's content size field, or -1 when absent or unreadable.</summary>
    public static long DeclaredSize(ReadOnlySpan<byte> input)
    {
        if (input.Length < 14 || BinaryPrimitives.ReadUInt32LittleEndian(input) != Magic || (input[4] & FlagContentSize) == 0) return -1;
        var size = BinaryPrimitives.ReadUInt64LittleEndian(input[6..]);
        return size > int.MaxValue ? -1 : (long)size;
    }

    public static int Decompress(ReadOnlySpan<byte> input, IBufferWriter<byte> output, int decompressedBytesMax)
    {
        if (input.Length < 7) throw Corrupt($"{input.Length} bytes are too few for a frame header");
        if (BinaryPrimitives.ReadUInt32LittleEndian(input) != Magic) throw Corrupt("no LZ4 frame magic");
        var flags = input[4];
        var descriptor = input[5];
        if (flags >> VersionShift != 1) throw Corrupt($"frame version {flags >> VersionShift} is not 1");
        if ((flags & FlagsReservedOrDictionary) != 0) throw Corrupt("reserved or dictionary-id flag set");
        if ((flags & FlagBlockIndependence) == 0) throw Corrupt("linked blocks are not supported (Kafka needs independent blocks)");
        if ((descriptor & DescriptorReservedBits) != 0) throw Corrupt($"reserved block descriptor bits set ({descriptor:x2})");
        var blockSizeId = (descriptor >> 4) & 7;
        if (blockSizeId < 4) throw Corrupt($"block size id {blockSizeId} is not 4-7");
        var blockBytesMax = 1 << (8 + 2 * blockSizeId);
        var position = 6;
        long declaredSize = -1;
        if ((flags & FlagContentSize) != 0)
        {
            if (input.Length - position < 9) throw Corrupt("content size cut off");
            var size = BinaryPrimitives.ReadUInt64LittleEndian(input[position..]);
            declaredSize = size > long.MaxValue ? long.MaxValue : (long)size;
            if (declaredSize > decompressedBytesMax)
                throw new RecordBatchFormatException($"LZ4 frame declares {declaredSize} bytes, above the limit of {decompressedBytesMax}.", ErrorCodes.MessageTooLarge);
            position += 8;
        }
        var headerChecksum = (byte)(XxHash32.HashToUInt32(input[4..position]) >> 8);
        if (input[position] != headerChecksum) throw Corrupt("header checksum mismatch");
        position++;

        var blockChecksums = (flags & FlagBlockChecksum) != 0;
        var contentHash = (flags & FlagContentChecksum) != 0 ? new XxHash32() : null;
        long total = 0;
        // At the cap a block must decode to nothing; asking the writer for room would grow it past the cap.
        Span<byte> atCap = stackalloc byte[16];
        while (true)
        {
            if (input.Length - position < 4) throw Corrupt("block size cut off (no end mark)");
            var word = BinaryPrimitives.ReadUInt32LittleEndian(input[position..]);
            position += 4;
            if (word == 0) break;
            var stored = (word & BlockUncompressedFlag) != 0;
            var blockBytes = (int)(word & ~BlockUncompressedFlag);
            if (blockBytes > blockBytesMax) throw Corrupt($"block of {blockBytes} bytes above the frame's maximum of {blockBytesMax}");
            if (input.Length - position < blockBytes + (blockChecksums ? 4 : 0)) throw Corrupt("block cut off");
            var block = input.Slice(position, blockBytes);
            position += blockBytes;
            if (blockChecksums)
            {
                if (BinaryPrimitives.ReadUInt32LittleEndian(input[position..]) != XxHash32.HashToUInt32(block)) throw Corrupt("block checksum mismatch");
                position += 4;
            }
            var allowed = (int)Math.Min(blockBytesMax, decompressedBytesMax - total);
            scoped Span<byte> written;
            if (stored)
            {
                if (blockBytes > allowed) throw TooLarge(decompressedBytesMax);
                written = blockBytes == 0 ? atCap[..0] : output.GetSpan(blockBytes)[..blockBytes];
                block.CopyTo(written);
            }
            else
            {
                var target = allowed == 0 ? atCap : output.GetSpan(allowed)[..allowed];
                var length = LZ4Codec.Decode(block, target);
                // A valid block that decodes to more than is allowed also fails here; near
                // the cap either way the batch is refused.
                if (length < 0) throw allowed < blockBytesMax ? TooLarge(decompressedBytesMax) : Corrupt("block does not decode");
                if (length > allowed) throw TooLarge(decompressedBytesMax);
                written = target[..length];
            }
            contentHash?.Append(written);
            output.Advance(written.Length);
            total += written.Length;
        }
        if (contentHash is not null)
        {
            if (input.Length - position < 4) throw Corrupt("content checksum cut off");
            if (BinaryPrimitives.ReadUInt32LittleEndian(input[position..]) != contentHash.GetCurrentHashAsUInt32()) throw Corrupt("content checksum mismatch");
            position += 4;
        }
        if (declaredSize >= 0 && declaredSize != total) throw Corrupt($"content size says {declaredSize} bytes, the blocks hold {total}");
        if (position != input.Length) throw Corrupt($"{input.Length - position} bytes follow the frame");
        return (int)total;
    }

    private static RecordBatchFormatException TooLarge(int max) => new($"Decompressed records exceed the limit of {max} bytes.", ErrorCodes.MessageTooLarge);

    private static RecordBatchFormatException Corrupt(string why) => new($"Corrupt lz4 data: {why}.", ErrorCodes.CorruptMessage);
}
