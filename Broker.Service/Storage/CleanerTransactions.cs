using StreamPlatform.Protos.Records;

namespace StreamPlatform.Broker.Storage;

/// <summary>
/// What the cleaner knows about the transactions of a compacted log, from one pass over its
/// batches below the high watermark, oldest first: for each producer, the transactions its
/// COMMIT or ABORT marker decided (first data offset .. marker offset) and whether one is still
/// open. Compaction then follows Kafka's rules (LogCleaner with transactions):
/// <list type="bullet">
/// <item>records of an ABORTED transaction are removed, and never supersede anything;</item>
/// <item>records of a COMMITTED transaction are compacted like any record;</item>
/// <item>records of a transaction not decided below the high watermark (open, or past the
/// index's limit) never supersede anything (their transaction may still abort) but may be
/// superseded by a later record: if they commit, the later record is the newer one anyway;</item>
/// <item>a marker is removed only once no data of its transaction is left in the log and it is
/// older than delete.retention.ms, as tombstones are; else it stays (a reader must see the end of
/// every transaction whose data it can read).</item>
/// </list>
/// Memory is bounded by <c>transactionsMax</c>: past it, later transactions count as undecided
/// (kept, never superseding, their markers kept), which is always safe.
/// </summary>
internal sealed class CleanerTransactions(int transactionsMax)
{
    public enum Outcome
    {
        Undecided,
        Committed,
        Aborted,
    }

    private readonly Dictionary<long, List<(long First, long Marker, bool Committed)>> _decided = [];
    private readonly Dictionary<long, long> _openFirst = [];
    private readonly HashSet<(long ProducerId, long Marker)> _kept = [];
    private readonly HashSet<(long ProducerId, long Marker)> _removedMarkers = [];
    private int _count;

    /// <summary>The pass stopped early at <c>transactionsMax</c>.</summary>
    public bool Full { get; private set; }

    /// <summary>Takes one batch of the pass (oldest first); false once full (the pass may stop).</summary>
    public bool Visit(ReadOnlySpan<byte> batch)
    {
        if (Full) return false;
        var h = new RecordBatchHeader(batch);
        if (!h.IsTransactional) return true;
        if (!h.IsControl)
        {
            _openFirst.TryAdd(h.ProducerId, h.BaseOffset);
            return true;
        }
        if (MarkerType(batch) is not { } type) return true;
        if (_count >= transactionsMax)
        {
            Full = true;
            return false;
        }
        var first = _openFirst.Remove(h.ProducerId, out var f) ? f : h.BaseOffset;
        if (!_decided.TryGetValue(h.ProducerId, out var list)) _decided[h.ProducerId] = list = [];
        list.Add((first, h.BaseOffset, type == ControlRecordType.Commit));
        _count++;
        return true;
    }

    /// <summary>How the transaction of a transactional data batch ended (below the high watermark).</summary>
    public Outcome OutcomeOf(long producerId, long baseOffset)
        => Find(producerId, baseOffset) is { } t ? (t.Committed ? Outcome.Committed : Outcome.Aborted) : Outcome.Undecided;

    /// <summary>A data batch of the transaction survives this cleaning: its marker must stay.</summary>
    public void MarkKept(long producerId, long baseOffset)
    {
        if (Find(producerId, baseOffset) is { } t) _kept.Add((producerId, t.Marker));
    }

    /// <summary>
    /// Whether the marker batch at <paramref name="markerOffset"/> ends a transaction this pass
    /// decided and no data batch of it was kept (by this cleaning, which rewrote every segment
    /// before the marker).
    /// </summary>
    public bool NoDataLeft(long producerId, long markerOffset)
    {
        if (!_decided.TryGetValue(producerId, out var list) || _kept.Contains((producerId, markerOffset))) return false;
        return list.Exists(t => t.Marker == markerOffset);
    }

    /// <summary>This cleaning removes the marker: its aborted-transaction index entry goes too.</summary>
    public void MarkerRemoved(long producerId, long markerOffset) => _removedMarkers.Add((producerId, markerOffset));

    public bool WasMarkerRemoved(long producerId, long markerOffset) => _removedMarkers.Contains((producerId, markerOffset));

    private (long First, long Marker, bool Committed)? Find(long producerId, long offset)
    {
        if (!_decided.TryGetValue(producerId, out var list)) return null;
        // Markers in log order: the first one after the batch ends its transaction.
        int lo = 0, hi = list.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) / 2;
            if (list[mid].Marker <= offset) lo = mid + 1;
            else hi = mid;
        }
        return lo < list.Count && list[lo].First <= offset ? list[lo] : null;
    }

    /// <summary>COMMIT or ABORT of a control batch; null for a control record this version does not know.</summary>
    public static ControlRecordType? MarkerType(ReadOnlySpan<byte> batch)
    {
        var records = RecordBatchReader.EnumerateRecords(batch, out var decompressed, new RecordBatchReaderOptions { VerifyCrc = false });
        try
        {
            foreach (var r in records)
            {
                if (r.KeyIsNull) return null;
                try
                {
                    return ControlRecord.Parse(r.Key, r.Value, r.ValueIsNull).Type;
                }
                catch (RecordBatchFormatException)
                {
                    return null;
                }
            }
            return null;
        }
        finally
        {
            decompressed?.Dispose();
        }
    }
}
