using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using K4os.Compression.LZ4;
using K4os.Compression.LZ4.Streams;
using Snappier;
using ZstdSharp;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Protos.Records;

/// <summary>
/// The four Kafka record-batch codecs, compressing the records region of a batch.
/// <list type="bullet">
/// <item>gzip: RFC 1952, exactly one member, framing checked by <see cref="GzipDecoder"/> (inflated by DeflateStream).</item>
/// <item>snappy: decodes both raw snappy (librdkafka) and xerial snappy-java stream framing
/// (Java client); encodes raw snappy like librdkafka because it is smaller, needs no framing
/// state, and every client reads it (snappy-java's SnappyInputStream falls back to raw when the
/// xerial magic is absent; librdkafka, kafka-python and sarama detect the magic the same way).</item>
/// <item>lz4: standard LZ4 frame format (Kafka magic >= 1), one frame with independent blocks,
/// checked by <see cref="Lz4FrameDecoder"/>. Encoded with independent blocks because Kafka's Java
/// LZ4 reader decodes each block on its own.</item>
/// <item>zstd: standard zstd frames; decoded by streaming, so frames without a content size work
/// (the decoder refuses cut-off frames, bad checksums and trailing bytes that are not a frame).</item>
/// </list>
/// Decoding checks each codec's framing completely: data that one client's decoder accepts and
/// another's refuses must not be stored (consumers spin on it). Decompression is always bounded by
/// a caller-given byte maximum (decompression bombs), and any failure inside a codec surfaces as
/// <see cref="RecordBatchFormatException"/> (CORRUPT_MESSAGE; MESSAGE_TOO_LARGE above the maximum).
/// </summary>
public static class CompressionCodecs
{
    /// <summary>Default cap on the decompressed size of one batch's records.</summary>
    public const int DecompressedBytesMaxDefault = 64 * 1024 * 1024;
    public const int ZstdLevelDefault = 3;

    /// <summary>xerial snappy-java stream header: magic 0x82 "SNAPPY" 0x00, version int32, compatible int32.</summary>
    private static ReadOnlySpan<byte> XerialMagic => [0x82, (byte)'S', (byte)'N', (byte)'A', (byte)'P', (byte)'P', (byte)'Y', 0];
    private const int XerialHeaderBytes = 16;
    /// <summary>Uncompressed bytes per xerial block when we write that framing (snappy-java's default).</summary>
    private const int XerialBlockBytes = 32 * 1024;
    /// <summary>Read chunk for streaming decoders.</summary>
    private const int StreamChunkBytes = 16 * 1024;

    [ThreadStatic] private static Compressor? t_zstdCompressor;

    public static bool IsSupported(CompressionType type) => type <= CompressionType.Zstd;

    /// <summary>Appends the compressed form of <paramref name="input"/> to <paramref name="output"/>; returns bytes written.</summary>
    public static int Compress(CompressionType type, ReadOnlySpan<byte> input, IBufferWriter<byte> output)
    {
        switch (type)
        {
            case CompressionType.None:
                output.Write(input);
                return input.Length;
            case CompressionType.Gzip:
            {
                using var sink = new BufferWriterStream(output);
                // Optimal = zlib level 6, the level Kafka clients use by default.
                using (var gzip = new GZipStream(sink, CompressionLevel.Optimal, leaveOpen: true))
                    gzip.Write(input);
                return (int)sink.Length;
            }
            case CompressionType.Snappy:
            {
                var span = output.GetSpan(Snappy.GetMaxCompressedLength(input.Length));
                var written = Snappy.Compress(input, span);
                output.Advance(written);
                return written;
            }
            case CompressionType.Lz4:
            {
                var settings = new LZ4EncoderSettings { ChainBlocks = false, CompressionLevel = LZ4Level.L00_FAST };
                using var sink = new BufferWriterStream(output);
                using (var lz4 = LZ4Stream.Encode(sink, settings, leaveOpen: true))
                    lz4.Write(input);
                return (int)sink.Length;
            }
            case CompressionType.Zstd:
            {
                // A zstd context is ~1 MB of tables; one per thread, reused, instead of one per batch.
                var compressor = t_zstdCompressor ??= new Compressor(ZstdLevelDefault);
                var span = output.GetSpan(Compressor.GetCompressBound(input.Length));
                var written = compressor.Wrap(input, span);
                output.Advance(written);
                return written;
            }
            default:
                throw new RecordBatchFormatException($"Unsupported compression type {(int)type}.", ErrorCodes.UnsupportedCompressionType);
        }
    }

    /// <summary>Writes snappy in xerial snappy-java framing (what the Java client produces). For tests and interop.</summary>
    public static int CompressSnappyXerial(ReadOnlySpan<byte> input, IBufferWriter<byte> output)
    {
        var header = output.GetSpan(XerialHeaderBytes);
        XerialMagic.CopyTo(header);
        BinaryPrimitives.WriteInt32BigEndian(header[8..], 1);
        BinaryPrimitives.WriteInt32BigEndian(header[12..], 1);
        output.Advance(XerialHeaderBytes);
        var total = XerialHeaderBytes;
        while (!input.IsEmpty)
        {
            var chunk = input[..Math.Min(XerialBlockBytes, input.Length)];
            input = input[chunk.Length..];
            var span = output.GetSpan(4 + Snappy.GetMaxCompressedLength(chunk.Length));
            var written = Snappy.Compress(chunk, span[4..]);
            BinaryPrimitives.WriteInt32BigEndian(span, written);
            output.Advance(4 + written);
            total += 4 + written;
        }
        return total;
    }

