using System.Buffers.Binary;
using StreamPlatform.Protos.Records;
using static StreamPlatform.UnitTests.Records.RecordTestData;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Records;

public class RecordBatchRobustnessTests
{
    private const int OneMiB = 1024 * 1024;

    public static TheoryData<CompressionType> CompressedCodecs => new()
    {
        CompressionType.Gzip, CompressionType.Snappy, CompressionType.Lz4, CompressionType.Zstd,
    };

    [Theory]
    [MemberData(nameof(CompressedCodecs))]
    public void Decompression_bomb_beyond_the_limit_is_rejected(CompressionType codec)
    {
        using var builder = new RecordBatchBuilder { Compression = codec };
        builder.Append(T, Utf8("bomb"), new byte[16 * OneMiB]);
        var bytes = builder.ToArray();
        Assert.True(bytes.Length < 2 * OneMiB);

        var ex = Assert.Throws<RecordBatchFormatException>(() => RecordBatchReader.Read(bytes, new() { DecompressedBytesMax = OneMiB }));
        Assert.Equal(ErrorCodes.MessageTooLarge, ex.ErrorCode);
        var result = RecordBatchValidator.Validate(bytes, new() { DecompressedBytesMax = OneMiB, MaxMessageBytes = 4 * OneMiB });
        Assert.Equal(ErrorCodes.MessageTooLarge, result.ErrorCode);

        // The same bytes are fine under a limit that fits them.
        using var decoded = RecordBatchReader.Read(bytes, new() { DecompressedBytesMax = 17 * OneMiB });
        Assert.Equal(16 * OneMiB, decoded.Records[0].Value!.Value.Length);
    }

    [Fact]
    public void Record_count_above_the_materialization_cap_is_message_too_large()
    {
        using var builder = new RecordBatchBuilder { Compression = CompressionType.Zstd };
        for (var i = 0; i < 10; i++) builder.Append(T, null, Array.Empty<byte>());
        var bytes = builder.ToArray();
        var ex = Assert.Throws<RecordBatchFormatException>(() => RecordBatchReader.Read(bytes, new() { RecordsCountMax = 9 }));
        Assert.Equal(ErrorCodes.MessageTooLarge, ex.ErrorCode);
        using var decoded = RecordBatchReader.Read(bytes, new() { RecordsCountMax = 10 });
        Assert.Equal(10, decoded.Records.Count);
    }

    [Fact]
    public void Raw_snappy_claiming_a_huge_length_is_rejected_before_allocating()
    {
        // Length varint 0xFFFFFFFF (4 GiB - 1) followed by nothing useful.
        byte[] snappy = [0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x00];
        using var output = new PooledBufferWriter();
        var ex = Assert.Throws<RecordBatchFormatException>(() => CompressionCodecs.Decompress(CompressionType.Snappy, snappy, output, OneMiB));
        Assert.Contains(ex.ErrorCode, new[] { ErrorCodes.MessageTooLarge, ErrorCodes.CorruptMessage });
        Assert.Equal(0, output.WrittenCount);
    }

