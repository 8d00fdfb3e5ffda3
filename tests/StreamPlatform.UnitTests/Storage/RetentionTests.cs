using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Broker.Storage;

namespace StreamPlatform.UnitTests.Storage;

public sealed class RetentionTests : IDisposable
{
    private const long T0 = 1_700_000_000_000;
    private readonly TempDir _dir = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(T0));

    public void Dispose() => _dir.Dispose();

    /// <summary>One single-record batch per append; segments roll every 3 batches (~80 bytes each).</summary>
    private static LogConfig SmallSegments(LogConfig? with = null) => (with ?? LogConfig.Default) with { SegmentBytes = 250, FileDeleteDelayMs = 1000 };

    private static void AppendMany(PartitionLog log, int count, long timestamp)
    {
        for (var i = 0; i < count; i++) Assert.Equal(0, log.Append(TestBatches.Build(timestamp, $"value-{i:D4}")).ErrorCode);
    }

    private string[] FilesEndingWith(string suffix) => Directory.GetFiles(_dir.PartitionDir()).Where(f => f.EndsWith(suffix, StringComparison.Ordinal)).ToArray();

    [Fact]
    public void Retention_ms_deletes_old_segments_but_never_the_active_one()
    {
        using var log = _dir.Open(SmallSegments() with { RetentionMs = 60_000 }, _time);
        AppendMany(log, 9, T0); // three old segments' worth
        _time.Advance(TimeSpan.FromSeconds(30));
        AppendMany(log, 4, T0 + 30_000);
        var before = log.Segments;
        Assert.True(before.Count >= 4);

        Assert.Equal(0, log.ApplyRetention()); // nothing older than 60 s yet
        _time.Advance(TimeSpan.FromSeconds(31)); // records at T0 are now 61 s old, at T0+30s 31 s
        var removed = log.ApplyRetention();
        var oldSegments = before.Count(s => s.MaxTimestamp == T0);
        Assert.Equal(oldSegments, removed);
        Assert.Equal(log.Segments[0].BaseOffset, log.LogStartOffset);
        Assert.True(log.LogStartOffset > 0);
        Assert.Equal(13, log.LogEndOffset);
        Assert.Equal(1, log.Read(0, 1 << 20).ErrorCode); // OFFSET_OUT_OF_RANGE below the log start
        Assert.Equal(0, log.Read(log.LogStartOffset, 1 << 20).ErrorCode);

        // Everything expired: all but the active segment go.
        _time.Advance(TimeSpan.FromMinutes(5));
        log.ApplyRetention();
        Assert.Single(log.Segments);
        Assert.Equal(log.Segments[0].BaseOffset, log.LogStartOffset);
        Assert.Equal(0, log.Append(TestBatches.Build(T0, "after")).ErrorCode);
    }

    [Fact]
    public void Retention_ms_minus_one_and_compact_only_policy_keep_everything()
    {
        using var log = _dir.Open(SmallSegments() with { RetentionMs = -1 }, _time);
        AppendMany(log, 9, T0);
        _time.Advance(TimeSpan.FromDays(365));
        Assert.Equal(0, log.ApplyRetention());
        log.Config = log.Config with { RetentionMs = 1000, DeleteEnabled = false, Compacted = true };
        Assert.Equal(0, log.ApplyRetention());
        // A config change applies at the next pass, no reopen.
        log.Config = log.Config with { DeleteEnabled = true };
        Assert.True(log.ApplyRetention() > 0);
    }

    [Fact]
    public void Retention_bytes_deletes_oldest_segments_while_the_rest_stays_at_or_above_the_limit()
    {
        using var log = _dir.Open(SmallSegments(), _time);
        AppendMany(log, 20, T0);
        var segments = log.Segments;
        var total = segments.Sum(s => s.SizeBytes);
        var limit = total - segments[0].SizeBytes - segments[1].SizeBytes; // exactly two can go
        log.Config = log.Config with { RetentionBytes = limit };
        Assert.Equal(2, log.ApplyRetention());
        Assert.Equal(limit, log.SizeBytes);
        Assert.Equal(segments[2].BaseOffset, log.LogStartOffset);
        // One byte more than what is left: nothing else may go.
        log.Config = log.Config with { RetentionBytes = limit - segments[2].SizeBytes + 1 };
        Assert.Equal(0, log.ApplyRetention());
        log.Config = log.Config with { RetentionBytes = 0 };
        log.ApplyRetention();
        Assert.Single(log.Segments);
    }

    [Fact]
    public void Deleted_segments_are_renamed_and_removed_after_file_delete_delay()
    {
        using var log = _dir.Open(SmallSegments() with { RetentionMs = 1000 }, _time);
        AppendMany(log, 9, T0);
        // A read that started before the deletion keeps its segment handle.
        var inFlight = log.Read(0, 1 << 20);
        _time.Advance(TimeSpan.FromSeconds(2));
        var removed = log.ApplyRetention();
        Assert.True(removed > 0);
        Assert.Equal(removed, FilesEndingWith(".log" + PartitionLog.DeletedSuffix).Length);
        Assert.Equal(3 * removed, FilesEndingWith(PartitionLog.DeletedSuffix).Length);
        Assert.False(File.Exists(Path.Combine(_dir.PartitionDir(), "00000000000000000000.log")));
        Assert.Equal("value-0000", TestBatches.Parse(inFlight.ToArray())[0].FirstValue);

        Assert.Equal(0, log.DeleteExpiredFiles()); // file.delete.delay.ms (1 s) not over
        _time.Advance(TimeSpan.FromMilliseconds(1000));
        Assert.Equal(removed, log.DeleteExpiredFiles());
        Assert.Empty(FilesEndingWith(PartitionLog.DeletedSuffix));
        Assert.Equal(0, log.PendingFileDeletes);
    }

    [Fact]
    public void Log_start_offset_survives_reopen_clean_and_unclean()
    {
        long start;
        using (var log = _dir.Open(SmallSegments() with { RetentionMs = 1000 }, _time))
        {
            AppendMany(log, 9, T0);
            _time.Advance(TimeSpan.FromSeconds(2));
            log.ApplyRetention();
            start = log.LogStartOffset;
            Assert.True(start > 0);
            // Close with the .deleted files still pending: they go at the next open.
        }
        Assert.Equal(start.ToString(System.Globalization.CultureInfo.InvariantCulture), File.ReadAllText(Path.Combine(_dir.PartitionDir(), PartitionLog.LogStartOffsetFile)));
        using (var log = _dir.Open(SmallSegments(), _time))
        {
            Assert.Equal(start, log.LogStartOffset);
            Assert.Empty(FilesEndingWith(PartitionLog.DeletedSuffix));
            // DeleteRecords inside the first segment: the checkpoint is ahead of the segment's base.
            Assert.Equal(new DeleteRecordsResult(0, start + 1), log.DeleteRecordsBefore(start + 1));
            log.Flush();
        }
        // Unclean: no clean-shutdown marker, the recovery must still respect the checkpoint.
        File.Delete(Path.Combine(_dir.PartitionDir(), PartitionLog.CleanShutdownFile));
        using (var log = _dir.Open(SmallSegments(), _time))
        {
            Assert.Equal(start + 1, log.LogStartOffset);
            Assert.Equal(1, log.Read(start, 100).ErrorCode);
            Assert.Equal(start + 1, TestBatches.Parse(log.Read(start + 1, 100).ToArray())[0].BaseOffset);
            Assert.Equal(start + 1, log.LookupOffset(-2).Offset);
        }
    }

    [Fact]
    public void Segments_below_a_checkpointed_log_start_left_by_a_crash_are_removed_by_the_next_pass()
    {
        long secondBase;
        using (var log = _dir.Open(SmallSegments(), _time))
        {
            AppendMany(log, 9, T0);
            secondBase = log.Segments[1].BaseOffset;
        }
        // As if the broker died right after writing the checkpoint, before removing the segment.
        File.WriteAllText(Path.Combine(_dir.PartitionDir(), PartitionLog.LogStartOffsetFile), secondBase.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var reopened = _dir.Open(SmallSegments(), _time);
        Assert.Equal(secondBase, reopened.LogStartOffset);
        Assert.Equal(1, reopened.ApplyRetention());
        Assert.Equal(secondBase, reopened.Segments[0].BaseOffset);
    }

    [Fact]
    public void DeleteRecords_moves_the_log_start_and_removes_whole_segments_below_it()
    {
        using var log = _dir.Open(SmallSegments(), _time);
        AppendMany(log, 10, T0);
        var segments = log.Segments;
        Assert.Equal(new DeleteRecordsResult(1, 0), log.DeleteRecordsBefore(11)); // above the high watermark
        Assert.Equal(new DeleteRecordsResult(1, 0), log.DeleteRecordsBefore(-5));
        var target = segments[1].BaseOffset + 1;
        Assert.Equal(new DeleteRecordsResult(0, target), log.DeleteRecordsBefore(target));
        Assert.Equal(segments[1].BaseOffset, log.Segments[0].BaseOffset); // only the first segment went
        Assert.Equal(1, log.Read(target - 1, 100).ErrorCode);
        Assert.Equal(0, log.Read(target, 100).ErrorCode);
        Assert.Equal(new DeleteRecordsResult(0, target), log.DeleteRecordsBefore(2)); // below: no change
        Assert.Equal(new DeleteRecordsResult(0, 10), log.DeleteRecordsBefore(-1)); // -1: the high watermark
        Assert.Single(log.Segments); // the active segment stays, empty of readable offsets
        Assert.Equal(0, log.Read(10, 100).Length);
        Assert.Equal(10, log.Append(TestBatches.Build(T0, "next")).FirstOffset);
    }

    [Fact]
    public void Retention_service_pass_covers_every_log_of_the_manager()
    {
        using var manager = new LogManager(_dir.Path, _time, NullLogger<LogManager>.Instance);
        Directory.CreateDirectory(_dir.PartitionDir("a", 0));
        Directory.CreateDirectory(_dir.PartitionDir("b", 0));
        manager.LoadAll();
        foreach (var log in manager.Logs)
        {
            log.Config = SmallSegments() with { RetentionMs = 1000 };
            AppendMany(log, 9, T0);
        }
        _time.Advance(TimeSpan.FromSeconds(2));
        var service = new LogRetentionService(manager, _time, TimeSpan.FromSeconds(5), NullLogger<LogRetentionService>.Instance);
        // Configs not from metadata yet (broker just started): retention waits for them.
        Assert.Equal(0, service.RunOnce());
        foreach (var log in manager.Logs) log.AppliedMetadataEpoch = 1;
        Assert.True(service.RunOnce() >= 4);
        Assert.All(manager.Logs, l => Assert.Single(l.Segments));
        _time.Advance(TimeSpan.FromSeconds(1));
        service.RunOnce();
        Assert.All(manager.Logs, l => Assert.Equal(0, l.PendingFileDeletes));
    }
}
