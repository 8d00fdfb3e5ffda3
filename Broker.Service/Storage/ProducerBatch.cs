using StreamPlatform.Protos.Records;

namespace StreamPlatform.Broker.Storage;

/// <summary>
/// What producer state needs from one record batch with a producer id: its header fields and,
/// for a control batch, its COMMIT/ABORT marker (null when the control batch is empty, i.e.
/// cleaned, or its record is not a transaction marker).
/// </summary>
public readonly record struct ProducerBatch(long ProducerId, short Epoch, int BaseSequence, int LastOffsetDelta, long MaxTimestamp,
    bool IsTransactional, bool IsControl, ControlRecordType? Marker, int CoordinatorEpoch)
{
    /// <summary>The sequence of the batch's last record, wrapping past Int32.MaxValue to 0 as Kafka's sequences do.</summary>
    public int LastSequence => IncrementSequence(BaseSequence, LastOffsetDelta);

    /// <summary>Kafka's DefaultRecordBatch.incrementSequence: sequences wrap from Int32.MaxValue to 0.</summary>
    public static int IncrementSequence(int sequence, int increment)
        => sequence > int.MaxValue - increment ? increment - (int.MaxValue - sequence) - 1 : sequence + increment;

    /// <summary>Kafka's DefaultRecordBatch.decrementSequence.</summary>
    public static int DecrementSequence(int sequence, int decrement)
        => sequence < decrement ? int.MaxValue - (decrement - sequence) + 1 : sequence - decrement;

    /// <summary>Kafka's inSequence: <paramref name="next"/> directly follows <paramref name="last"/> (wrapping).</summary>
    public static bool InSequence(int last, int next) => next == last + 1L || (next == 0 && last == int.MaxValue);

    /// <summary>
    /// Reads a whole batch (<paramref name="batch"/> starts with its 61-byte header; for a
    /// control batch its records must follow). False for batches without a producer id.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> batch, out ProducerBatch result)
    {
        var h = new RecordBatchHeader(batch);
        result = default;
        if (h.ProducerId < 0) return false;
        ControlRecordType? marker = null;
        var coordinatorEpoch = -1;
        if (h.IsControl && batch.Length >= h.TotalSize && TryReadMarker(batch[..h.TotalSize], out var control))
        {
            marker = control.Type;
            coordinatorEpoch = control.CoordinatorEpoch;
        }
        result = new ProducerBatch(h.ProducerId, h.ProducerEpoch, h.BaseSequence, h.LastOffsetDelta, h.MaxTimestamp, h.IsTransactional, h.IsControl, marker, coordinatorEpoch);
        return true;
    }

    /// <summary>The first record of a control batch as a transaction marker; false when empty or not a marker.</summary>
    public static bool TryReadMarker(ReadOnlySpan<byte> batch, out ControlRecord marker)
    {
        marker = default;
        if (new RecordBatchHeader(batch).RecordsCount == 0) return false;
        try
        {
            var records = RecordBatchReader.EnumerateRecords(batch, out var decompressed, new RecordBatchReaderOptions { VerifyCrc = false });
            using (decompressed)
            {
                if (!records.MoveNext()) return false;
                var r = records.Current;
                if (r.KeyIsNull) return false;
                marker = ControlRecord.Parse(r.Key, r.Value, r.ValueIsNull);
                return true;
            }
        }
        catch (RecordBatchFormatException)
        {
            return false;
        }
    }
}
