using System.Globalization;
using Microsoft.Extensions.Logging;

namespace StreamPlatform.Broker.Storage;

public sealed partial class PartitionLog
{
    /// <summary>
    /// Removes every batch at or after <paramref name="offset"/> (a follower cutting the part of
    /// its log that diverged from the leader's). Batches go whole, as in Kafka: an offset inside
    /// a batch removes that batch too, so the log end offset becomes the end of the last batch
    /// kept (= <paramref name="offset"/> on a batch boundary, below it inside a batch or a
    /// compaction gap). Later segments are removed (renamed <c>.deleted</c>, handles open for
    /// reads in flight, like retention); the one holding the offset is cut (file and indexes)
    /// and fsynced. The high watermark becomes min(itself, log end) — the one way it goes down —
    /// and is checkpointed at once; the epoch cache, recovery point and cleaner checkpoint follow.
    /// Below the first segment it is <see cref="TruncateFullyAndStartAt"/>; below the log start
    /// offset, the log start moves down to it (Kafka's truncateTo does the same). No-op at or
    /// above the log end offset. A read of the removed part in flight fails with
    /// <see cref="LogTruncatedException"/> rather than return bytes of the old log.
    /// </summary>
    /// <exception cref="IOException">The files could not be changed: the log is then read-only (recovered at the next open).</exception>
    public void TruncateTo(long offset)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        TaskCompletionSource signal;
        lock (_maintenanceLock)
        lock (_appendLock)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            if (offset >= _logEndOffset) return;
            // Incremented before and after (a sequence count): a read that saw either value while
            // the files changed, or before, fails its copy (LogReadResult), and new batches
            // appended at the same file positions are only written after the second increment.
            Interlocked.Increment(ref _truncations);
            try
            {
                if (offset < _segments[0].BaseOffset) TruncateFullyLocked(offset);
                else TruncateLocked(offset);
            }
            catch (IOException ex)
            {
                GoReadOnly("truncating", ex);
                throw;
            }
            finally
            {
                Interlocked.Increment(ref _truncations);
            }
            signal = TakeLogEndSignal();
        }
        signal.TrySetResult();
    }

    // Under both locks; offset >= the first segment's base and < the log end offset.
    private void TruncateLocked(long offset)
    {
        var index = FloorSegment(_segmentsView, offset);
        var keep = _segments[index];
        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        // Later segments first, newest first: a crash leaves a log that is too long (the
        // follower truncates again), never one with a hole before surviving later segments.
        var removed = _segments.GetRange(index + 1, _segments.Count - index - 1);
        _segments.RemoveRange(index + 1, removed.Count);
        _segmentsView = [.. _segments];
        var dueMs = nowMs + Math.Max(0, Config.FileDeleteDelayMs);
        for (var i = removed.Count - 1; i >= 0; i--)
        {
            removed[i].RenameFiles("", DeletedSuffix);
            _pendingDeletes.Add((removed[i], dueMs));
        }
        keep.TruncateFromOffset(offset);
        var end = keep.NextOffset;
        var hwBefore = HighWatermark;
        Interlocked.Exchange(ref _logEndOffset, end);
        Interlocked.Exchange(ref _highWatermark, Math.Min(Interlocked.Read(ref _highWatermark), end));
        if (_logStartOffset > end)
        {
            WriteLogStartOffset(Directory, end);
            Interlocked.Exchange(ref _logStartOffset, end);
        }
        // The cut segment is fsynced and every earlier one was at its roll.
        WriteRecoveryPoint(Directory, end);
        _unflushedMessages = 0;
        _firstUnflushedMs = -1;
        _epochCache.TruncateFromEnd(end);
        ClampCleanerCheckpoint(end);
        // Kafka's truncation reload: the latest snapshot at or below the new end, then the batches after it.
        LoadProducerState();
        // At once: a later follower append must never be exposed by a stale, higher checkpoint.
        if (HighWatermark < hwBefore) CheckpointHighWatermark(nowMs);
        _logger.LogInformation("Truncated {Partition} to {Offset} (requested {Requested}): {Segments} segments removed, high watermark {HighWatermark}",
            TopicPartition, end, offset, removed.Count, HighWatermark);
    }

    /// <summary>
    /// Empties the log and starts it again at <paramref name="offset"/>: log start = log end =
    /// high watermark = <paramref name="offset"/>, epoch cache cleared (a follower whose fetch
    /// offset is below the leader's log start, or whose log is wholly diverged).
    /// </summary>
    /// <exception cref="IOException">The files could not be changed: the log is then read-only.</exception>
    public void TruncateFullyAndStartAt(long offset)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        TaskCompletionSource signal;
        lock (_maintenanceLock)
        lock (_appendLock)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            Interlocked.Increment(ref _truncations);
            try
            {
                TruncateFullyLocked(offset);
            }
            catch (IOException ex)
            {
                GoReadOnly("truncating fully", ex);
                throw;
            }
            finally
            {
                Interlocked.Increment(ref _truncations);
            }
            signal = TakeLogEndSignal();
        }
        signal.TrySetResult();
    }

    // Under both locks, between the two increments of _truncations.
    private void TruncateFullyLocked(long offset)
    {
        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        // The start first: after a crash between here and the end, the old batches are below it
        // (out of reach) or, when the new start is below them, found again by the follower's
        // next divergence check, which truncates again.
        WriteLogStartOffset(Directory, offset);
        var dueMs = nowMs + Math.Max(0, Config.FileDeleteDelayMs);
        for (var i = _segments.Count - 1; i >= 0; i--)
        {
            // Renamed before the new segment is created: it may have the same base offset.
            _segments[i].RenameFiles("", DeletedSuffix);
            _pendingDeletes.Add((_segments[i], dueMs));
        }
        var fresh = LogSegment.Open(Directory, offset, Config, nowMs);
        _segments.Clear();
        _segments.Add(fresh);
        _segmentsView = [.. _segments];
        Interlocked.Exchange(ref _logEndOffset, offset);
        Interlocked.Exchange(ref _logStartOffset, offset);
        Interlocked.Exchange(ref _highWatermark, offset);
        WriteRecoveryPoint(Directory, offset);
        _unflushedMessages = 0;
        _firstUnflushedMs = -1;
        _epochCache.Clear();
        ClampCleanerCheckpoint(offset);
        _producerState.Clear();
        CheckpointHighWatermark(nowMs);
        _logger.LogInformation("Truncated {Partition} fully; it now starts at {Offset}", TopicPartition, offset);
    }

    // The cleaner's dirty part cannot start past the log end.
    private void ClampCleanerCheckpoint(long end)
    {
        if (Interlocked.Read(ref _firstDirtyOffset) <= end) return;
        Interlocked.Exchange(ref _firstDirtyOffset, end);
        var path = Path.Combine(Directory, CleanerCheckpointFile);
        if (File.Exists(path)) AtomicWrite(path, end.ToString(CultureInfo.InvariantCulture));
    }
}