    /// <summary>
    /// Appends the decompressed form of <paramref name="input"/> to <paramref name="output"/>,
    /// at most <paramref name="decompressedBytesMax"/> bytes; returns bytes written.
    /// Throws <see cref="RecordBatchFormatException"/> for corrupt input (CORRUPT_MESSAGE),
    /// output above the cap (MESSAGE_TOO_LARGE) or an unknown codec (UNSUPPORTED_COMPRESSION_TYPE).
    /// </summary>
    public static int Decompress(CompressionType type, ReadOnlySpan<byte> input, IBufferWriter<byte> output, int decompressedBytesMax = DecompressedBytesMaxDefault)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(decompressedBytesMax);
        try
        {
            switch (type)
            {
                case CompressionType.None:
                    CheckLimit(input.Length, decompressedBytesMax);
                    output.Write(input);
                    return input.Length;
                case CompressionType.Gzip:
                    return GzipDecoder.Decompress(input, output, decompressedBytesMax);
                case CompressionType.Snappy:
                    return IsXerial(input)
                        ? DecompressSnappyXerial(input, output, decompressedBytesMax)
                        : DecompressSnappyBlock(input, output, decompressedBytesMax);
                case CompressionType.Lz4:
                    return Lz4FrameDecoder.Decompress(input, output, decompressedBytesMax);
                case CompressionType.Zstd:
                    return DecompressStream(input, output, decompressedBytesMax, static s => new DecompressionStream(s, leaveOpen: true));
                default:
                    throw new RecordBatchFormatException($"Unsupported compression type {(int)type}.", ErrorCodes.UnsupportedCompressionType);
            }
        }
        catch (RecordBatchFormatException)
        {
            throw;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Codec libraries throw a zoo of types for corrupt input (InvalidDataException,
            // ArgumentException, even IndexOutOfRange); all mean the same thing to us.
            throw new RecordBatchFormatException($"Corrupt {type} data: {ex.Message}", ErrorCodes.CorruptMessage, ex);
        }
    }

    /// <summary>
    /// Decompresses into a buffer from <paramref name="pool"/> (default <see cref="ArrayPool{T}.Shared"/>;
    /// the produce validator passes its <see cref="DecompressionMemory"/>) the caller disposes. Sized once from the size the data declares (gzip ISIZE, snappy length,
    /// lz4 content size) when it has one within the cap, so the buffer is not regrown by doubling.
    /// </summary>
    public static PooledBufferWriter DecompressPooled(CompressionType type, ReadOnlySpan<byte> input, int decompressedBytesMax = DecompressedBytesMaxDefault,
        ArrayPool<byte>? pool = null)
    {
        var declared = DeclaredSize(type, input);
        // Compressed records usually expand 2-5x; without a declared size start there.
        var initial = declared >= 0 && declared <= decompressedBytesMax
            ? (int)declared
            : (int)Math.Min((long)input.Length * 4, Math.Min(decompressedBytesMax, 1 << 20));
        var writer = new PooledBufferWriter(initial, pool);
        try
        {
            Decompress(type, input, writer, decompressedBytesMax);
            return writer;
        }
        catch
        {
            writer.Dispose();
            throw;
        }
    }

    /// <summary>The decompressed size the data declares up front, or -1 when it declares none (or not readably).</summary>
    private static long DeclaredSize(CompressionType type, ReadOnlySpan<byte> input)
    {
        switch (type)
        {
            case CompressionType.Gzip:
                return GzipDecoder.DeclaredSize(input);
            case CompressionType.Lz4:
                return Lz4FrameDecoder.DeclaredSize(input);
            case CompressionType.Snappy when !IsXerial(input):
                try
                {
                    return Snappy.GetUncompressedLength(input);
                }
                catch (Exception ex) when (ex is InvalidDataException or ArgumentException)
                {
                    return -1;
                }
            default:
                return -1;
        }
    }

    private static bool IsXerial(ReadOnlySpan<byte> input) => input.Length >= XerialHeaderBytes && input[..XerialMagic.Length].SequenceEqual(XerialMagic);

    private static void CheckLimit(long bytes, int decompressedBytesMax)
    {
        if (bytes > decompressedBytesMax)
            throw new RecordBatchFormatException($"Decompressed records exceed the limit of {decompressedBytesMax} bytes.", ErrorCodes.MessageTooLarge);
    }

