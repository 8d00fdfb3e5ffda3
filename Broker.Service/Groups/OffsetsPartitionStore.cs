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

    /// <summary>Writes the records as one batch; returns the Kafka error code (0 = written).</summary>
    public short Append(IReadOnlyList<(byte[] Key, byte[]? Value)> records, long nowMs)
    {
        if (records.Count == 0) return 0;
        using var builder = new RecordBatchBuilder();
        foreach (var (key, value) in records) builder.Append(nowMs, key, value);
        var bytes = builder.ToArray();
        try
        {
            var result = log.Append(bytes);
            return result.ErrorCode;
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            return ErrorCodes.KafkaStorageError;
        }
    }

    /// <summary>Every record from the log start to the log end, oldest first.</summary>
    public void ReadAll(Action<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>?> onRecord, CancellationToken cancellationToken)
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
    }
}
