using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Records;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Storage;

/// <summary>The log primitives replication uses: leader epochs, follower appends, truncation and the replicated high watermark.</summary>
public sealed class ReplicationLogTests : IDisposable
{
    private const long T0 = 1_700_000_000_000;
    private readonly TempDir _dir = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(T0));

    public void Dispose() => _dir.Dispose();

    private PartitionLog Open(string topic = "t", LogConfig? config = null) => _dir.Open(config, _time, topic);

    private static void AppendAt(PartitionLog log, int epoch, params string[] values)
    {
        log.LeaderEpoch = epoch;
        Assert.Equal(0, log.Append(TestBatches.Build(T0, values)).ErrorCode);
    }

    /// <summary>A batch as a leader would have stored it: base offset and leader epoch set (both outside the CRC).</summary>
    private static byte[] Stored(long baseOffset, int epoch, params string[] values)
    {
        var batch = TestBatches.Build(T0, values);
        RecordBatchHeader.SetBaseOffset(batch, baseOffset);
        RecordBatchHeader.SetPartitionLeaderEpoch(batch, epoch);
        return batch;
    }

    /// <summary>Every byte from the log start to the log end, as a follower would fetch it.</summary>
    private static byte[] AllBytes(PartitionLog log)
    {
        var bytes = new List<byte>();
        var offset = log.LogStartOffset;
        while (offset < log.LogEndOffset)
        {
            var read = log.Read(offset, 1 << 20, minOneBatch: true, maxOffsetExclusive: long.MaxValue);
            Assert.Equal(0, read.ErrorCode);
            var chunk = read.ToArray();
            Assert.NotEmpty(chunk);
            bytes.AddRange(chunk);
            offset = TestBatches.Parse(chunk)[^1].LastOffset + 1;
        }
        return [.. bytes];
    }

    private static List<string> Values(PartitionLog log) => TestBatches.Parse(AllBytes(log)).Select(b => b.FirstValue).ToList();

    [Fact]
    public void Leader_appends_record_each_new_epoch_in_the_checkpoint_and_a_missing_or_damaged_one_is_rebuilt()
    {
        using (var log = Open())
        {
            AppendAt(log, 0, "a", "b");
            AppendAt(log, 0, "c");
            AppendAt(log, 2, "d", "e");
            AppendAt(log, 5, "f");
            Assert.Equal([new EpochEntry(0, 0), new EpochEntry(2, 3), new EpochEntry(5, 5)], log.EpochEntries);
            Assert.Equal(5, log.LatestEpoch);
            Assert.Equal(2, new RecordBatchHeader(log.Read(3, 1).ToArray()).PartitionLeaderEpoch); // stamped in the batch too
        }
        var file = Path.Combine(_dir.PartitionDir(), LeaderEpochCache.FileName);
        Assert.Equal("0\n3\n0 0\n2 3\n5 5\n", File.ReadAllText(file));
        EpochEntry[] expected = [new(0, 0), new(2, 3), new(5, 5)];
        using (var log = Open()) Assert.Equal(expected, log.EpochEntries);

        File.Delete(file); // a log from before the checkpoint existed
        using (var log = Open()) Assert.Equal(expected, log.EpochEntries);
        Assert.Equal("0\n3\n0 0\n2 3\n5 5\n", File.ReadAllText(file));

        File.WriteAllText(file, "0\n3\n0 0\ngarbage\n");
        using (var log = Open()) Assert.Equal(expected, log.EpochEntries);
        Assert.Equal("0\n3\n0 0\n2 3\n5 5\n", File.ReadAllText(file));
    }

    [Fact]
    public void EndOffsetForEpoch_on_a_log_with_epochs_0_0_2_5()
    {
        using var log = Open();
        AppendAt(log, 0, "a", "b");
        AppendAt(log, 0, "c");
        AppendAt(log, 2, "d", "e");
        AppendAt(log, 5, "f");
        Assert.Equal((0, 3L), log.EndOffsetForEpoch(0));
        Assert.Equal((0, 3L), log.EndOffsetForEpoch(1));
        Assert.Equal((2, 5L), log.EndOffsetForEpoch(2));
        Assert.Equal((2, 5L), log.EndOffsetForEpoch(4));
        Assert.Equal((5, 6L), log.EndOffsetForEpoch(5));
        Assert.Equal((-1, -1L), log.EndOffsetForEpoch(6));
        Assert.Equal((-1, -1L), log.EndOffsetForEpoch(-1));

        // Becoming leader of epoch 7 starts it at the log end at once, before any append.
        log.AssignLeaderEpoch(7);
        Assert.Equal((5, 6L), log.EndOffsetForEpoch(5));
        Assert.Equal((5, 6L), log.EndOffsetForEpoch(6));
        Assert.Equal((7, 6L), log.EndOffsetForEpoch(7));
        log.AssignLeaderEpoch(3); // stale: stamps, changes no entry
        Assert.Equal([new EpochEntry(0, 0), new EpochEntry(2, 3), new EpochEntry(5, 5), new EpochEntry(7, 6)], log.EpochEntries);
        Assert.Equal(3, log.LeaderEpoch);
    }

    [Fact]
    public void Epochs_follow_the_log_start_and_a_cut_made_by_recovery()
    {
        var config = new LogConfig { SegmentBytes = 200, FileDeleteDelayMs = 0 };
        using (var log = Open(config: config))
        {
            AppendAt(log, 0, "a");
            AppendAt(log, 0, "b");
            AppendAt(log, 2, "c");
            AppendAt(log, 2, "d");
            AppendAt(log, 4, "e");
            Assert.Equal([new EpochEntry(0, 0), new EpochEntry(2, 2), new EpochEntry(4, 4)], log.EpochEntries);
            Assert.Equal(0, log.DeleteRecordsBefore(3).ErrorCode);
            Assert.Equal([new EpochEntry(2, 3), new EpochEntry(4, 4)], log.EpochEntries);
        }
        // A crash tore the last batch (epoch 4's): recovery cuts it, and its epoch must go too.
        var dir = _dir.PartitionDir();
        File.Delete(Path.Combine(dir, PartitionLog.CleanShutdownFile));
        File.Delete(Path.Combine(dir, PartitionLog.RecoveryPointFile));
        var last = Directory.GetFiles(dir, "*.log").Order().Last();
        using (var f = new FileStream(last, FileMode.Open)) f.SetLength(f.Length - 5);
        using var reopened = Open(config: config);
        Assert.Equal((3L, 4L), (reopened.LogStartOffset, reopened.LogEndOffset));
        Assert.Equal([new EpochEntry(2, 3)], reopened.EpochEntries);
        Assert.Equal("0\n1\n2 3\n", File.ReadAllText(Path.Combine(dir, LeaderEpochCache.FileName)));
    }

    [Fact]
    public void Follower_append_stores_the_leaders_bytes_and_rejects_what_does_not_follow_on()
    {
        using var leader = Open("leader");
        AppendAt(leader, 0, "a", "b");
        AppendAt(leader, 3, "c");
        using var follower = Open("follower");
        var fetched = AllBytes(leader);
        var appended = follower.AppendAsFollower(fetched);
        Assert.Equal((0, 0L, 2L, 2), (appended.ErrorCode, appended.FirstOffset, appended.LastOffset, appended.BatchCount));
        Assert.Equal(fetched, AllBytes(follower));
        Assert.Equal(3, follower.LogEndOffset);
        Assert.Equal([new EpochEntry(0, 0), new EpochEntry(3, 2)], follower.EpochEntries);

        var size = follower.SizeBytes;
        // Below the log end: the follower must truncate first.
        Assert.Equal(ErrorCodes.OffsetOutOfRange, follower.AppendAsFollower(Stored(2, 3, "x")).ErrorCode);
        // Offsets not increasing inside the fetched data: nothing of it is written.
        Assert.Equal(ErrorCodes.CorruptMessage, follower.AppendAsFollower(TestBatches.Concat(Stored(3, 3, "x"), Stored(3, 3, "y"))).ErrorCode);
        var damaged = Stored(3, 3, "x");
        damaged[^1] ^= 0xFF;
        Assert.Equal(ErrorCodes.CorruptMessage, follower.AppendAsFollower(damaged).ErrorCode);
        Assert.Equal(ErrorCodes.CorruptMessage, follower.AppendAsFollower(Stored(3, 3, "x")[..40]).ErrorCode);
        Assert.Equal(ErrorCodes.CorruptMessage, follower.AppendAsFollower(ReadOnlyMemory<byte>.Empty).ErrorCode);
        Assert.Equal(size, follower.SizeBytes);
        Assert.Equal(3, follower.LogEndOffset);
        // Neither the high watermark nor max.message.bytes apply to what the leader accepted.
        follower.ReplicatedHighWatermark = true;
        follower.Config = follower.Config with { MaxMessageBytes = 10 };
        Assert.Equal(0, follower.AppendAsFollower(Stored(3, 4, "d", "e")).ErrorCode);
        Assert.Equal(5, follower.LogEndOffset);
        Assert.Equal(0, follower.HighWatermark);
    }

    [Fact]
    public void Follower_append_with_offset_gaps_of_a_compacted_leader_survives_recovery()
    {
        using (var follower = Open())
        {
            Assert.Equal(0, follower.AppendAsFollower(TestBatches.Concat(Stored(0, 0, "a"), Stored(5, 0, "b"))).ErrorCode);
            Assert.Equal(0, follower.AppendAsFollower(Stored(9, 1, "c")).ErrorCode);
            Assert.Equal(10, follower.LogEndOffset);
            Assert.True(File.Exists(Path.Combine(_dir.PartitionDir(), PartitionLog.OffsetGapsFile)));
            follower.Close();
        }
        // Unclean: every segment is validated, and the gaps must not look like damage.
        File.Delete(Path.Combine(_dir.PartitionDir(), PartitionLog.CleanShutdownFile));
        File.Delete(Path.Combine(_dir.PartitionDir(), PartitionLog.RecoveryPointFile));
        using var reopened = Open();
        Assert.Equal(10, reopened.LogEndOffset);
        Assert.Equal(["a", "b", "c"], Values(reopened));
    }

    [Fact]
    public void TruncateTo_inside_the_active_segment_then_append_again()
    {
        using var log = Open(config: new LogConfig { IndexIntervalBytes = 1 });
        for (var i = 0; i < 6; i++) AppendAt(log, 0, $"v{i}");
        AppendAt(log, 1, "w0", "w1", "w2"); // offsets 6..8
        var signal = log.LogEndOffsetSignal;
        log.TruncateTo(7); // inside the batch 6..8: it goes whole
        Assert.True(signal.IsCompleted);
        Assert.Equal(6, log.LogEndOffset);
        Assert.Equal(6, log.HighWatermark);
        Assert.Equal([new EpochEntry(0, 0)], log.EpochEntries);
        log.TruncateTo(4);
        Assert.Equal(4, log.LogEndOffset);
        log.TruncateTo(10); // at/above the end: nothing
        Assert.Equal(4, log.LogEndOffset);

        // The cut batches' timestamps (up to T0 + 2) left the segment's max and time index.
        Assert.Equal(new OffsetAndTimestamp(0, T0), log.LookupOffset(-3));
        AppendAt(log, 2, "x4", "x5"); // timestamps T0, T0 + 1
        AppendAt(log, 2, "x6");
        Assert.Equal(new OffsetAndTimestamp(5, T0 + 1), log.LookupOffset(-3));
        Assert.Equal(new OffsetAndTimestamp(5, T0 + 1), log.LookupOffset(T0 + 1));
        Assert.Equal(["v0", "v1", "v2", "v3", "x4", "x6"], Values(log));
        for (var i = 0; i < 7; i++)
            Assert.Equal((long)(i == 5 ? 4 : i), TestBatches.Parse(log.Read(i, 1).ToArray())[0].BaseOffset);
        Assert.Equal([new EpochEntry(0, 0), new EpochEntry(2, 4)], log.EpochEntries);
        log.Close();
        using var reopened = Open();
        Assert.Equal(["v0", "v1", "v2", "v3", "x4", "x6"], Values(reopened));
        Assert.Equal(7, reopened.HighWatermark);
    }

    [Fact]
    public void TruncateTo_across_segments_removes_later_segments_and_cuts_the_one_holding_the_offset()
    {
        var config = new LogConfig { SegmentBytes = 300, IndexIntervalBytes = 1, FileDeleteDelayMs = 0 };
        using (var log = Open(config: config))
        {
            for (var i = 0; i < 20; i++) AppendAt(log, i / 10, $"v{i}");
            Assert.True(log.SegmentCount >= 4, $"{log.SegmentCount} segments");
            var bases = log.SegmentBaseOffsets;
            var cutIn = bases[1];
            var target = cutIn + 1;
            log.TruncateTo(target);
            Assert.Equal(target, log.LogEndOffset);
            Assert.Equal(bases.Take(2), log.SegmentBaseOffsets);
            Assert.Equal(Enumerable.Range(0, (int)target).Select(i => $"v{i}"), Values(log));
            Assert.Equal(target <= 10 ? 1 : 2, log.EpochEntries.Count); // epoch 1 started at offset 10
            Assert.True(log.DeleteExpiredFiles() >= 2);
            Assert.Empty(Directory.GetFiles(_dir.PartitionDir(), "*.deleted"));
            for (var i = 0; i < 5; i++) AppendAt(log, 7, $"n{i}");
        }
        using var reopened = Open(config: config);
        var values = Values(reopened);
        Assert.Equal(values.Count, (int)reopened.LogEndOffset);
        Assert.Equal(["n0", "n1", "n2", "n3", "n4"], values.TakeLast(5));
        Assert.Equal(7, reopened.LatestEpoch);
    }

    [Fact]
    public void TruncateTo_below_the_first_segment_and_TruncateFullyAndStartAt_restart_the_log()
    {
        using (var log = Open())
        {
            for (var i = 0; i < 3; i++) AppendAt(log, 1, $"v{i}");
            log.TruncateFullyAndStartAt(100);
            Assert.Equal((100L, 100L, 100L), (log.LogStartOffset, log.LogEndOffset, log.HighWatermark));
            Assert.Empty(log.EpochEntries);
            Assert.Equal([100L], log.SegmentBaseOffsets);
            Assert.Equal(ErrorCodes.OffsetOutOfRange, log.Read(0, 100).ErrorCode);
            Assert.Equal(0, log.AppendAsFollower(Stored(100, 4, "a", "b")).ErrorCode);
            log.TruncateTo(50); // below the first segment: starts again there
            Assert.Equal((50L, 50L), (log.LogStartOffset, log.LogEndOffset));
            Assert.Equal(0, log.AppendAsFollower(Stored(50, 4, "c")).ErrorCode);
        }
        using var reopened = Open();
        Assert.Equal((50L, 51L), (reopened.LogStartOffset, reopened.LogEndOffset));
        Assert.Equal(["c"], Values(reopened));
        Assert.Equal([new EpochEntry(4, 50)], reopened.EpochEntries);
    }

    [Fact]
    public async Task Replicated_high_watermark_hides_appends_until_UpdateHighWatermark()
    {
        using var log = Open();
        log.ReplicatedHighWatermark = true;
        var hwSignal = log.AppendedSignal;
        var leoSignal = log.LogEndOffsetSignal;
        var advanced = 0;
        log.HighWatermarkAdvanced = _ => advanced++;
        AppendAt(log, 0, "a", "b");
        AppendAt(log, 0, "c");
        Assert.Equal((3L, 0L), (log.LogEndOffset, log.HighWatermark));
        Assert.True(leoSignal.IsCompleted);
        Assert.False(hwSignal.IsCompleted);
        Assert.Equal(0, log.Read(0, 1 << 20).Length); // consumers: nothing yet
        Assert.Equal(2, TestBatches.Parse(log.Read(0, 1 << 20, maxOffsetExclusive: long.MaxValue).ToArray()).Count); // followers: all

        Assert.True(log.UpdateHighWatermark(2));
        await hwSignal.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(1, advanced);
        Assert.Equal(["a"], TestBatches.Parse(log.Read(0, 1 << 20).ToArray()).Select(b => b.FirstValue));
        Assert.False(log.UpdateHighWatermark(1)); // never down
        Assert.False(log.UpdateHighWatermark(2));
        Assert.True(log.UpdateHighWatermark(100)); // clamped to the log end
        Assert.Equal(3, log.HighWatermark);
        Assert.Equal(2, advanced);
        Assert.Equal(new OffsetAndTimestamp(3, -1), log.LookupOffset(-1));

        AppendAt(log, 0, "d");
        Assert.True(log.SetFollowerHighWatermark(10)); // min(leader's, own log end)
        Assert.Equal(4, log.HighWatermark);
        log.TruncateTo(3); // the one way down
        Assert.Equal(3, log.HighWatermark);
        log.ReplicatedHighWatermark = false;
        AppendAt(log, 0, "e");
        Assert.Equal(log.LogEndOffset, log.HighWatermark);
    }

    [Fact]
    public void High_watermark_checkpoint_survives_close_and_an_unclean_open()
    {
        var dir = _dir.PartitionDir();
        var file = Path.Combine(dir, PartitionLog.HighWatermarkFile);
        using (var log = Open())
        {
            log.ReplicatedHighWatermark = true;
            for (var i = 0; i < 5; i++) AppendAt(log, 0, $"v{i}");
            log.UpdateHighWatermark(3);
            Assert.False(File.Exists(file)); // not on every update
        }
        Assert.Equal("3", File.ReadAllText(file));
        using (var log = Open())
        {
            log.ReplicatedHighWatermark = true;
            Assert.Equal((3L, 5L), (log.HighWatermark, log.LogEndOffset));
            log.UpdateHighWatermark(4);
            _time.Advance(TimeSpan.FromMilliseconds(PartitionLog.HighWatermarkCheckpointIntervalMs));
            log.FlushIfDue();
            Assert.Equal("4", File.ReadAllText(file));
            log.UpdateHighWatermark(5);
            log.FlushIfDue(); // interval not passed yet
            Assert.Equal("4", File.ReadAllText(file));
            log.Close();
            Assert.Equal("5", File.ReadAllText(file)); // Close writes it
        }
        // A crash before Close: no clean marker, and the checkpoint written last (by FlushIfDue) counts.
        File.Delete(Path.Combine(dir, PartitionLog.CleanShutdownFile));
        File.WriteAllText(file, "4");
        using (var log = Open())
        {
            log.ReplicatedHighWatermark = true;
            Assert.Equal((4L, 5L), (log.HighWatermark, log.LogEndOffset));
        }
        File.WriteAllText(file, "99"); // ahead of the log: clamped to its end
        using (var log = Open())
        {
            log.ReplicatedHighWatermark = true;
            Assert.Equal(5, log.HighWatermark);
        }
        File.Delete(file); // a log from before replication: everything is committed
        using (var log = Open())
        {
            log.ReplicatedHighWatermark = true;
            Assert.Equal(5, log.HighWatermark);
        }
    }

    [Fact]
    public void Diverged_logs_reconciled_by_epochs_end_up_byte_identical()
    {
        using var leader = Open("leader");
        using var follower = Open("follower");
        // Common prefix in epoch 0, replicated.
        AppendAt(leader, 0, "a", "b");
        AppendAt(leader, 0, "c");
        Assert.Equal(0, follower.AppendAsFollower(AllBytes(leader)).ErrorCode);
        // The follower led epoch 1 and wrote records nobody else got; the leader then led epochs 2 and 3.
        AppendAt(follower, 1, "lost1", "lost2");
        AppendAt(follower, 1, "lost3");
        AppendAt(leader, 2, "d");
        AppendAt(leader, 3, "e", "f");
        Assert.NotEqual(AllBytes(leader), AllBytes(follower));

        // OffsetForLeaderEpoch as the follower does it (Kafka's AbstractFetcherThread): ask the
        // leader for the end of the follower's latest epoch, then truncate to the smaller of it and
        // the follower's own end for the epoch the leader answered with.
        var (leaderEpoch, leaderEnd) = leader.EndOffsetForEpoch(follower.LatestEpoch);
        Assert.Equal((0, 3L), (leaderEpoch, leaderEnd));
        var (_, followerEnd) = follower.EndOffsetForEpoch(leaderEpoch);
        follower.TruncateTo(Math.Min(leaderEnd, followerEnd));
        Assert.Equal(3, follower.LogEndOffset);

        var read = leader.Read(follower.LogEndOffset, 1 << 20, maxOffsetExclusive: long.MaxValue);
        Assert.Equal(0, follower.AppendAsFollower(read.ToArray()).ErrorCode);
        Assert.Equal(AllBytes(leader), AllBytes(follower));
        Assert.Equal(leader.EpochEntries, follower.EpochEntries);
        Assert.Equal(leader.LogEndOffset, follower.LogEndOffset);
    }

    [Fact]
    public void A_read_racing_a_truncation_fails_rather_than_return_the_old_bytes()
    {
        using var log = Open();
        for (var i = 0; i < 4; i++) AppendAt(log, 0, $"v{i}");
        var read = log.Read(2, 1 << 20);
        Assert.True(read.Length > 0);
        log.TruncateTo(2);
        // Longer than what was cut: the copy reads the new bytes without reaching the file's end.
        AppendAt(log, 1, "a new, longer value", "and one more");
        AppendAt(log, 1, "another new, longer value");
        Assert.Throws<LogTruncatedException>(() => read.ToArray());
        Assert.IsAssignableFrom<ObjectDisposedException>(new LogTruncatedException(log.TopicPartition));
    }

    [Fact]
    public async Task Reads_racing_appends_and_truncations_return_only_whole_valid_contiguous_batches()
    {
        using var log = Open(config: new LogConfig { SegmentBytes = 400, IndexIntervalBytes = 1 });
        AppendAt(log, 0, "seed");
        using var stop = new CancellationTokenSource();
        var reads = 0;
        var reader = Task.Run(() =>
        {
            var random = new Random(7);
            var failed = 0;
            while (!stop.IsCancellationRequested)
            {
                var start = log.LogStartOffset;
                var offset = start + random.NextInt64(log.LogEndOffset - start + 1);
                var read = log.Read(offset, 1 << 12, minOneBatch: true, maxOffsetExclusive: long.MaxValue);
                if (read.ErrorCode != 0 || read.Length == 0) continue; // past a log end that moved down meanwhile
                byte[] bytes;
                try
                {
                    bytes = read.ToArray();
                }
                catch (LogTruncatedException)
                {
                    failed++;
                    continue;
                }
                var batches = TestBatches.Parse(bytes); // whole batches, or it throws
                Assert.All(batches, b => Assert.True(b.CrcValid));
                Assert.True(batches[0].LastOffset >= offset);
                for (var i = 1; i < batches.Count; i++) Assert.Equal(batches[i - 1].LastOffset + 1, batches[i].BaseOffset);
                Interlocked.Increment(ref reads);
            }
            return failed;
        });
        var random = new Random(42);
        // Until the reader has raced enough writes (it may start late on a busy machine), bounded.
        const int ReadsWanted = 300, RoundsMax = 20_000;
        for (var round = 1; round <= RoundsMax && (round <= 150 || Volatile.Read(ref reads) < ReadsWanted); round++)
        {
            for (var k = random.Next(1, 4); k > 0; k--)
                AppendAt(log, round, Enumerable.Range(0, random.Next(1, 4)).Select(i => $"r{round}-{i}").ToArray());
            if (round % 3 == 0)
                log.TruncateTo(log.LogStartOffset + random.NextInt64(log.LogEndOffset - log.LogStartOffset));
        }
        await stop.CancelAsync();
        await reader;
        Assert.True(reads >= ReadsWanted, $"{reads} reads");
        // The log itself is intact and reads back whole.
        Assert.Equal(log.LogEndOffset - log.LogStartOffset, TestBatches.Parse(AllBytes(log)).Sum(b => b.LastOffset - b.BaseOffset + 1));
    }

    [Fact]
    public void Retention_DeleteRecords_and_the_cleaner_stay_below_the_high_watermark()
    {
        var config = new LogConfig { SegmentBytes = 200, RetentionBytes = 0, FileDeleteDelayMs = 0 };
        using var log = Open(config: config);
        log.ReplicatedHighWatermark = true;
        for (var i = 0; i < 12; i++) AppendAt(log, 0, $"v{i}");
        var bases = log.SegmentBaseOffsets;
        Assert.True(bases.Count >= 4, $"{bases.Count} segments");
        Assert.Equal(0, log.ApplyRetention()); // HW 0: nothing is committed, nothing goes

        var hw = bases[2] + 1; // inside the third segment
        log.UpdateHighWatermark(hw);
        Assert.Equal(2, log.ApplyRetention());
        Assert.Equal(bases[2], log.LogStartOffset);
        Assert.True(log.LogStartOffset <= log.HighWatermark);

        Assert.Equal(ErrorCodes.OffsetOutOfRange, log.DeleteRecordsBefore(hw + 1).ErrorCode);
        Assert.Equal(new DeleteRecordsResult(0, hw), log.DeleteRecordsBefore(-1));

        log.Config = config with { Compacted = true, DeleteEnabled = false };
        var range = log.GetCleanableRange();
        Assert.True(range.FirstUncleanableOffset <= log.HighWatermark, $"{range.FirstUncleanableOffset} > {log.HighWatermark}");
        Assert.Equal(bases[2], range.FirstUncleanableOffset); // the segment holding the high watermark
    }
}
