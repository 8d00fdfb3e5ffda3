using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.UnitTests.Storage;

public sealed class PartitionLogTests : IDisposable
{
    private readonly TempDir _dir = new();
    private const long T0 = 1_700_000_000_000;

    public void Dispose() => _dir.Dispose();

    private static List<(long BaseOffset, long LastOffset, bool CrcValid, string FirstValue)> ReadAll(PartitionLog log, long from = 0)
    {
        var all = new List<(long, long, bool, string)>();
        var offset = from;
        while (offset < log.HighWatermark)
        {
            var r = log.Read(offset, 1 << 20);
            Assert.Equal(0, r.ErrorCode);
            var batches = TestBatches.Parse(r.ToArray());
            Assert.NotEmpty(batches);
            all.AddRange(batches);
            offset = batches[^1].LastOffset + 1;
        }
        return all;
    }

    [Fact]
    public void Append_assigns_offsets_by_rewriting_only_base_offset_and_keeps_crc_valid()
    {
        using var log = _dir.Open();
        var firstBatch = TestBatches.Build(T0, "a", "b", "c");
        var second0 = firstBatch.Length;
        var input = TestBatches.Concat(firstBatch, TestBatches.Build(T0, "d"));
        var original = input.ToArray();
        var first = log.Append(input);
        Assert.Equal(0, first.ErrorCode);
        Assert.Equal((0L, 3L), (first.FirstOffset, first.LastOffset));
        var second = log.Append(TestBatches.Build(T0, "e", "f"));
        Assert.Equal((4L, 5L), (second.FirstOffset, second.LastOffset));
        Assert.Equal(original, input); // the caller's buffer is untouched

        var stored = log.Read(0, 1 << 20).ToArray();
        var batches = TestBatches.Parse(stored);
        Assert.Equal([(0L, 2L, true, "a"), (3L, 3L, true, "d"), (4L, 5L, true, "e")], batches);
        // Only bytes 0..7 (base offset) and 12..15 (leader epoch) differ from the input.
        for (var i = 0; i < original.Length; i++)
        {
            if (i is >= 0 and < 8 or >= 12 and < 16) continue;
            if (i >= second0 && i < second0 + 8) continue; // second batch's base offset
            if (i >= second0 + 12 && i < second0 + 16) continue;
            Assert.True(stored[i] == original[i], $"byte {i} changed");
        }
        Assert.Equal(6, log.LogEndOffset);
        Assert.Equal(6, log.HighWatermark);
    }

