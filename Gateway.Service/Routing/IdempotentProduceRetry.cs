using System.Buffers.Binary;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.Gateway.Routing;

/// <summary>
/// When the gateway may resend a partition's share of a Produce to the partition's new leader
/// itself (issue 13): only when the partition's leader moved (NOT_LEADER_OR_FOLLOWER: the broker
/// answered so, could not be reached, or no leader was known when the request was routed) and
/// EVERY batch of the partition is idempotent: magic 2 with a producer id and a base sequence
/// (both &gt;= 0). The new leader's producer state then recognises a batch the old leader had
/// already replicated to it as a duplicate (and answers with its original offsets), and appends
/// one it never got, so the resend can neither duplicate nor lose records, and a leader change
/// costs the client nothing. A batch without a sequence could be written twice: such a partition
/// is never resent (the client retries, and decides, with its own settings). Anything the
/// gateway cannot parse as whole v2 batches is not resent either.
/// </summary>
public static class IdempotentProduceRetry
{
    /// <summary>True when <paramref name="records"/> is one or more whole magic-2 batches, each with producer id &gt;= 0 and base sequence &gt;= 0.</summary>
    public static bool AllBatchesIdempotent(ReadOnlySpan<byte> records)
    {
        if (records.IsEmpty) return false;
        while (!records.IsEmpty)
        {
            if (records.Length < RecordBatchHeader.Size) return false;
            var batchLength = BinaryPrimitives.ReadInt32BigEndian(records[RecordBatchHeader.BatchLengthOffset..]);
            // The header after the length field must fit in the batch, and the batch in the bytes.
            if (batchLength < RecordBatchHeader.Size - RecordBatchHeader.LogOverhead || batchLength > records.Length - RecordBatchHeader.LogOverhead) return false;
            var header = new RecordBatchHeader(records);
            if (header.Magic != RecordBatchHeader.CurrentMagic || header.ProducerId < 0 || header.BaseSequence < 0) return false;
            records = records[(batchLength + RecordBatchHeader.LogOverhead)..];
        }
        return true;
    }

    /// <summary>
    /// Whether a partition that came back with <paramref name="errorCode"/> is resent to its new
    /// leader. The records are only looked at for a moved leader (the produce path pays nothing
    /// otherwise). acks=0 is never answered, so never resent.
    /// </summary>
    public static bool ShouldResend(short errorCode, ReadOnlySpan<byte> records, short acks)
        => LeaderMoveRetry.IsMoved(errorCode) && acks != 0 && AllBatchesIdempotent(records);
}
