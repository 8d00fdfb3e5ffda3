using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Records;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Groups;

/// <summary>
/// One partition of __consumer_offsets as the coordinator uses it: appends of (key, value)
/// records in one batch (so a group's state and its offsets change together or not at all) and
/// a full read from the log start, in order, to rebuild the state after a restart or a move of
/// leadership. The log is the broker's ordinary <see cref="PartitionLog"/>; compaction (the
/// topic's cleanup.policy) keeps the newest record per key.
/// </summary>
public sealed class OffsetsPartitionStore(PartitionLog log)
{
    /// <summary>How much a load reads per step: bounds the memory of a load, not its length.</summary>
    public const int LoadReadBytesMax = 1024 * 1024;

    public PartitionLog Log => log;

    /// <summary>
    /// Writes the records as one batch on this leader. <see cref="AppendOutcome.EndOffset"/> is the
    /// offset after the batch: the write is committed (replicated to the ISR) once the
    /// partition's high watermark reaches it (<see cref="WaitCommittedAsync"/>).
    /// </summary>
    public AppendOutcome Append(IReadOnlyList<(byte[] Key, byte[]? Value)> records, long nowMs)
    {
        if (records.Count == 0) return new AppendOutcome(0, log.LogEndOffset);
        using var builder = new RecordBatchBuilder();
        foreach (var (key, value) in records) builder.Append(nowMs, key, value);
        var bytes = builder.ToArray();
        try
        {
            var result = log.Append(bytes);
            return new AppendOutcome(result.ErrorCode, result.ErrorCode == 0 ? result.LastOffset + 1 : -1);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            return new AppendOutcome(ErrorCodes.KafkaStorageError, -1);
        }
    }

    /// <summary>
    /// Waits until the high watermark reaches <paramref name="endOffset"/> (every record below it
    /// is committed), at most <paramref name="timeout"/>. Written against the log's high
    /// watermark and its advance signal only, so it holds whether the high watermark follows the
    /// log end at once (one replica) or lags behind followers.
    /// </summary>
    public async Task<CommitWaitResult> WaitCommittedAsync(long endOffset, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        var deadline = time.GetUtcNow() + timeout;
        while (true)
        {
            // The signal first, then the check: an advance between the two completes the signal
            // we hold, so it is never missed.
            var signal = log.AppendedSignal;
            if (log.HighWatermark >= endOffset) return CommitWaitResult.Committed;
            // A live log replaces its signal (under its lock) before completing it, so a signal
            // already complete here is the last one of a closed or deleted log: the high
            // watermark will not move again on this log.
            if (signal.IsCompleted) return CommitWaitResult.LogClosed;
            var remaining = deadline - time.GetUtcNow();
            if (remaining <= TimeSpan.Zero) return CommitWaitResult.TimedOut;
            try
            {
                await signal.WaitAsync(remaining, time, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // Looped: the check above decides with the newest high watermark.
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return CommitWaitResult.Cancelled;
            }
        }
    }

    /// <summary>Every record from the log start to the log end, oldest first; returns the log end it read to.</summary>
    public long ReadAll(Action<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>?> onRecord, CancellationToken cancellationToken)
    {
        var offset = log.LogStartOffset;
        var end = log.LogEndOffset;
        while (offset < end)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var read = log.Read(offset, LoadReadBytesMax, minOneBatch: true, maxOffsetExclusive: end);
            if (read.ErrorCode != 0 || read.Length == 0) break;
            var bytes = read.ToArray();
            var batches = RecordBatchReader.ReadAll(bytes);
            var next = offset;
            foreach (var batch in batches)
            {
                using (batch)
                {
                    if (!batch.IsControl)
                    {
                        foreach (var record in batch.Records)
                        {
                            if (record.Offset < offset || record.Key is not { } key) continue;
                            onRecord(key, record.Value);
                        }
                    }
                    next = Math.Max(next, batch.LastOffset + 1);
                }
            }
            if (next <= offset) break; // no progress: never loop forever on a damaged log
            offset = next;
        }
        return end;
    }
}

/// <summary>The outcome of an append: a Kafka error code (0 = written) and the offset after the written batch.</summary>
public readonly record struct AppendOutcome(short ErrorCode, long EndOffset);

/// <summary>How a wait for the high watermark ended.</summary>
public enum CommitWaitResult
{
    Committed,
    /// <summary>offsets.commit.timeout.ms passed first (Kafka: REQUEST_TIMED_OUT, answered as COORDINATOR_NOT_AVAILABLE).</summary>
    TimedOut,
    /// <summary>The log was closed or deleted (the broker stops, or the partition left it).</summary>
    LogClosed,
    /// <summary>The caller gave up: the partition was unloaded (leadership moved) or the request went away.</summary>
    Cancelled,
}
