using System.Buffers.Binary;
using System.Globalization;
using StreamPlatform.Broker.Storage;

namespace StreamPlatform.UnitTests.Storage;

/// <summary>Damaged tails and interrupted writes: recovery keeps every whole, valid batch before the damage and nothing after it.</summary>
public sealed class CrashRecoveryTests : IDisposable
{
    private const long T0 = 1_700_000_000_000;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string FileOf(long baseOffset) => Path.Combine(_dir.PartitionDir(), LogSegment.FileStem(baseOffset) + ".log");

    /// <summary>Closes, then removes the clean marker and the recovery point: the next open must check every segment.</summary>
    private void CrashWithNothingFlushed(PartitionLog log)
    {
        log.Close();
        File.Delete(Path.Combine(_dir.PartitionDir(), PartitionLog.CleanShutdownFile));
        File.Delete(Path.Combine(_dir.PartitionDir(), PartitionLog.RecoveryPointFile));
    }

    /// <summary>Every batch readable from the log, checking each CRC: a read never returns a damaged batch.</summary>
    private static List<string> ReadAllValues(PartitionLog log)
    {
        var values = new List<string>();
        var offset = log.LogStartOffset;
        while (offset < log.HighWatermark)
        {
            var batches = TestBatches.Parse(log.Read(offset, 1 << 20).ToArray());
            Assert.NotEmpty(batches);
            Assert.All(batches, b => Assert.True(b.CrcValid));
            values.AddRange(batches.Select(b => b.FirstValue));
            offset = batches[^1].LastOffset + 1;
        }
        return values;
    }

