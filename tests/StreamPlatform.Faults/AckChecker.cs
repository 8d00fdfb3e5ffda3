namespace StreamPlatform.Faults;

/// <summary>
/// The one implementation of "no acknowledged record is lost": compares what the producer saw
/// acknowledged with one pass over the log. Used by the CI fault test and the fault tool.
/// <list type="bullet">
/// <item>every acknowledged record is at the partition and offset it was acknowledged with, with its key and value;</item>
/// <item>no offset was acknowledged for two different records, and no offset is read twice;</item>
/// <item>per partition, records sent later were acknowledged at higher offsets (the producer has
/// one request in flight, so retries cannot reorder);</item>
/// <item>every record read is one of ours, intact, in the partition it was sent to.</item>
/// </list>
/// Duplicates (the same record at two offsets after a retry) are counted but allowed: the
/// producer is not idempotent.
/// </summary>
public static class AckChecker
{
    /// <param name="partitions">The topic's partition count: record seq went to partition seq % partitions.</param>
    /// <param name="acked">Delivery reports without error, in any order.</param>
    /// <param name="consumed">One pass over every partition from its start, in the order read (per partition).</param>
    public static AckCheckResult Check(int partitions, IReadOnlyCollection<AckedRecord> acked, IReadOnlyCollection<ConsumedRecord> consumed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        ArgumentNullException.ThrowIfNull(acked);
        ArgumentNullException.ThrowIfNull(consumed);

        var copies = new Dictionary<long, int>(consumed.Count);
        var byPosition = new Dictionary<(int Partition, long Offset), ConsumedRecord>(consumed.Count);
        var lastOffset = new Dictionary<int, long>();
        var ackedSeqs = new HashSet<long>(acked.Select(a => a.Seq));
        var readTwice = new List<string>();
        var corrupt = new List<string>();
        foreach (var c in consumed)
        {
            if (!byPosition.TryAdd((c.Partition, c.Offset), c) ||
                (lastOffset.TryGetValue(c.Partition, out var last) && c.Offset <= last))
                readTwice.Add($"partition {c.Partition} offset {c.Offset} read after offset {(lastOffset.TryGetValue(c.Partition, out var l) ? l : -1)}");
            lastOffset[c.Partition] = Math.Max(c.Offset, lastOffset.GetValueOrDefault(c.Partition, -1));
            if (c.Seq < 0 || !c.ValueMatches || c.Seq % partitions != c.Partition)
                corrupt.Add($"partition {c.Partition} offset {c.Offset}: seq {c.Seq}, value {(c.ValueMatches ? "intact" : "different")}");
            if (c.Seq >= 0)
                copies[c.Seq] = copies.GetValueOrDefault(c.Seq) + 1;
        }

        var result = new AckCheckResult
        {
            Acked = acked.Count,
            Consumed = consumed.Count,
            Duplicates = copies.Values.Sum(n => (long)n - 1),
            UnacknowledgedPresent = copies.Keys.LongCount(seq => !ackedSeqs.Contains(seq)),
        };
        foreach (var r in readTwice) result.OffsetsReused.Add(r);
        foreach (var r in corrupt) result.Corrupt.Add(r);

        // Two different records acknowledged at one offset: the cluster handed the offset out twice.
        foreach (var group in acked.GroupBy(a => (a.Partition, a.Offset)).Where(g => g.Select(a => a.Seq).Distinct().Count() > 1))
            result.OffsetsReused.Add($"partition {group.Key.Partition} offset {group.Key.Offset} acknowledged for records {string.Join(", ", group.Select(a => a.Seq).Distinct())}");

        foreach (var a in acked.OrderBy(a => a.Partition).ThenBy(a => a.Offset))
        {
            if (!byPosition.TryGetValue((a.Partition, a.Offset), out var c))
                result.Lost.Add($"record {a.Seq} acknowledged at partition {a.Partition} offset {a.Offset}: no record there");
            else if (c.Seq != a.Seq || !c.ValueMatches)
                result.Lost.Add($"record {a.Seq} acknowledged at partition {a.Partition} offset {a.Offset}: found record {c.Seq}{(c.ValueMatches ? "" : " with another value")}");
        }

        foreach (var partition in acked.GroupBy(a => a.Partition))
        {
            AckedRecord? previous = null;
            foreach (var a in partition.OrderBy(a => a.Seq))
            {
                // The same record acknowledged twice (a duplicate delivery report) is not an order problem.
                if (previous is { } p && p.Seq != a.Seq && a.Offset <= p.Offset)
                    result.OrderViolations.Add($"partition {a.Partition}: record {p.Seq} at offset {p.Offset}, later record {a.Seq} at offset {a.Offset}");
                previous = a;
            }
        }
        return result;
    }
}