    [Fact]
    public void Round_trip_across_segment_rolls_with_index_lookups()
    {
        var config = new LogConfig { SegmentBytes = 1000, IndexIntervalBytes = 150 };
        using var log = _dir.Open(config);
        for (var i = 0; i < 100; i++)
            Assert.Equal(i, log.Append(TestBatches.Build(T0 + i, $"v{i}")).FirstOffset);
        Assert.True(log.SegmentCount > 5, $"expected rolls, got {log.SegmentCount} segments");
        Assert.True(File.Exists(Path.Combine(_dir.PartitionDir(), "00000000000000000000.log")));
        Assert.True(File.Exists(Path.Combine(_dir.PartitionDir(), LogSegment.FileStem(log.SegmentBaseOffsets[1]) + ".index")));
        Assert.True(new FileInfo(Path.Combine(_dir.PartitionDir(), "00000000000000000000.index")).Length > 0);

        var all = ReadAll(log);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => $"v{i}"), all.Select(b => b.FirstValue));
        // Every offset can be fetched directly, whatever segment and index entry it falls after.
        for (var i = 0; i < 100; i++)
        {
            var r = log.Read(i, 1);
            var batch = Assert.Single(TestBatches.Parse(r.ToArray()));
            Assert.Equal(($"v{i}", (long)i), (batch.FirstValue, batch.BaseOffset));
        }
    }

    [Fact]
    public void Read_returns_batch_containing_offset_and_at_least_one_batch_beyond_max_bytes()
    {
        using var log = _dir.Open();
        log.Append(TestBatches.Build(T0, "a", "b", "c"));
        log.Append(TestBatches.Build(T0, "d"));
        var mid = log.Read(1, 1);
        var batch = Assert.Single(TestBatches.Parse(mid.ToArray()));
        Assert.Equal(0, batch.BaseOffset); // whole batch starting before the fetch offset
        Assert.Equal(0, log.Read(1, 1, minOneBatch: false).Length);
        Assert.Equal(2, TestBatches.Parse(log.Read(0, 10_000).ToArray()).Count);
        Assert.Equal(0, log.Read(4, 100).Length); // at the high watermark: nothing, no error
        Assert.Single(TestBatches.Parse(log.Read(0, 10_000, maxOffsetExclusive: 3).ToArray()));
    }

    [Fact]
    public void Read_outside_the_log_is_offset_out_of_range()
    {
        using var log = _dir.Open();
        log.Append(TestBatches.Build(T0, "a"));
        Assert.Equal(1, log.Read(2, 100).ErrorCode);
        Assert.Equal(1, log.Read(-1, 100).ErrorCode);
        Assert.Equal(0, log.Read(1, 100).ErrorCode);
    }

    [Fact]
    public void Invalid_input_is_rejected_and_nothing_is_appended()
    {
        using var log = _dir.Open(new LogConfig { MaxMessageBytes = 200 });
        var good = TestBatches.Build(T0, "a");
        var corrupt = good.ToArray();
        corrupt[^1] ^= 0x55;
        Assert.Equal(2, log.Append(TestBatches.Concat(good, corrupt)).ErrorCode); // CORRUPT_MESSAGE
        Assert.Equal(2, log.Append(good.AsMemory(0, good.Length - 3)).ErrorCode);
        Assert.Equal(2, log.Append(ReadOnlyMemory<byte>.Empty).ErrorCode);
        var big = TestBatches.Build(T0, new string('x', 300));
        Assert.Equal(10, log.Append(big).ErrorCode); // MESSAGE_TOO_LARGE
        Assert.Equal(0, log.LogEndOffset);
        Assert.Equal(0, log.SizeBytes);
    }

    [Fact]
    public void LogAppendTime_sets_max_timestamp_and_recomputes_crc()
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(T0 + 5000));
        using var log = _dir.Open(new LogConfig { LogAppendTime = true }, time);
        var result = log.Append(TestBatches.Build(T0, "a", "b"));
        Assert.Equal(T0 + 5000, result.LogAppendTimeMs);
        var stored = log.Read(0, 10_000).ToArray();
        var header = new RecordBatchHeader(stored);
        Assert.Equal(TimestampType.LogAppendTime, header.TimestampType);
        Assert.Equal(T0 + 5000, header.MaxTimestamp);
        Assert.Equal(RecordBatchHeader.ComputeCrc(stored), header.Crc);
    }

    [Fact]
    public void ListOffsets_earliest_latest_max_and_by_timestamp()
    {
        using var log = _dir.Open(new LogConfig { SegmentBytes = 300, IndexIntervalBytes = 1 });
        // Offsets 0..2 at T0, T0+10, T0+20 (one batch); then one batch per 100 ms.
        log.Append(TestBatches.Build(T0, 10, "a", "b", "c"));
        for (var i = 1; i <= 6; i++) log.Append(TestBatches.Build(T0 + i * 100, $"x{i}"));
        Assert.Equal(new OffsetAndTimestamp(0, -1), log.LookupOffset(-2));
        Assert.Equal(new OffsetAndTimestamp(9, -1), log.LookupOffset(-1));
        Assert.Equal(new OffsetAndTimestamp(8, T0 + 600), log.LookupOffset(-3));
        Assert.Equal(new OffsetAndTimestamp(0, T0), log.LookupOffset(T0 - 50));
        Assert.Equal(new OffsetAndTimestamp(1, T0 + 10), log.LookupOffset(T0 + 5)); // inside a batch
        Assert.Equal(new OffsetAndTimestamp(3, T0 + 100), log.LookupOffset(T0 + 21));
        Assert.Equal(new OffsetAndTimestamp(6, T0 + 400), log.LookupOffset(T0 + 400));
        Assert.Equal(new OffsetAndTimestamp(8, T0 + 600), log.LookupOffset(T0 + 550));
        Assert.Equal(OffsetAndTimestamp.None, log.LookupOffset(T0 + 601));
        Assert.True(log.SegmentCount > 1);
    }

    [Fact]
    public void Segment_ms_rolls_with_fake_time()
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(T0));
        using var log = _dir.Open(new LogConfig { SegmentMs = 60_000 }, time);
        log.Append(TestBatches.Build(T0, "a"));
        time.Advance(TimeSpan.FromSeconds(59));
        log.Append(TestBatches.Build(T0, "b"));
        Assert.Equal(1, log.SegmentCount);
        time.Advance(TimeSpan.FromSeconds(1));
        log.Append(TestBatches.Build(T0, "c"));
        Assert.Equal([0L, 2L], log.SegmentBaseOffsets);
        Assert.Equal(["a", "b", "c"], ReadAll(log).Select(b => b.FirstValue));
    }

    [Fact]
    public void Reopen_after_clean_shutdown_keeps_data_and_continues_offsets()
    {
        var config = new LogConfig { SegmentBytes = 500, IndexIntervalBytes = 100 };
        using (var log = _dir.Open(config))
            for (var i = 0; i < 30; i++) log.Append(TestBatches.Build(T0 + i, $"v{i}"));
        Assert.True(File.Exists(Path.Combine(_dir.PartitionDir(), PartitionLog.CleanShutdownFile)));
        using (var log = _dir.Open(config))
        {
            Assert.False(File.Exists(Path.Combine(_dir.PartitionDir(), PartitionLog.CleanShutdownFile)));
            Assert.Equal(30, log.LogEndOffset);
            Assert.Equal(new OffsetAndTimestamp(29, T0 + 29), log.LookupOffset(-3));
            Assert.Equal(30, log.Append(TestBatches.Build(T0, "more")).FirstOffset);
            Assert.Equal(Enumerable.Range(0, 30).Select(i => $"v{i}").Append("more"), ReadAll(log).Select(b => b.FirstValue));
        }
    }

    private string ActiveLogFile(PartitionLog log) => Path.Combine(_dir.PartitionDir(), LogSegment.FileStem(log.SegmentBaseOffsets[^1]) + ".log");

    /// <summary>Simulates a crash: the files stay as written, without the clean marker.</summary>
    private void Crash(PartitionLog log)
    {
        log.Close();
        File.Delete(Path.Combine(_dir.PartitionDir(), PartitionLog.CleanShutdownFile));
    }

    [Fact]
    public void Recovery_truncates_a_torn_tail_and_keeps_everything_before()
    {
        var config = new LogConfig { SegmentBytes = 400 };
        string file;
        using (var log = _dir.Open(config))
        {
            for (var i = 0; i < 10; i++) log.Append(TestBatches.Build(T0 + i, $"v{i}"));
            file = ActiveLogFile(log);
            Crash(log);
        }
        var length = new FileInfo(file).Length;
        using (var f = new FileStream(file, FileMode.Open)) f.SetLength(length - 10); // cut mid-batch
        using var reopened = _dir.Open(config);
        Assert.Equal(9, reopened.LogEndOffset);
        Assert.Equal(Enumerable.Range(0, 9).Select(i => $"v{i}"), ReadAll(reopened).Select(b => b.FirstValue));
        Assert.Equal(9, reopened.Append(TestBatches.Build(T0, "after")).FirstOffset);
    }

    [Fact]
    public void Recovery_truncates_at_a_corrupted_batch_and_drops_what_follows()
    {
        using (var log = _dir.Open())
        {
            for (var i = 0; i < 5; i++) log.Append(TestBatches.Build(T0 + i, $"v{i}"));
            Crash(log);
        }
        var file = Path.Combine(_dir.PartitionDir(), "00000000000000000000.log");
        var bytes = File.ReadAllBytes(file);
        var batchSize = bytes.Length / 5;
        bytes[2 * batchSize + 65] ^= 0x01; // a record byte of the third batch: CRC mismatch
        File.WriteAllBytes(file, bytes);
        using var reopened = _dir.Open();
        Assert.Equal(2, reopened.LogEndOffset);
        Assert.Equal(2 * batchSize, new FileInfo(file).Length);
        Assert.Equal(["v0", "v1"], ReadAll(reopened).Select(b => b.FirstValue));
    }

    [Fact]
    public void Recovery_rebuilds_missing_indexes()
    {
        var config = new LogConfig { IndexIntervalBytes = 100 };
        using (var log = _dir.Open(config))
        {
            for (var i = 0; i < 20; i++) log.Append(TestBatches.Build(T0 + i, $"v{i}"));
            Crash(log);
        }
        var index = Path.Combine(_dir.PartitionDir(), "00000000000000000000.index");
        File.Delete(index);
        using var reopened = _dir.Open(config);
        Assert.True(new FileInfo(index).Length > 0);
        Assert.Equal(20, reopened.LogEndOffset);
        Assert.Equal("v13", TestBatches.Parse(reopened.Read(13, 1).ToArray())[0].FirstValue);
    }

    [Fact]
    public async Task Appended_signal_completes_on_append()
    {
        using var log = _dir.Open();
        var signal = log.AppendedSignal;
        Assert.False(signal.IsCompleted);
        log.Append(TestBatches.Build(T0, "a"));
        await signal.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(log.AppendedSignal.IsCompleted);
    }
    private long RecoveryPoint() => long.Parse(File.ReadAllText(Path.Combine(_dir.PartitionDir(), PartitionLog.RecoveryPointFile)));

    [Fact]
    public void Flush_policy_records_the_recovery_point()
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(T0));
        using var log = _dir.Open(new LogConfig { FlushMessages = 3, FlushMs = 1000 }, time);
        log.Append(TestBatches.Build(T0, "a", "b"));
        Assert.False(File.Exists(Path.Combine(_dir.PartitionDir(), PartitionLog.RecoveryPointFile)));
        log.Append(TestBatches.Build(T0, "c"));
        Assert.Equal(3, RecoveryPoint()); // flush.messages reached
        log.Append(TestBatches.Build(T0, "d"));
        log.FlushIfDue();
        Assert.Equal(3, RecoveryPoint());
        time.Advance(TimeSpan.FromSeconds(1));
        log.FlushIfDue();
        Assert.Equal(4, RecoveryPoint()); // flush.ms elapsed
    }

    [Fact]
    public void CreateTime_outside_the_configured_bounds_is_invalid_timestamp()
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(T0));
        using var log = _dir.Open(new LogConfig { TimestampBeforeMaxMs = 60_000, TimestampAfterMaxMs = 1000 }, time);
        Assert.Equal(32, log.Append(TestBatches.Build(T0 - 60_001, "old")).ErrorCode);
        Assert.Equal(32, log.Append(TestBatches.Build(T0 + 1001, "future")).ErrorCode);
        Assert.Equal(0, log.Append(TestBatches.Build(T0 - 60_000, "ok")).ErrorCode);
        Assert.Equal(1, log.LogEndOffset);
    }

    [Fact]
    public void Segments_snapshot_describes_each_segment()
    {
        using var log = _dir.Open(new LogConfig { SegmentBytes = 200 });
        for (var i = 0; i < 6; i++) log.Append(TestBatches.Build(T0 + i, $"v{i}"));
        var segments = log.Segments;
        Assert.Equal(log.SizeBytes, segments.Sum(s => s.SizeBytes));
        Assert.Equal(6, segments[^1].NextOffset);
        Assert.All(segments.Zip(segments.Skip(1)), pair => Assert.Equal(pair.First.NextOffset, pair.Second.BaseOffset));
        Assert.Equal(T0 + 5, segments[^1].MaxTimestamp);
    }
    [Fact]
    public async Task Concurrent_appends_get_distinct_contiguous_offsets_while_readers_read()
    {
        using var log = _dir.Open(new LogConfig { SegmentBytes = 2000, IndexIntervalBytes = 200 });
        using var stop = new CancellationTokenSource();
        var readerStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reader = Task.Run(() =>
        {
            var reads = 0;
            // At least one read even if the writers finish before this task is scheduled.
            while (!stop.IsCancellationRequested || reads == 0)
            {
                var r = log.Read(0, 1 << 20);
                Assert.Equal(0, r.ErrorCode);
                if (r.Length > 0) TestBatches.Parse(r.ToArray()); // always whole, valid batches
                reads++;
                readerStarted.TrySetResult();
            }
            return reads;
        });
        // On a busy machine the pool may run the writers to completion before the reader starts.
        await readerStarted.Task;
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(() =>
            Enumerable.Range(0, 50).Select(i => log.Append(TestBatches.Build(T0, $"w{w}-{i}", "second")).FirstOffset).ToList())).ToArray();
        var offsets = (await Task.WhenAll(writers)).SelectMany(o => o).Order().ToList();
        await stop.CancelAsync();
        Assert.True(await reader > 0);
        Assert.Equal(Enumerable.Range(0, 200).Select(i => (long)i * 2), offsets);
        Assert.Equal(400, log.LogEndOffset);
        Assert.Equal(200, ReadAll(log).Count);
    }
}