    [Fact]
    public void Seeded_fuzz_never_throws_anything_but_format_errors()
    {
        var random = new Random(20261123);
        var seeds = new List<byte[]>();
        foreach (var codec in new[] { CompressionType.None, CompressionType.Gzip, CompressionType.Snappy, CompressionType.Lz4, CompressionType.Zstd })
        {
            using var builder = new RecordBatchBuilder { Compression = codec, ProducerId = 1, ProducerEpoch = 0, BaseSequence = 0 };
            builder.Append(T, Utf8("key"), Utf8("value value value"), [new("h", Utf8("hv")), new("n", null)])
                .Append(T + 1, null, Utf8("x"))
                .Append(T + 2, Utf8("tomb"), null);
            seeds.Add(builder.ToArray());
        }
        using (var control = new PooledBufferWriter())
        {
            RecordBatchBuilder.BuildControlBatch(control, ControlRecordType.Abort, 3, 1, 2, T);
            seeds.Add(control.ToArray());
        }

        var options = new RecordBatchValidationOptions { FromClient = false, SingleBatchRequired = false, DecompressedBytesMax = 64 * 1024 };
        var readerOptions = new RecordBatchReaderOptions { DecompressedBytesMax = 64 * 1024 };
        var rejected = 0;
        const int iterations = 4000;
        for (var i = 0; i < iterations; i++)
        {
            var input = Mutate(random, seeds[random.Next(seeds.Count)]);
            var validation = RecordBatchValidator.Validate(input, options);
            bool readerOk;
            try
            {
                var batches = RecordBatchReader.ReadAll(input, readerOptions);
                foreach (var b in batches)
                {
                    foreach (var r in b.Records) _ = r.Headers.Count;
                    if (b.IsControl) _ = b.ControlRecords();
                    b.Dispose();
                }
                readerOk = true;
            }
            catch (RecordBatchFormatException ex)
            {
                Assert.NotEqual(ErrorCodes.None, ex.ErrorCode);
                readerOk = false;
            }
            if (!validation.IsValid) rejected++;
            // The streaming views must reach the same verdict on the first batch as the reader does.
            if (input.Length >= RecordBatchHeader.Size && RecordBatchHeader.TryReadTotalSize(input, out var firstSize) && firstSize == input.Length)
            {
                bool viewsOk;
                try
                {
                    var views = RecordBatchReader.EnumerateRecords(input, out var owner, readerOptions);
                    try
                    {
                        foreach (var view in views)
                            foreach (var header in view.GetHeaders()) _ = header.Key.Length;
                    }
                    finally
                    {
                        owner?.Dispose();
                    }
                    viewsOk = true;
                }
                catch (RecordBatchFormatException)
                {
                    viewsOk = false;
                }
                if (!new RecordBatchHeader(input).IsControl) Assert.Equal(readerOk, viewsOk);
            }
            // The validator's verdict predicts whether the reader can decode it (control record
            // payloads aside, which only the reader parses).
            if (validation.IsValid && !readerOk)
            {
                // Only acceptable disagreement: a control batch whose marker bytes were garbled.
                Assert.True(new RecordBatchHeader(input).IsControl, $"iteration {i}: validator accepted what the reader rejected");
            }
            if (readerOk) Assert.True(validation.IsValid, $"iteration {i}: reader accepted what the validator rejected: {validation.Message}");
        }
        Assert.InRange(rejected, iterations / 4, iterations); // the mutations really do break things
    }

    private static byte[] Mutate(Random random, byte[] seed)
    {
        var bytes = (byte[])seed.Clone();
        switch (random.Next(6))
        {
            case 0: // torn tail
                return bytes[..random.Next(bytes.Length)];
            case 1: // bit rot, CRC left as is
                bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
                return bytes;
            case 2: // garbage in the records region with a valid CRC: the decoders see it
                for (var k = random.Next(1, 4); k > 0; k--)
                    bytes[RecordBatchHeader.Size + random.Next(bytes.Length - RecordBatchHeader.Size)] = (byte)random.Next(256);
                FixCrc(bytes);
                return bytes;
            case 3: // a random int over a length/count field anywhere after the CRC
                BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(RecordBatchHeader.AttributesOffset + random.Next(bytes.Length - 25)), random.Next(int.MinValue, int.MaxValue));
                FixCrc(bytes);
                return bytes;
            case 4: // header fields: batch length, magic
                BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(RecordBatchHeader.BatchLengthOffset), random.Next(-100, bytes.Length * 2));
                return bytes;
            default: // trailing junk after a valid batch
                var junk = new byte[random.Next(1, 80)];
                random.NextBytes(junk);
                return [.. bytes, .. junk];
        }
    }

    [Fact]
    public void Random_records_regions_with_valid_crc_only_raise_format_errors()
    {
        var random = new Random(7);
        for (var i = 0; i < 2000; i++)
        {
            var payload = new byte[random.Next(0, 120)];
            random.NextBytes(payload);
            var codec = (CompressionType)random.Next(0, 5);
            var bytes = Wrap(payload, codec, random.Next(0, 12), random.Next(0, 12), T, T);
            try
            {
                using var decoded = RecordBatchReader.Read(bytes, new() { DecompressedBytesMax = 64 * 1024 });
                Assert.Equal(new RecordBatchHeader(bytes).RecordsCount, decoded.Records.Count);
            }
            catch (RecordBatchFormatException)
            {
                // expected for nearly all of them
            }
            var result = RecordBatchValidator.Validate(bytes, new() { FromClient = false, DecompressedBytesMax = 64 * 1024 });
            Assert.True(result.IsValid || result.Message is not null);
        }
    }
}
