using System.Buffers.Binary;
using System.Diagnostics;
using StreamPlatform.Protos.Records;
using Xunit.Abstractions;
using static StreamPlatform.UnitTests.Records.RecordTestData;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Records;

/// <summary>
/// Fuzzes the produce validator (not only the frame decoders): valid batches of every codec are
/// mutated (bit flips, truncations, inserted and removed bytes, length and count fields, records
/// changed before compression) and the batch CRC-32C recomputed, so the mutation reaches the
/// decoder and the record walk. Each case must end in the validator's own result, within a
/// time bound, without holding decompression memory afterwards or allocating beyond a bound; an
/// accepted batch must still be accepted after its header was rewritten and decode with the
/// reader to its declared count.
/// <para>
/// CI runs <see cref="CasesDefault"/> cases with seed <see cref="SeedDefault"/> (a few seconds).
/// Longer runs: <c>STREAMPLATFORM_FUZZ_CASES=1000000 STREAMPLATFORM_FUZZ_SEED=42 dotnet test
/// tests/StreamPlatform.UnitTests --filter RecordBatchValidatorFuzzTests</c>. A failure names the
/// seed and the case to replay.
/// </para>
/// </summary>
public class RecordBatchValidatorFuzzTests(ITestOutputHelper output)
{
    public const int CasesDefault = 20000;
    public const int SeedDefault = 20261204;
    private const int DecompressedBytesMax = 256 * 1024;
    private const long HeldBytesMax = 4 * 1024 * 1024;
    /// <summary>Allocation allowed per case: the input copies, a decoded batch, codec state; far below what a bomb would take.</summary>
    private const long AllocatedBytesPerCaseMax = 3 * 1024 * 1024;
    private static readonly TimeSpan CaseTimeMax = TimeSpan.FromSeconds(5);

    private static readonly short[] ValidatorCodes =
    [
        ErrorCodes.None, ErrorCodes.UnknownServerError, ErrorCodes.CorruptMessage, ErrorCodes.MessageTooLarge, ErrorCodes.InvalidTimestamp,
        ErrorCodes.UnsupportedCompressionType, ErrorCodes.InvalidRecord,
    ];

    private static int Setting(string name, int fallback)
        => int.TryParse(Environment.GetEnvironmentVariable(name), out var value) ? value : fallback;

    [Fact]
    public async Task Mutated_batches_of_every_codec_only_get_the_validators_verdict()
    {
        var cases = Setting("STREAMPLATFORM_FUZZ_CASES", CasesDefault);
        var seed = Setting("STREAMPLATFORM_FUZZ_SEED", SeedDefault);
        output.WriteLine($"validator fuzz: {cases} cases, seed {seed}");
        var run = Task.Run(() => Run(cases, seed));
        // A decoder that loops forever must fail the test, not hang the run.
        var budget = CaseTimeMax + TimeSpan.FromMilliseconds(cases * 20.0);
        if (await Task.WhenAny(run, Task.Delay(budget)) != run)
            Assert.Fail($"validator fuzz (seed {seed}) did not finish in {budget}: a case hangs. Replay with STREAMPLATFORM_FUZZ_SEED={seed}.");
        var (accepted, refused) = await run;
        output.WriteLine($"accepted {accepted}, refused {refused}");
        // The mutations really do break things, and some survive (e.g. flips inside values).
        Assert.InRange(refused, cases / 3, cases);
        Assert.InRange(accepted, 1, cases);
    }

