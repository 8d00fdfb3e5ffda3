using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Grpc.Broker;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.Broker.Services;

/// <summary>
/// Fetch with isolation_level = 1 (read_committed), as Kafka serves it: records only below the
/// last stable offset, and the aborted transactions overlapping the returned records so the
/// consumer can drop them (it skips a listed producer's batches from the first offset up to
/// its ABORT marker). The last stable offset itself is answered for both isolation levels.
/// <para>No extra wake-up is needed for long polls: the last stable offset only moves when a
/// marker's offset falls below the high watermark, i.e. with a high-watermark advance, which
/// completes the log's AppendedSignal every fetch waits on.</para>
/// </summary>
internal static class ReadCommitted
{
    public const int IsolationLevel = 1;

    /// <summary>Adds to <paramref name="result"/> the aborted transactions overlapping [fetchOffset, end of <paramref name="records"/>), in first-offset order.</summary>
    public static void AddAbortedTransactions(PartitionFetchResult result, PartitionLog log, long fetchOffset, ReadOnlySpan<byte> records)
    {
        var upperBound = NextOffsetAfter(records);
        if (upperBound <= fetchOffset) return;
        foreach (var txn in log.AbortedTransactions(fetchOffset, upperBound).OrderBy(t => t.FirstOffset))
            result.AbortedTransactions.Add(new AbortedTransaction { ProducerId = txn.ProducerId, FirstOffset = txn.FirstOffset });
    }

    /// <summary>The offset after the last whole batch in <paramref name="records"/> (-1 when there is none).</summary>
    public static long NextOffsetAfter(ReadOnlySpan<byte> records)
    {
        long next = -1;
        var position = 0;
        while (records.Length - position >= RecordBatchHeader.Size && RecordBatchHeader.TryReadTotalSize(records[position..], out var total)
            && total >= RecordBatchHeader.Size && total <= records.Length - position)
        {
            next = new RecordBatchHeader(records[position..]).LastOffset + 1;
            position += total;
        }
        return next;
    }
}
