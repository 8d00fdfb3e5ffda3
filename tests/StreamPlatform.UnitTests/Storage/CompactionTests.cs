using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.UnitTests.Storage;

public sealed class CompactionTests : IDisposable
{
    private const long T0 = 1_700_000_000_000;
    private const long OneDayMs = 86_400_000;
    private readonly TempDir _dir = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(T0));

    public void Dispose() => _dir.Dispose();

    private static LogConfig Compacted(int segmentBytes = 64 * 1024) => new()
    {
        Compacted = true,
        DeleteEnabled = false,
        SegmentBytes = segmentBytes,
        SegmentMs = 3_600_000,
        IndexIntervalBytes = 1024,
        DeleteRetentionMs = OneDayMs,
        FileDeleteDelayMs = 0,
    };

    private static byte[] Keyed(long timestamp, IEnumerable<(string Key, string? Value)> records, CompressionType compression = CompressionType.None)
    {
        using var builder = new RecordBatchBuilder { Compression = compression };
        foreach (var (k, v) in records) builder.Append(timestamp, Encoding.UTF8.GetBytes(k), v is null ? null : Encoding.UTF8.GetBytes(v));
        return builder.ToArray();
    }

    /// <summary>Every record of the log, in offset order, read through the public Read path; checks CRCs and increasing offsets.</summary>
    private static List<(long Offset, string Key, string? Value)> ReadRecords(PartitionLog log)
    {
        var all = new List<(long, string, string?)>();
        var offset = log.LogStartOffset;
        var last = -1L;
        while (offset < log.HighWatermark)
        {
            var read = log.Read(offset, 1 << 20);
            Assert.Equal(0, read.ErrorCode);
            if (read.Length == 0) break;
            var batches = RecordBatchReader.ReadAll(read.ToArray());
            foreach (var batch in batches)
            {
                using (batch)
                {
                    foreach (var r in batch.Records)
                    {
                        Assert.True(r.Offset > last, $"offset {r.Offset} after {last}");
                        last = r.Offset;
                        all.Add((r.Offset, Encoding.UTF8.GetString(r.Key!.Value.Span), r.Value is { } v ? Encoding.UTF8.GetString(v.Span) : null));
                    }
                    offset = batch.LastOffset + 1;
                }
            }
        }
        return all;
    }

    /// <summary>Rolls the active segment (segment.ms passes) with one filler record, so everything before is cleanable.</summary>
    private void RollWithFiller(PartitionLog log)
    {
        _time.Advance(TimeSpan.FromHours(2));
        Assert.Equal(0, log.Append(Keyed(_time.GetUtcNow().ToUnixTimeMilliseconds(), [("filler", "f")])).ErrorCode);
    }

    [Fact]
    public void Hundred_thousand_updates_over_a_thousand_keys_end_with_the_latest_value_per_key_and_tombstones_go_after_delete_retention()
    {
        using var log = _dir.Open(Compacted(), _time);
        var random = new Random(42);
        var latest = new Dictionary<string, (long Offset, string? Value)>();
        for (var batch = 0; batch < 1000; batch++)
        {
            var records = Enumerable.Range(0, 100).Select(i => ($"key-{random.Next(1000)}", (string?)$"value-{batch * 100 + i}")).ToList();
            var appended = log.Append(Keyed(T0, records));
            Assert.Equal(0, appended.ErrorCode);
            for (var i = 0; i < records.Count; i++) latest[records[i].Item1] = (appended.FirstOffset + i, records[i].Item2);
        }
        // Tombstones for 100 keys.
        var tombstones = Enumerable.Range(0, 100).Select(i => ($"key-{i}", (string?)null)).ToList();
        var t = log.Append(Keyed(T0, tombstones));
        for (var i = 0; i < 100; i++) latest[$"key-{i}"] = (t.FirstOffset + i, null);
        var endOffset = log.LogEndOffset;
        RollWithFiller(log);
        var activeBase = log.Segments[^1].BaseOffset;
        var sizeBefore = log.SizeBytes;
        Assert.True(log.SegmentCount > 10, $"{log.SegmentCount} segments");
        Assert.Equal(1.0, log.GetCleanableRange().DirtyRatio);

        var result = log.Clean(offsetMapBytesMax: 16 << 20);
        Assert.Equal(100_000 - latest.Count + 100, result.RecordsRemoved); // 100,100 records, one survivor per key
        Assert.Equal(0, result.TombstonesRemoved); // not yet cleaned once, not yet older than delete.retention.ms
        Assert.Equal(activeBase, log.FirstDirtyOffset);
        Assert.True(log.SizeBytes < sizeBefore / 20, $"{log.SizeBytes} of {sizeBefore} bytes left");

        var records1 = ReadRecords(log).Where(r => r.Key != "filler").ToList();
        Assert.Equal(latest.Count, records1.Count);
        foreach (var (offset, key, value) in records1) Assert.Equal(latest[key], (offset, value));
        Assert.Equal(endOffset + 1, log.LogEndOffset);

        // A second cleaning before delete.retention.ms keeps the tombstones.
        _time.Advance(TimeSpan.FromHours(1));
        Assert.False(log.TombstonesDue);
        Assert.Equal(0, log.Clean(16 << 20).TombstonesRemoved); // nothing dirty, nothing due: no work
        Assert.True(log.SegmentCount > 10);

        _time.Advance(TimeSpan.FromMilliseconds(OneDayMs));
        Assert.True(log.TombstonesDue);
        Assert.Equal(100, log.Clean(16 << 20).TombstonesRemoved);
        // The first cleaning shrank the segments (groups are formed by original sizes); this one
        // merged them: they now fit one segment.bytes.
        Assert.Equal(2, log.SegmentCount);
        var records2 = ReadRecords(log).Where(r => r.Key != "filler").ToList();
        Assert.Equal(latest.Count - 100, records2.Count);
        Assert.All(records2, r => Assert.NotNull(r.Value));
        foreach (var (offset, key, value) in records2) Assert.Equal(latest[key], (offset, value));
        Assert.False(log.TombstonesDue);

        // The cleaned log survives a restart as it is.
        log.Close();
        using var reopened = _dir.Open(Compacted(), _time);
        Assert.Equal(records2, ReadRecords(reopened).Where(r => r.Key != "filler").ToList());
        Assert.Equal(activeBase, reopened.FirstDirtyOffset);
    }

    [Fact]
    public void A_small_offset_map_cleans_in_several_rounds_to_the_same_result()
    {
        using var log = _dir.Open(Compacted(segmentBytes: 8 * 1024), _time);
        var random = new Random(7);
        var latest = new Dictionary<string, (long, string?)>();
        for (var batch = 0; batch < 500; batch++)
        {
            var batchRecords = Enumerable.Range(0, 10).Select(i => ($"k{random.Next(300)}", (string?)$"v{batch}-{i}")).ToList();
            var appended = log.Append(Keyed(T0, batchRecords));
            for (var i = 0; i < batchRecords.Count; i++) latest[batchRecords[i].Item1] = (appended.FirstOffset + i, batchRecords[i].Item2);
        }
        RollWithFiller(log);
        var activeBase = log.Segments[^1].BaseOffset;
        const long mapBytes = 200 * PartitionLog.OffsetMapEntryBytes; // 200 keys per round, fewer than the 300 keys
        var rounds = 0;
        while (log.FirstDirtyOffset < activeBase)
        {
            var before = log.FirstDirtyOffset;
            log.Clean(mapBytes);
            Assert.True(log.FirstDirtyOffset > before, "each round makes progress");
            Assert.True(++rounds < 100);
        }
        Assert.True(rounds > 1, $"{rounds} rounds");
        // The last round's map did not see the early keys; one more full round settles them all.
        log.Clean(16 << 20);
        var records = ReadRecords(log).Where(r => r.Key != "filler").ToList();
        Assert.Equal(latest.Count, records.Count);
        foreach (var (offset, key, value) in records) Assert.Equal(latest[key], (offset, value));
    }

    [Fact]
    public void The_active_segment_and_records_younger_than_min_compaction_lag_are_never_touched()
    {
        using var log = _dir.Open(Compacted(), _time);
        for (var i = 0; i < 50; i++) log.Append(Keyed(T0, [("same", $"v{i}")]));
        var activeFile = Path.Combine(_dir.PartitionDir(), "00000000000000000000.log");
        var bytes = File.ReadAllBytes(activeFile);
        Assert.Equal(0, log.GetCleanableRange().DirtyBytes);
        Assert.Equal(new CleanResult(0, 0, 0, 0, 0, 0), log.Clean(16 << 20));
        Assert.Equal(bytes, File.ReadAllBytes(activeFile));
        Assert.Equal(50, ReadRecords(log).Count);

        // Rolled but younger than min.compaction.lag.ms: still untouched.
        log.Config = log.Config with { MinCompactionLagMs = 3 * 3_600_000 };
        RollWithFiller(log);
        Assert.Equal(0, log.GetCleanableRange().DirtyBytes);
        Assert.Equal(0, log.Clean(16 << 20).RecordsRemoved);
        Assert.Equal(51, ReadRecords(log).Count);
        _time.Advance(TimeSpan.FromHours(2)); // now 4 h after the records
        Assert.Equal(49, log.Clean(16 << 20).RecordsRemoved);
        Assert.Equal([("same", "v49"), ("filler", "f")], ReadRecords(log).Select(r => (r.Key, r.Value)));
    }

    [Fact]
    public void Rewritten_batches_keep_base_offset_producer_fields_compression_and_headers()
    {
        using var log = _dir.Open(Compacted(), _time);
        using (var builder = new RecordBatchBuilder { Compression = CompressionType.Gzip, ProducerId = 77, ProducerEpoch = 3, BaseSequence = 10 })
        {
            builder.Append(T0, "a"u8.ToArray(), "old"u8.ToArray());
            builder.Append(T0 + 1, Encoding.UTF8.GetBytes("b"), Encoding.UTF8.GetBytes("keep"), [new RecordHeader("h", Encoding.UTF8.GetBytes("hv")), new RecordHeader("n", (byte[]?)null)]);
            builder.Append(T0 + 2, "c"u8.ToArray(), "old"u8.ToArray());
            Assert.Equal(0, log.Append(builder.ToArray()).ErrorCode);
        }
        log.Append(Keyed(T0, [("a", "new"), ("c", "new")]));
        RollWithFiller(log);
        Assert.Equal(2, log.Clean(16 << 20).RecordsRemoved);

        var read = log.Read(0, 1 << 20).ToArray();
        var batches = RecordBatchReader.ReadAll(read); // verifies CRCs
        var first = batches[0];
        Assert.Equal((0L, 1L, CompressionType.Gzip, 77L, (short)3, 10), (first.BaseOffset, first.LastOffset, first.Compression, first.ProducerId, first.ProducerEpoch, first.BaseSequence));
        var kept = Assert.Single(first.Records);
        Assert.Equal((1L, T0 + 1, "keep"), (kept.Offset, kept.Timestamp, Encoding.UTF8.GetString(kept.Value!.Value.Span)));
        Assert.Equal(["h", "n"], kept.Headers.Select(h => h.Key));
        Assert.Equal("hv", Encoding.UTF8.GetString(kept.Headers[0].Value!.Value.Span));
        Assert.Null(kept.Headers[1].Value);
        Assert.Equal(3L, batches[1].BaseOffset); // untouched batch copied as it was
        foreach (var b in batches) b.Dispose();
        // Reading at an offset removed by compaction returns the next batch that exists.
        Assert.Equal(3L, new RecordBatchHeader(log.Read(2, 1 << 20).ToArray()).BaseOffset);
    }

    [Fact]
    public void Leftover_cleaned_files_are_dropped_and_a_finished_swap_is_completed_at_open()
    {
        var config = Compacted(segmentBytes: 2048);
        var original = _dir.PartitionDir("t", 0);
        var copy = _dir.PartitionDir("t", 1);
        using (var log = _dir.Open(config, _time))
        {
            for (var i = 0; i < 200; i++) log.Append(Keyed(T0, [($"k{i % 5}", $"v{i}")]));
            RollWithFiller(log);
        }
        Directory.CreateDirectory(copy);
        foreach (var f in Directory.GetFiles(original)) File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
        List<(long, string, string?)> expected;
        long activeBase;
        int originalSegments;
        using (var log = _dir.Open(config with { SegmentBytes = 1 << 20 }, _time)) // every old segment fits one group
        {
            originalSegments = log.SegmentCount;
            activeBase = log.Segments[^1].BaseOffset;
            Assert.Equal(originalSegments - 1, log.Clean(16 << 20).SegmentsRewritten);
            Assert.Equal(2, log.SegmentCount); // merged into one, plus the active segment
            expected = ReadRecords(log);
        }
        Assert.True(originalSegments > 3);
        // Crash after the merged segment's files were renamed to .swap-END, before the originals
        // went: the copy holds the originals plus the merged segment as .swap-END.
        foreach (var ext in LogSegment.Extensions)
            // The .txnindex exists only once the segment has an ABORT marker.
            if (File.Exists(Path.Combine(original, "00000000000000000000" + ext)))
                File.Copy(Path.Combine(original, "00000000000000000000" + ext), Path.Combine(copy, "00000000000000000000" + ext + PartitionLog.SwapSuffixFor(activeBase)));
        // And leftovers of an unfinished cleaning (.cleaned, and an index already .swap-END).
        var second = Directory.GetFiles(copy, "*.log").Select(Path.GetFileName).Order().ElementAt(1)!;
        File.WriteAllBytes(Path.Combine(copy, second + PartitionLog.CleanedSuffix), [1, 2, 3]);
        File.WriteAllBytes(Path.Combine(copy, Path.ChangeExtension(second, ".index") + PartitionLog.SwapSuffixFor(activeBase)), [0, 0, 0, 0]);
        File.Delete(Path.Combine(copy, PartitionLog.CleanShutdownFile));

        using var recovered = _dir.Open(config, _time, partition: 1);
        Assert.DoesNotContain(Directory.GetFiles(copy), f => f.Contains(PartitionLog.SwapSuffix, StringComparison.Ordinal) || f.EndsWith(PartitionLog.CleanedSuffix, StringComparison.Ordinal));
        // Every original below the active segment was replaced by the merged one.
        Assert.Equal([0L, activeBase], recovered.SegmentBaseOffsets);
        Assert.Equal(expected, ReadRecords(recovered));
        Assert.Equal(201, recovered.LogEndOffset);
        Assert.Equal(0, recovered.Append(Keyed(T0, [("k0", "after")])).ErrorCode);
    }

    [Fact]
    public void Cleaner_round_picks_compacted_logs_above_the_dirty_ratio_only()
    {
        using var manager = new LogManager(_dir.Path, _time, NullLogger<LogManager>.Instance);
        foreach (var name in new[] { "compacted", "plain", "lazy" }) Directory.CreateDirectory(_dir.PartitionDir(name, 0));
        manager.LoadAll();
        PartitionLog Log(string name) => manager.Logs.Single(l => l.TopicPartition.Topic == name);
        Log("compacted").Config = Compacted();
        Log("plain").Config = Compacted() with { Compacted = false, DeleteEnabled = true };
        Log("lazy").Config = Compacted() with { MinCleanableDirtyRatio = 0.99 };
        foreach (var log in manager.Logs)
        {
            for (var i = 0; i < 100; i++) log.Append(Keyed(T0, [("k", $"v{i}")]));
        }
        _time.Advance(TimeSpan.FromHours(2));
        foreach (var log in manager.Logs) log.Append(Keyed(T0, [("filler", "f")]));
        var cleaner = new LogCleaner(manager, new LogCleanerOptions(1 << 20, TimeSpan.FromSeconds(15)), _time, NullLogger<LogCleaner>.Instance);
        Assert.Equal(0, cleaner.RunOnce()); // configs not from metadata yet
        foreach (var log in manager.Logs) log.AppliedMetadataEpoch = 1;
        Assert.Equal(2, cleaner.RunOnce());
        Assert.Equal(2, ReadRecords(Log("compacted")).Count);
        Assert.Equal(101, ReadRecords(Log("plain")).Count);
        Assert.Equal(2, ReadRecords(Log("lazy")).Count); // ratio 1.0 >= 0.99
        // Nothing dirty any more: the next round does nothing.
        Assert.Equal(0, cleaner.RunOnce());

        // Below the dirty ratio, but max.compaction.lag.ms forces a cleaning once the oldest dirty record is old enough.
        var lazy = Log("lazy");
        lazy.Config = lazy.Config with { MinCleanableDirtyRatio = 0.9, MaxCompactionLagMs = 5 * 3_600_000 };
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        lazy.Append(Keyed(now, [("k", "newer")]));
        _time.Advance(TimeSpan.FromHours(2));
        lazy.Append(Keyed(now, [("filler", "f2")])); // rolls: the dirty part is now cleanable
        Assert.True(lazy.GetCleanableRange().DirtyRatio < 0.9);
        Assert.False(lazy.CompactionLagExceeded(lazy.GetCleanableRange()));
        Assert.Equal(0, cleaner.RunOnce());
        // The oldest dirty record (the first filler, written at T0) is 4 h old; 6 h after this.
        _time.Advance(TimeSpan.FromHours(2));
        Assert.True(lazy.CompactionLagExceeded(lazy.GetCleanableRange()));
        Assert.Equal(1, cleaner.RunOnce());
        // "k" keeps its latest value; the first filler stays: its newer value is in the active segment.
        Assert.Equal([("filler", "f"), ("k", "newer"), ("filler", "f2")], ReadRecords(lazy).Select(r => (r.Key, r.Value)));
    }

    [Fact]
    public async Task Cleaning_while_appending_and_reading_never_shows_a_reader_a_broken_or_missing_batch()
    {
        using var log = _dir.Open(Compacted(segmentBytes: 4 * 1024) with { SegmentMs = long.MaxValue }, _time);
        var latest = new Dictionary<string, string>();
        var writer = Task.Run(() =>
        {
            for (var n = 0; n < 600; n++)
            {
                var records = Enumerable.Range(0, 5).Select(i => ($"k{(n * 5 + i) % 50}", (string?)$"v{n}-{i}")).ToList();
                Assert.Equal(0, log.Append(Keyed(T0, records)).ErrorCode);
                foreach (var (k, v) in records) latest[k] = v!;
            }
        });
        using var stop = new CancellationTokenSource();
        var reader = Task.Run(() =>
        {
            var reads = 0;
            while (!stop.IsCancellationRequested || reads == 0)
            {
                // Whatever the cleaner swapped meanwhile, every batch read is whole and valid
                // (ReadRecords checks CRCs and increasing offsets).
                try
                {
                    ReadRecords(log);
                    reads++;
                }
                catch (ObjectDisposedException)
                {
                    // A read that outlived file.delete.delay.ms (0 in this test) of a replaced
                    // segment fails cleanly (the broker answers it with a retriable error).
                }
            }
            return reads;
        });
        var rounds = 0;
        while (!writer.IsCompleted || rounds == 0)
        {
            log.Clean(16 << 20);
            log.DeleteExpiredFiles(); // file.delete.delay.ms is 0 here: replaced segments go at once
            rounds++;
        }
        await writer;
        await stop.CancelAsync();
        Assert.True(await reader > 0);
        log.Append(Keyed(T0, [("filler", "f")]));
        log.Config = log.Config with { SegmentBytes = 1 }; // the next append rolls: everything before is cleanable
        log.Append(Keyed(T0, [("filler", "g")]));
        log.Clean(16 << 20);
        var final = ReadRecords(log).Where(r => r.Key != "filler").ToList();
        Assert.Equal(latest.OrderBy(kv => kv.Key), final.Select(r => KeyValuePair.Create(r.Key, r.Value!)).OrderBy(kv => kv.Key));
    }

    [Fact]
    public void A_cleaned_log_fully_recovered_after_a_crash_keeps_its_offset_gaps()
    {
        var config = Compacted(segmentBytes: 2048);
        List<(long, string, string?)> expected;
        using (var log = _dir.Open(config, _time))
        {
            for (var i = 0; i < 300; i++) log.Append(Keyed(T0, [($"k{i % 7}", $"v{i}")]));
            RollWithFiller(log);
            Assert.True(log.Clean(16 << 20).SegmentsRewritten > 1);
            expected = ReadRecords(log);
            log.Append(Keyed(T0, [("k0", "after")]));
            expected.Add((log.LogEndOffset - 1, "k0", "after"));
        }
        // As if the cleaner's checkpoint never got past 0 and nothing was known to be flushed:
        // every segment is validated batch by batch, gaps and all.
        File.WriteAllText(Path.Combine(_dir.PartitionDir(), PartitionLog.CleanerCheckpointFile), "0");
        File.Delete(Path.Combine(_dir.PartitionDir(), PartitionLog.CleanShutdownFile));
        File.Delete(Path.Combine(_dir.PartitionDir(), PartitionLog.RecoveryPointFile));
        using var reopened = _dir.Open(config, _time);
        Assert.Equal(expected, ReadRecords(reopened));
    }

    private static byte[] Transactional(long producerId, int sequence, string key, string value)
    {
        using var builder = new RecordBatchBuilder { ProducerId = producerId, ProducerEpoch = 0, BaseSequence = sequence, IsTransactional = true };
        builder.Append(T0, Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(value));
        return builder.ToArray();
    }

    [Fact]
    public void A_record_of_an_aborted_transaction_never_supersedes_the_committed_value()
    {
        using var log = _dir.Open(Compacted(), _time);
        Assert.Equal(0, log.Append(Keyed(T0, [("k", "committed")])).ErrorCode); // 0
        Assert.Equal(0, log.Append(Transactional(5, 0, "k", "aborted")).ErrorCode); // 1
        Assert.Equal(0, log.Append(ProducerBatches.Marker(5, 0, ControlRecordType.Abort), origin: StreamPlatform.Broker.Transactions.AppendOrigin.TransactionMarker).ErrorCode); // 2
        RollWithFiller(log);
        log.Clean(16 << 20);
        var records = ReadRecords(log);
        Assert.Contains((0L, "k", (string?)"committed"), records);
        Assert.Equal([new AbortedTxn(5, 1, 2, 3)], log.AbortedTransactions(0, log.LogEndOffset));
    }

    [Fact]
    public void Cleaning_stops_at_the_last_stable_offset()
    {
        using var log = _dir.Open(Compacted(), _time);
        Assert.Equal(0, log.Append(Keyed(T0, [("k", "committed")])).ErrorCode); // 0
        RollWithFiller(log); // 1
        Assert.Equal(0, log.Append(Transactional(6, 0, "k", "open")).ErrorCode); // 2: may still be aborted
        RollWithFiller(log); // 3
        Assert.Equal(2, log.LastStableOffset);
        Assert.Equal(log.Segments[1].BaseOffset, log.GetCleanableRange().FirstUncleanableOffset);
        log.Clean(16 << 20);
        Assert.Contains((0L, "k", (string?)"committed"), ReadRecords(log));
    }
}