    private static int DecompressSnappyBlock(ReadOnlySpan<byte> input, IBufferWriter<byte> output, int decompressedBytesMax)
    {
        // The raw format starts with the uncompressed length: check it before allocating.
        var length = Snappy.GetUncompressedLength(input);
        CheckLimit(length, decompressedBytesMax);
        // Snappier stops once it has produced the declared length and ignores what follows;
        // the C++ decoder (librdkafka, snappy-java) refuses such input. Walk the elements first.
        CheckSnappyElements(input, length);
        var span = output.GetSpan(Math.Max(length, 1));
        var written = Snappy.Decompress(input, span[..length]);
        if (written != length) throw new RecordBatchFormatException($"Snappy block declared {length} bytes, produced {written}.");
        output.Advance(written);
        return written;
    }

    /// <summary>
    /// Walks the elements of a raw snappy block (literals and copies) without decoding: they must
    /// produce exactly <paramref name="length"/> bytes and end exactly at the end of the input.
    /// </summary>
    private static void CheckSnappyElements(ReadOnlySpan<byte> input, int length)
    {
        var position = 0;
        while (position < input.Length && (input[position] & 0x80) != 0) position++;
        position++; // the length varint's last byte
        long produced = 0;
        while (position < input.Length)
        {
            var tag = input[position++];
            long elementBytes;
            switch (tag & 3)
            {
                case 0: // literal: length-1 in the tag, or in 1-4 following bytes
                    var small = tag >> 2;
                    if (small < 60)
                    {
                        elementBytes = small + 1;
                    }
                    else
                    {
                        var extra = small - 59;
                        if (input.Length - position < extra) throw new RecordBatchFormatException("Snappy literal length cut off.");
                        long value = 0;
                        for (var i = 0; i < extra; i++) value |= (long)input[position + i] << (8 * i);
                        position += extra;
                        elementBytes = value + 1;
                    }
                    if (input.Length - position < elementBytes) throw new RecordBatchFormatException("Snappy literal cut off.");
                    position += (int)elementBytes;
                    break;
                case 1: // copy, 1-byte offset
                    elementBytes = 4 + ((tag >> 2) & 7);
                    position += 1;
                    break;
                case 2: // copy, 2-byte offset
                    elementBytes = (tag >> 2) + 1;
                    position += 2;
                    break;
                default: // copy, 4-byte offset
                    elementBytes = (tag >> 2) + 1;
                    position += 4;
                    break;
            }
            if (position > input.Length) throw new RecordBatchFormatException("Snappy copy element cut off.");
            produced += elementBytes;
            if (produced > length) throw new RecordBatchFormatException($"Snappy elements produce more than the declared {length} bytes.");
        }
        if (produced != length) throw new RecordBatchFormatException($"Snappy elements produce {produced} bytes, {length} declared.");
    }

    private static int DecompressSnappyXerial(ReadOnlySpan<byte> input, IBufferWriter<byte> output, int decompressedBytesMax)
    {
        // Header: magic(8), version(4), compatible version(4). snappy-java checks only the magic
        // and that compatible >= 1; the version fields carry no information we need.
        var rest = input[XerialHeaderBytes..];
        var total = 0;
        while (!rest.IsEmpty)
        {
            if (rest.Length < 4) throw new RecordBatchFormatException("Truncated xerial snappy block length.");
            var blockLength = BinaryPrimitives.ReadInt32BigEndian(rest);
            if (blockLength < 0 || blockLength > rest.Length - 4)
                throw new RecordBatchFormatException($"Invalid xerial snappy block length {blockLength} ({rest.Length - 4} bytes left).");
            total += DecompressSnappyBlock(rest.Slice(4, blockLength), output, decompressedBytesMax - total);
            rest = rest[(4 + blockLength)..];
        }
        return total;
    }

    private static unsafe int DecompressStream(ReadOnlySpan<byte> input, IBufferWriter<byte> output, int decompressedBytesMax, Func<Stream, Stream> open)
    {
        // The input stays pinned for the whole (synchronous) decode; the stream never outlives it.
        fixed (byte* pointer = input)
        {
            using var source = new UnmanagedMemoryStream(pointer, input.Length);
            using var decoder = open(source);
            long total = 0;
            // At the cap, one more byte (into this probe, not the writer, which would grow past
            // the cap for it) tells a bomb from data that ends exactly there.
            Span<byte> probe = stackalloc byte[1];
            while (true)
            {
                if (total == decompressedBytesMax)
                {
                    if (decoder.Read(probe) == 0) return (int)total;
                    CheckLimit(total + 1, decompressedBytesMax);
                }
                var want = (int)Math.Min(StreamChunkBytes, (long)decompressedBytesMax - total);
                var span = output.GetSpan(want)[..want];
                var read = decoder.Read(span);
                if (read == 0) return (int)total;
                total += read;
                output.Advance(read);
            }
        }
    }

    /// <summary>Write-only stream appending to an <see cref="IBufferWriter{T}"/> (for encoder streams).</summary>
    private sealed class BufferWriterStream(IBufferWriter<byte> output) : Stream
    {
        private long _length;
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _length;
        public override long Position { get => _length; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            output.Write(buffer);
            _length += buffer.Length;
        }
        public override void WriteByte(byte value) => Write([value]);
    }
}
