using System.Globalization;
using Microsoft.Extensions.Logging;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Storage;

/// <summary>Why segments were removed from the front of the log.</summary>
public enum SegmentDeletionReason { LogStartOffset, RetentionTime, RetentionSize }

/// <summary>Outcome of DeleteRecords on one partition: the new log start offset (low watermark) or an error.</summary>
public readonly record struct DeleteRecordsResult(short ErrorCode, long LowWatermark);

public sealed partial class PartitionLog
{
    /// <summary>
    /// One retention pass (the <see cref="LogRetentionService"/> calls it periodically). Deletes
    /// the oldest segments, never the active one, that are
    /// <list type="bullet">
    /// <item>wholly below the log start offset (after DeleteRecords, or a crash between writing
    /// the log-start-offset checkpoint and removing the segments);</item>
    /// <item>with cleanup.policy delete: older than retention.ms, judged by the segment's
    /// largest record timestamp (its creation time when it has none);</item>
    /// <item>with cleanup.policy delete: not needed to stay at or above retention.bytes (a
    /// segment goes only if the log is still &gt;= retention.bytes without it).</item>
    /// </list>
    /// Each rule takes segments from the front only, as Kafka does: a young segment stops the
    /// time rule even if older-stamped ones follow it. Only segments wholly below the high
    /// watermark go (Kafka: the log start never passes it, uncommitted records are kept for the
    /// followers). Returns the number of segments removed;
    /// their files are renamed <c>.deleted</c> and removed file.delete.delay.ms later by
    /// <see cref="DeleteExpiredFiles"/>.
    /// </summary>
    public int ApplyRetention()
    {
        lock (_maintenanceLock)
        {
            var config = Config;
            var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
            var segments = _segmentsView;
            var start = LogStartOffset;
            var count = 0;
            var reason = SegmentDeletionReason.LogStartOffset;
            while (count < segments.Length - 1 && segments[count + 1].BaseOffset <= start) count++;
            if (config.DeleteEnabled && config.RetentionMs >= 0)
            {
                var before = count;
                while (count < segments.Length - 1 && nowMs - NewestTimestamp(segments[count]) > config.RetentionMs) count++;
                if (count > before) reason = SegmentDeletionReason.RetentionTime;
            }
            if (config.DeleteEnabled && config.RetentionBytes >= 0)
            {
                var before = count;
                long excess = segments.Sum(s => s.Size) - config.RetentionBytes;
                for (var i = 0; i < count; i++) excess -= segments[i].Size;
                while (count < segments.Length - 1 && excess - segments[count].Size >= 0)
                {
                    excess -= segments[count].Size;
                    count++;
                }
                if (count > before) reason = SegmentDeletionReason.RetentionSize;
            }
            var hw = HighWatermark;
            var belowHighWatermark = 0;
            while (belowHighWatermark < segments.Length - 1 && segments[belowHighWatermark + 1].BaseOffset <= hw) belowHighWatermark++;
            count = Math.Min(count, belowHighWatermark);
            return count == 0 ? 0 : RemoveOldestSegments(count, reason, nowMs);
        }
    }

    private static long NewestTimestamp(LogSegment s) => s.MaxTimestamp >= 0 ? s.MaxTimestamp : s.CreatedMs;

    /// <summary>
    /// DeleteRecords: moves the log start offset up to <paramref name="offset"/> (-1: the high
    /// watermark) and removes the segments wholly below it. Reads below it then get
    /// OFFSET_OUT_OF_RANGE. An offset above the high watermark is OFFSET_OUT_OF_RANGE; one at or
    /// below the current log start changes nothing (Kafka answers with the current low watermark).
    /// </summary>
    public DeleteRecordsResult DeleteRecordsBefore(long offset)
    {
        lock (_maintenanceLock)
        {
            lock (_appendLock)
            {
                if (_closed) return new DeleteRecordsResult(ErrorCodes.KafkaStorageError, -1);
                var hw = HighWatermark;
                if (offset == -1) offset = hw;
                if (offset < 0 || offset > hw) return new DeleteRecordsResult(ErrorCodes.OffsetOutOfRange, _logStartOffset);
                if (offset > _logStartOffset)
                {
                    try
                    {
                        // Checkpoint first: once it is on disk the records are gone for good,
                        // whatever happens to the segment files next.
                        WriteLogStartOffset(Directory, offset);
                    }
                    catch (IOException ex)
                    {
                        _logger.LogError(ex, "Could not write the log start offset of {Partition}", TopicPartition);
                        return new DeleteRecordsResult(ErrorCodes.KafkaStorageError, _logStartOffset);
                    }
                    Interlocked.Exchange(ref _logStartOffset, offset);
                    TruncateEpochsFromStart(offset);
                }
            }
            var segments = _segmentsView;
            var start = LogStartOffset;
            var count = 0;
            while (count < segments.Length - 1 && segments[count + 1].BaseOffset <= start) count++;
            if (count > 0) RemoveOldestSegments(count, SegmentDeletionReason.LogStartOffset, _time.GetUtcNow().ToUnixTimeMilliseconds());
            return new DeleteRecordsResult(ErrorCodes.None, start);
        }
    }

