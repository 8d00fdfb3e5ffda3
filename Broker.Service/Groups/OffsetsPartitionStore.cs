using StreamPlatform.Broker.Replication;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Broker.Transactions;
using StreamPlatform.Protos.Records;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Groups;

/// <summary>
/// One partition of a coordinator's internal topic (__consumer_offsets for groups,
/// __transaction_state for transactions) as the coordinator uses it: appends of (key, value)
/// records in one batch (so a group's state and its offsets change together or not at all) and
/// a full read from the log start, in order, to rebuild the state after a restart or a move of
/// leadership. The log is the broker's ordinary <see cref="PartitionLog"/>; compaction (the
/// topic's cleanup.policy) keeps the newest record per key.
/// <para>On a broker, appends go through the replica layer's leader append
/// (<see cref="Partition.AppendAsLeader"/> with acks=-1 and <see cref="AppendOrigin.Coordinator"/>,
/// as Kafka's coordinators append through their ReplicaManager): refused when this broker does not lead the partition (any more), or with
/// NOT_ENOUGH_REPLICAS before anything is written when the ISR is below min.insync.replicas; the
/// commit completes once the high watermark passed the batch. Without a replica layer (unit
/// tests over a bare log) the batch goes straight into the log, whose high watermark then
/// follows its end.</para>
/// </summary>
/// <param name="leader">The partition as this broker's replica layer holds it, looked up at each
/// append (null: not hosted here, answered NOT_LEADER_OR_FOLLOWER); null for a bare log.</param>
public sealed class OffsetsPartitionStore(PartitionLog log, Func<Partition?>? leader = null)
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
        => Append(records, nowMs, Timeout.InfiniteTimeSpan, TimeProvider.System);

    /// <summary>
    /// Like <see cref="Append(IReadOnlyList{ValueTuple{byte[], byte[]}}, long)"/>; through the
    /// replica layer the outcome's <see cref="AppendOutcome.Commit"/> completes with the commit's
    /// error code (0, NOT_ENOUGH_REPLICAS_AFTER_APPEND, NOT_LEADER_OR_FOLLOWER, or
    /// REQUEST_TIMED_OUT after <paramref name="commitTimeout"/>: offsets.commit.timeout.ms).
    /// </summary>
    /// <param name="transaction">Set for a TxnOffsetCommit: the batch is transactional and carries the
    /// producer's id and epoch (no sequence: a coordinator's write, <see cref="AppendOrigin.Coordinator"/>),
    /// so the producer's COMMIT or ABORT marker decides it and the log checks the epoch (fencing).</param>
    public AppendOutcome Append(IReadOnlyList<(byte[] Key, byte[]? Value)> records, long nowMs, TimeSpan commitTimeout, TimeProvider time,
        TransactionalProducer? transaction = null)
    {
        if (records.Count == 0) return new AppendOutcome(0, log.LogEndOffset);
        using var builder = new RecordBatchBuilder();
        if (transaction is { } producer)
        {
            builder.IsTransactional = true;
            builder.ProducerId = producer.ProducerId;
            builder.ProducerEpoch = producer.ProducerEpoch;
        }
        foreach (var (key, value) in records) builder.Append(nowMs, key, value);
        var bytes = builder.ToArray();
        try
        {
            if (leader is null)
            {
                var result = log.Append(bytes, origin: AppendOrigin.Coordinator);
                return new AppendOutcome(result.ErrorCode, result.ErrorCode == 0 ? result.LastOffset + 1 : -1);
            }
            if (leader() is not { } partition || !ReferenceEquals(partition.Log, log))
                return new AppendOutcome(ErrorCodes.NotLeaderOrFollower, -1);
            // Disposed when the commit completes; until then its timer is the commit timeout.
            var timeout = commitTimeout == Timeout.InfiniteTimeSpan ? null : new CancellationTokenSource(commitTimeout, time);
            var appended = partition.AppendAsLeader(bytes, requiredAcks: -1, timeout?.Token ?? CancellationToken.None, crcVerified: false, origin: AppendOrigin.Coordinator);
            if (timeout is not null)
            {
                if (appended.Commit is null) timeout.Dispose();
                else appended.Commit.ContinueWith(static (_, cts) => ((CancellationTokenSource)cts!).Dispose(), timeout,
                    CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
            var code = appended.Append.ErrorCode;
            return new AppendOutcome(code, code == 0 ? appended.Append.LastOffset + 1 : -1, appended.Commit);
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

    /// <summary>Every data record from the log start to the log end, oldest first (markers skipped); returns the log end it read to.</summary>
    public long ReadAll(Action<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>?> onRecord, CancellationToken cancellationToken)
        => ReadAll(r => onRecord(r.Key, r.Value), static (_, _, _) => { }, cancellationToken);

    /// <summary>
    /// Every record from the log start to the log end, oldest first, with where it is and which
    /// transactional producer wrote it; transaction markers (control batches) go to
    /// <paramref name="onMarker"/> (producer id, COMMIT or ABORT, offset), never to
    /// <paramref name="onRecord"/>. A control record that does not parse is skipped (never taken for
    /// data, never for a marker). Returns the log end it read to.
    /// </summary>
    public long ReadAll(Action<LoadedRecord> onRecord, Action<long, ControlRecordType, long> onMarker, CancellationToken cancellationToken)
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
                    var producerId = batch.IsTransactional ? batch.ProducerId : RecordBatchBuilder.NoProducerId;
                    foreach (var record in batch.Records)
                    {
                        if (record.Offset < offset || record.Key is not { } key) continue;
                        if (!batch.IsControl)
                        {
                            onRecord(new LoadedRecord(record.Offset, producerId, key, record.Value));
                            continue;
                        }
                        ControlRecord marker;
                        try
                        {
                            marker = ControlRecord.Parse(record);
                        }
                        catch (RecordBatchFormatException)
                        {
                            continue; // an unknown control type (a future marker): not a transaction's end
                        }
                        if (batch.IsTransactional) onMarker(batch.ProducerId, marker.Type, record.Offset);
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

/// <summary>
/// The identity a transactional write carries (TxnOffsetCommit): the producer's id and epoch.
/// </summary>
public readonly record struct TransactionalProducer(long ProducerId, short ProducerEpoch);

/// <summary>
/// One data record of __consumer_offsets as a load reads it: its log offset, the producer id of
/// its batch when the batch is transactional (else -1: a plain coordinator write), key and value.
/// </summary>
public readonly record struct LoadedRecord(long Offset, long TransactionalProducerId, ReadOnlyMemory<byte> Key, ReadOnlyMemory<byte>? Value);

/// <summary>
/// The outcome of an append: a Kafka error code (0 = written), the offset after the written
/// batch, and (through the replica layer) the commit's error code once known.
/// </summary>
public readonly record struct AppendOutcome(short ErrorCode, long EndOffset, Task<short>? Commit = null);

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