    [Theory]
    [InlineData("record byte flipped", 2)]
    [InlineData("length field huge", 2)]
    [InlineData("length field too small", 2)]
    [InlineData("magic changed", 2)]
    [InlineData("cut inside a header", 2)]
    [InlineData("cut inside the records", 2)]
    [InlineData("base offset going backwards", 2)]
    [InlineData("zeros after the last batch", 5)]
    [InlineData("garbage after the last batch", 5)]
    public void A_damaged_tail_is_cut_at_the_last_good_batch(string damage, int batchesKept)
    {
        int batchSize;
        using (var log = _dir.Open())
        {
            for (var i = 0; i < 5; i++) log.Append(TestBatches.Build(T0 + i, $"v{i}"));
            batchSize = (int)(log.SizeBytes / 5);
            CrashWithNothingFlushed(log);
        }
        var file = FileOf(0);
        var bytes = File.ReadAllBytes(file);
        var third = 2 * batchSize;
        switch (damage)
        {
            case "record byte flipped": bytes[third + 64] ^= 0x40; break;
            case "length field huge": BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(third + 8), int.MaxValue); break;
            case "length field too small": BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(third + 8), 5); break;
            case "magic changed": bytes[third + 16] = 1; break;
            case "cut inside a header": bytes = bytes[..(third + 30)]; break;
            case "cut inside the records": bytes = bytes[..(third + batchSize - 3)]; break;
            case "base offset going backwards": BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(third), 1); break; // outside the CRC
            case "zeros after the last batch": bytes = [.. bytes, .. new byte[100]]; break;
            case "garbage after the last batch": bytes = [.. bytes, .. Enumerable.Range(0, 100).Select(i => (byte)(i * 37))]; break;
        }
        File.WriteAllBytes(file, bytes);

        using var reopened = _dir.Open();
        Assert.Equal(batchesKept, reopened.LogEndOffset);
        Assert.Equal((long)batchesKept * batchSize, new FileInfo(file).Length);
        Assert.Equal(Enumerable.Range(0, batchesKept).Select(i => $"v{i}"), ReadAllValues(reopened));
        Assert.Equal(1, reopened.Read(batchesKept + 1, 100).ErrorCode);
        // The log goes on from the cut.
        Assert.Equal(batchesKept, reopened.Append(TestBatches.Build(T0, "after")).FirstOffset);
        Assert.Equal([.. Enumerable.Range(0, batchesKept).Select(i => $"v{i}"), "after"], ReadAllValues(reopened));
    }

    [Fact]
    public void Damage_in_an_older_unflushed_segment_cuts_it_and_drops_every_later_segment()
    {
        var config = new LogConfig { SegmentBytes = 300 };
        List<long> bases;
        using (var log = _dir.Open(config))
        {
            for (var i = 0; i < 20; i++) log.Append(TestBatches.Build(T0 + i, $"v{i}"));
            bases = log.SegmentBaseOffsets.ToList();
            CrashWithNothingFlushed(log);
        }
        Assert.True(bases.Count >= 4);
        var damaged = FileOf(bases[1]);
        var bytes = File.ReadAllBytes(damaged);
        bytes[^5] ^= 0xFF; // last batch of the second segment
        File.WriteAllBytes(damaged, bytes);

        using var reopened = _dir.Open(config);
        Assert.Equal(2, reopened.SegmentCount);
        Assert.All(bases.Skip(2), b => Assert.False(File.Exists(FileOf(b))));
        var values = ReadAllValues(reopened);
        Assert.Equal(Enumerable.Range(0, values.Count).Select(i => $"v{i}"), values);
        Assert.Equal(values.Count, reopened.LogEndOffset);
        Assert.True(values.Count < bases[2]);
    }

    [Fact]
    public void A_roll_fsyncs_and_moves_the_recovery_point_to_the_new_segment()
    {
        using var log = _dir.Open(new LogConfig { SegmentBytes = 300 });
        for (var i = 0; i < 3; i++) log.Append(TestBatches.Build(T0, $"v{i}"));
        Assert.False(File.Exists(Path.Combine(_dir.PartitionDir(), PartitionLog.RecoveryPointFile)));
        while (log.SegmentCount == 1) log.Append(TestBatches.Build(T0, "more"));
        var recoveryPoint = long.Parse(File.ReadAllText(Path.Combine(_dir.PartitionDir(), PartitionLog.RecoveryPointFile)), CultureInfo.InvariantCulture);
        Assert.Equal(log.SegmentBaseOffsets[1], recoveryPoint);
        log.Close();
        Assert.True(File.Exists(Path.Combine(_dir.PartitionDir(), PartitionLog.CleanShutdownFile)));
        Assert.Equal(log.LogEndOffset, long.Parse(File.ReadAllText(Path.Combine(_dir.PartitionDir(), PartitionLog.RecoveryPointFile)), CultureInfo.InvariantCulture));
    }

    [Fact]
    public void Every_cut_position_and_seeded_byte_flips_recover_to_a_valid_prefix()
    {
        byte[] pristine;
        int batchSize;
        using (var log = _dir.Open())
        {
            for (var i = 0; i < 4; i++) log.Append(TestBatches.Build(T0 + i, $"v{i}", $"w{i}"));
            batchSize = (int)(log.SizeBytes / 4);
            CrashWithNothingFlushed(log);
        }
        var file = FileOf(0);
        pristine = File.ReadAllBytes(file);
        var expected = Enumerable.Range(0, 4).Select(i => $"v{i}").ToList();
        void Check(byte[] damaged, string what)
        {
            File.WriteAllBytes(file, damaged);
            File.Delete(Path.Combine(_dir.PartitionDir(), PartitionLog.CleanShutdownFile));
            File.Delete(Path.Combine(_dir.PartitionDir(), PartitionLog.RecoveryPointFile));
            using var reopened = _dir.Open();
            var values = ReadAllValues(reopened);
            // Always a prefix of what was written, in whole batches, two offsets per batch.
            Assert.True(values.SequenceEqual(expected.Take(values.Count)), what);
            Assert.Equal(values.Count * 2, reopened.LogEndOffset);
            Assert.Equal((long)values.Count * batchSize, new FileInfo(file).Length);
        }
        // Cut at every byte of the last two batches.
        for (var cut = 2 * batchSize; cut < pristine.Length; cut++) Check(pristine[..cut], $"cut at {cut}");
        // 200 seeded single-byte flips anywhere (a flip in the first batch keeps nothing).
        var random = new Random(1234);
        for (var n = 0; n < 200; n++)
        {
            var damaged = pristine.ToArray();
            var at = random.Next(damaged.Length);
            damaged[at] ^= (byte)(1 << random.Next(8));
            Check(damaged, $"flip at {at}");
        }
    }
}

