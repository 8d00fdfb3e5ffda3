namespace StreamPlatform.Broker.Storage;

/// <summary>
/// One appended batch of an idempotent producer, as de-duplication needs it (Kafka's
/// BatchMetadata): the sequence range and the offsets and timestamp the batch got. A retried
/// batch with exactly this sequence range is answered with these offsets.
/// </summary>
public readonly record struct ProducerBatchMetadata(int FirstSeq, int LastSeq, long FirstOffset, long LastOffset, long TimestampMs);

/// <summary>
/// One producer id's state in one partition (Kafka's ProducerStateEntry): its epoch, its last
/// <see cref="BatchesRetained"/> batches (for de-duplication and the next expected sequence),
/// the timestamp of its last write (expiration), the epoch of the transaction coordinator that
/// last wrote a marker for it (fencing zombie coordinators) and the first offset of its open
/// transaction (-1: none; the last stable offset cannot pass it). Mutable; owned by a
/// <see cref="ProducerStateManager"/>, which copies it (<see cref="Clone"/>) to validate an
/// append before the log is written.
/// </summary>
public sealed class ProducerStateEntry
{
    /// <summary>
    /// Kafka keeps 5: a producer has at most max.in.flight.requests.per.connection = 5 requests
    /// unanswered per partition with idempotence on, so any retry is one of the last five batches.
    /// </summary>
    public const int BatchesRetained = 5;

    // Oldest first; at most BatchesRetained.
    private readonly List<ProducerBatchMetadata> _batches = new(BatchesRetained);

    public ProducerStateEntry(long producerId, short epoch = -1, int coordinatorEpoch = -1, long lastTimestampMs = -1, long currentTxnFirstOffset = -1)
    {
        ProducerId = producerId;
        Epoch = epoch;
        CoordinatorEpoch = coordinatorEpoch;
        LastTimestampMs = lastTimestampMs;
        CurrentTxnFirstOffset = currentTxnFirstOffset;
    }

    public long ProducerId { get; }
    /// <summary>-1 until the first batch or marker.</summary>
    public short Epoch { get; private set; }
    public int CoordinatorEpoch { get; private set; }
    public long LastTimestampMs { get; private set; }
    /// <summary>First offset of the producer's ongoing transaction in this partition; -1 when none.</summary>
    public long CurrentTxnFirstOffset { get; set; }
    public bool HasOngoingTransaction => CurrentTxnFirstOffset >= 0;
    public IReadOnlyList<ProducerBatchMetadata> Batches => _batches;
    public bool IsEmpty => _batches.Count == 0;
    /// <summary>Last sequence of the newest batch; -1 when no batch is known in this epoch.</summary>
    public int LastSeq => _batches.Count == 0 ? -1 : _batches[^1].LastSeq;
    public long LastDataOffset => _batches.Count == 0 ? -1 : _batches[^1].LastOffset;

    /// <summary>A data batch appended: a new epoch forgets the old epoch's batches.</summary>
    public void AddBatch(short epoch, ProducerBatchMetadata batch)
    {
        MaybeUpdateEpoch(epoch);
        if (_batches.Count == BatchesRetained) _batches.RemoveAt(0);
        _batches.Add(batch);
        LastTimestampMs = batch.TimestampMs;
    }

    /// <summary>A COMMIT/ABORT marker: the transaction ends, the marker's epoch (bumped by transaction version 2) is adopted.</summary>
    public void EndTransaction(short epoch, int coordinatorEpoch, long timestampMs)
    {
        MaybeUpdateEpoch(epoch);
        CoordinatorEpoch = coordinatorEpoch;
        CurrentTxnFirstOffset = -1;
        LastTimestampMs = timestampMs;
    }

    private void MaybeUpdateEpoch(short epoch)
    {
        if (epoch == Epoch) return;
        _batches.Clear();
        Epoch = epoch;
    }

    /// <summary>The retained batch with exactly this sequence range in the current epoch (Kafka's findDuplicateBatch).</summary>
    public ProducerBatchMetadata? FindDuplicate(short epoch, int firstSeq, int lastSeq)
    {
        if (epoch != Epoch) return null;
        foreach (var b in _batches)
            if (b.FirstSeq == firstSeq && b.LastSeq == lastSeq) return b;
        return null;
    }

    public ProducerStateEntry Clone()
    {
        var copy = new ProducerStateEntry(ProducerId, Epoch, CoordinatorEpoch, LastTimestampMs, CurrentTxnFirstOffset);
        copy._batches.AddRange(_batches);
        return copy;
    }

    /// <summary>Snapshot loading: batches oldest first (at most <see cref="BatchesRetained"/> are kept).</summary>
    internal void RestoreBatch(ProducerBatchMetadata batch)
    {
        if (_batches.Count == BatchesRetained) _batches.RemoveAt(0);
        _batches.Add(batch);
    }

    public override string ToString() => $"producer {ProducerId} epoch {Epoch} lastSeq {LastSeq} txn {CurrentTxnFirstOffset} coordinatorEpoch {CoordinatorEpoch}";
}