    private static (int Accepted, int Refused) Run(int cases, int seed)
    {
        var random = new Random(seed);
        var seeds = Seeds();
        var memory = new DecompressionMemory(HeldBytesMax, waitMsMax: 0);
        var options = new RecordBatchValidationOptions { DecompressedBytesMax = DecompressedBytesMax, DecompressionPool = memory, RequireKeys = false };
        int accepted = 0, refused = 0;
        for (var i = 0; i < cases; i++)
        {
            var (codec, records, batch) = seeds[random.Next(seeds.Count)];
            byte[] input = [];
            try
            {
                input = Mutate(random, codec, records, batch);
                var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
                var clock = Stopwatch.StartNew();
                var copy = (byte[])input.Clone();
                var result = RecordBatchValidator.ValidateAndRewrite(copy, options);
                Assert.True(clock.Elapsed < CaseTimeMax, $"took {clock.Elapsed}");
                Assert.Contains(result.ErrorCode, ValidatorCodes);
                Assert.Equal(0, memory.BytesHeld);
                Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - allocatedBefore, 0, AllocatedBytesPerCaseMax);
                if (result.IsValid)
                {
                    accepted++;
                    // The rewritten bytes are a valid batch the reader decodes to the declared count.
                    Assert.True(RecordBatchValidator.Validate(copy, options).IsValid);
                    Assert.Equal(RecordBatchHeader.ComputeCrc(copy), new RecordBatchHeader(copy).Crc);
                    using var decoded = RecordBatchReader.Read(copy, new() { DecompressedBytesMax = DecompressedBytesMax });
                    Assert.Equal(new RecordBatchHeader(copy).RecordsCount, decoded.Records.Count);
                    Assert.Equal(result.MaxTimestamp, new RecordBatchHeader(copy).MaxTimestamp);
                }
                else
                {
                    refused++;
                    Assert.False(string.IsNullOrEmpty(result.Message));
                }
            }
            catch (Exception ex)
            {
                throw new InvalidOperationException(
                    $"validator fuzz case {i} (seed {seed}, replay with STREAMPLATFORM_FUZZ_SEED={seed}), {codec}: {ex.GetType().Name}: {ex.Message}\n"
                    + $"input {Convert.ToHexString(input.AsSpan(0, Math.Min(input.Length, 512)))}", ex);
            }
        }
        Assert.InRange(memory.BytesHeldPeak, 0, HeldBytesMax);
        return (accepted, refused);
    }

    private static List<(CompressionType Codec, byte[] Records, byte[] Batch)> Seeds()
    {
        var seeds = new List<(CompressionType, byte[], byte[])>();
        foreach (var codec in new[] { CompressionType.None, CompressionType.Gzip, CompressionType.Snappy, CompressionType.Lz4, CompressionType.Zstd })
        {
            using var builder = new RecordBatchBuilder { Compression = codec, ProducerId = 3, ProducerEpoch = 0, BaseSequence = 0 };
            builder.Append(T, Utf8("key"), Utf8(string.Concat(Enumerable.Repeat("value ", 30))), [new("h", Utf8("hv")), new("n", null)])
                .Append(T + 3, null, Utf8("x"))
                .Append(T + 1, Utf8("tomb"), null);
            var batch = builder.ToArray();
            using var plain = new RecordBatchBuilder();
            plain.Append(T, Utf8("key"), Utf8(string.Concat(Enumerable.Repeat("value ", 30))), [new("h", Utf8("hv")), new("n", null)])
                .Append(T + 3, null, Utf8("x"))
                .Append(T + 1, Utf8("tomb"), null);
            seeds.Add((codec, plain.ToArray()[RecordBatchHeader.Size..], batch));
        }
        // Java's snappy framing and lz4 with every checksum on.
        var records = seeds[0].Item2;
        using (var xerial = new PooledBufferWriter())
        {
            CompressionCodecs.CompressSnappyXerial(records, xerial);
            seeds.Add((CompressionType.Snappy, records, Wrap(xerial.ToArray(), CompressionType.Snappy, 3, 2, T, T + 3)));
        }
        var lz4 = new MemoryStream();
        using (var encoder = K4os.Compression.LZ4.Streams.LZ4Stream.Encode(lz4, new K4os.Compression.LZ4.Streams.LZ4EncoderSettings { BlockChecksum = true, ContentChecksum = true }, leaveOpen: true))
            encoder.Write(records);
        seeds.Add((CompressionType.Lz4, records, Wrap(lz4.ToArray(), CompressionType.Lz4, 3, 2, T, T + 3)));
        return seeds;
    }

    private static byte[] Compress(CompressionType codec, byte[] records)
    {
        using var writer = new PooledBufferWriter();
        CompressionCodecs.Compress(codec, records, writer);
        return writer.ToArray();
    }

    /// <summary>A new batch with <paramref name="region"/> as its records region, lengths and CRC fixed up.</summary>
    private static byte[] Rewrap(byte[] batch, ReadOnlySpan<byte> region)
    {
        var bytes = new byte[RecordBatchHeader.Size + region.Length];
        batch.AsSpan(0, RecordBatchHeader.Size).CopyTo(bytes);
        region.CopyTo(bytes.AsSpan(RecordBatchHeader.Size));
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(RecordBatchHeader.BatchLengthOffset), bytes.Length - RecordBatchHeader.LogOverhead);
        FixCrc(bytes);
        return bytes;
    }

    private static byte[] Mutate(Random random, CompressionType codec, byte[] records, byte[] batch)
    {
        var region = batch.AsSpan(RecordBatchHeader.Size).ToArray();
        switch (random.Next(9))
        {
            case 0: // bit flips in the (compressed) records region
                for (var k = random.Next(1, 4); k > 0; k--) region[random.Next(region.Length)] ^= (byte)(1 << random.Next(8));
                return Rewrap(batch, region);
            case 1: // the region cut short
                return Rewrap(batch, region.AsSpan(0, random.Next(region.Length)));
            case 2: // bytes inserted
            {
                var at = random.Next(region.Length + 1);
                var extra = new byte[random.Next(1, 9)];
                random.NextBytes(extra);
                return Rewrap(batch, [.. region[..at], .. extra, .. region[at..]]);
            }
            case 3: // bytes removed from the middle
            {
                var at = random.Next(region.Length);
                var count = Math.Min(random.Next(1, 9), region.Length - at);
                return Rewrap(batch, [.. region[..at], .. region[(at + count)..]]);
            }
            case 4: // bytes appended (trailing garbage, zero padding)
            {
                var extra = new byte[random.Next(1, 17)];
                if (random.Next(2) == 0) random.NextBytes(extra);
                return Rewrap(batch, [.. region, .. extra]);
            }
            case 5: // records changed before compression: the record parser behind the codec
            {
                var plain = (byte[])records.Clone();
                for (var k = random.Next(1, 3); k > 0; k--)
                    plain[random.Next(plain.Length)] = random.Next(3) switch { 0 => 0xFF, 1 => 0x80, _ => (byte)random.Next(256) };
                if (random.Next(4) == 0) plain = plain[..random.Next(plain.Length)];
                return Rewrap(batch, codec == CompressionType.None ? plain : Compress(codec, plain));
            }
            case 6: // count and offset fields
            {
                var bytes = (byte[])batch.Clone();
                var field = random.Next(3) switch { 0 => RecordBatchHeader.RecordsCountOffset, 1 => RecordBatchHeader.LastOffsetDeltaOffset, _ => RecordBatchHeader.BaseSequenceOffset };
                BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(field), random.Next(3) == 0 ? random.Next() - int.MaxValue / 2 : random.Next(-2, 6));
                FixCrc(bytes);
                return bytes;
            }
            case 7: // attributes and timestamps
            {
                var bytes = (byte[])batch.Clone();
                if (random.Next(2) == 0)
                    BinaryPrimitives.WriteInt16BigEndian(bytes.AsSpan(RecordBatchHeader.AttributesOffset), (short)random.Next(short.MinValue, short.MaxValue));
                else
                    BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(random.Next(2) == 0 ? RecordBatchHeader.BaseTimestampOffset : RecordBatchHeader.MaxTimestampOffset),
                        random.Next(3) switch { 0 => -1, 1 => long.MaxValue, _ => random.NextInt64() });
                FixCrc(bytes);
                return bytes;
            }
            default: // the batch length itself (CRC left alone: framing must catch it)
            {
                var bytes = (byte[])batch.Clone();
                BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(RecordBatchHeader.BatchLengthOffset), random.Next(-100, bytes.Length * 2));
                return bytes;
            }
        }
    }
}