    /// <summary>
    /// Removes the <paramref name="count"/> oldest segments (never the active one): the log
    /// start offset moves to the next segment's base and is checkpointed (fsync) first, then the
    /// segment list is swapped under the append lock and the files renamed <c>.deleted</c>.
    /// Their handles stay open until file.delete.delay.ms has passed, so reads that already
    /// hold them finish.
    /// </summary>
    private int RemoveOldestSegments(int count, SegmentDeletionReason reason, long nowMs)
    {
        List<LogSegment> removed;
        lock (_appendLock)
        {
            if (_closed) return 0;
            count = Math.Min(count, _segments.Count - 1);
            if (count <= 0) return 0;
            var newStart = _segments[count].BaseOffset;
            if (newStart > _logStartOffset)
            {
                WriteLogStartOffset(Directory, newStart);
                Interlocked.Exchange(ref _logStartOffset, newStart);
                TruncateEpochsFromStart(newStart);
            }
            removed = _segments.GetRange(0, count);
            _segments.RemoveRange(0, count);
            _segmentsView = [.. _segments];
            var dueMs = nowMs + Math.Max(0, Config.FileDeleteDelayMs);
            foreach (var segment in removed)
            {
                try
                {
                    segment.RenameFiles("", DeletedSuffix);
                }
                catch (IOException ex)
                {
                    // Still below the log start offset: removed at the next open.
                    _logger.LogWarning(ex, "Could not rename segment {Segment} of {Partition} to .deleted", segment.BaseOffset, TopicPartition);
                }
                _pendingDeletes.Add((segment, dueMs));
            }
        }
        _logger.LogInformation("Removed {Count} segments of {Partition} ({Reason}); log start offset now {Start}",
            removed.Count, TopicPartition, reason, LogStartOffset);
        return removed.Count;
    }

    /// <summary>Deletes the files of removed segments whose file.delete.delay.ms has passed. Returns how many segments went.</summary>
    public int DeleteExpiredFiles()
    {
        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        List<LogSegment> due = [];
        lock (_appendLock)
        {
            for (var i = _pendingDeletes.Count - 1; i >= 0; i--)
            {
                if (_pendingDeletes[i].DueMs > nowMs) continue;
                due.Add(_pendingDeletes[i].Segment);
                _pendingDeletes.RemoveAt(i);
            }
        }
        foreach (var segment in due)
        {
            try
            {
                segment.Delete();
            }
            catch (IOException ex)
            {
                _logger.LogWarning(ex, "Could not delete the files of segment {Segment} of {Partition}; removed at the next open", segment.BaseOffset, TopicPartition);
            }
        }
        return due.Count;
    }

    /// <summary>Segments removed from the log whose files are still waiting for file.delete.delay.ms.</summary>
    public int PendingFileDeletes
    {
        get { lock (_appendLock) return _pendingDeletes.Count; }
    }

    // Under _appendLock, after the log start moved up. The epochs are a by-product here: failing
    // to write them must not fail the deletion (the next open cuts them to the log start again).
    private void TruncateEpochsFromStart(long start)
    {
        try
        {
            _epochCache.TruncateFromStart(start);
        }
        catch (IOException ex)
        {
            _logger.LogWarning(ex, "Could not update the leader-epoch checkpoint of {Partition}", TopicPartition);
        }
    }

    private static void WriteLogStartOffset(string directory, long offset)
        => AtomicWrite(Path.Combine(directory, LogStartOffsetFile), offset.ToString(CultureInfo.InvariantCulture));
}
