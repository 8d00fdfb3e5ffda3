namespace StreamPlatform.Faults;

/// <summary>What reading a topic back said about the records the producer saw acknowledged.</summary>
public sealed class AckCheckResult
{
    public long Acked { get; init; }

    public long Consumed { get; init; }

    /// <summary>Acknowledged records not found at their acknowledged partition and offset (absent, or another record there).</summary>
    public Finding Lost { get; } = new();

    /// <summary>One offset given to two different acknowledged records, or read twice in one pass over the log.</summary>
    public Finding OffsetsReused { get; } = new();

    /// <summary>Two acknowledged records of one partition whose offsets are not in the order they were sent in.</summary>
    public Finding OrderViolations { get; } = new();

    /// <summary>Records whose key is not ours, whose value is not what their key says, or that are in another partition than written to.</summary>
    public Finding Corrupt { get; } = new();

    /// <summary>Extra copies of a record (a retry after a lost response writes it again): allowed without idempotence.</summary>
    public long Duplicates { get; init; }

    /// <summary>Records present that were never acknowledged (their delivery failed or was still pending): allowed.</summary>
    public long UnacknowledgedPresent { get; init; }

    public bool Ok => Lost.Count == 0 && OffsetsReused.Count == 0 && OrderViolations.Count == 0 && Corrupt.Count == 0;

    public override string ToString() =>
        $"acked {Acked}, read {Consumed}: lost {Lost}, offsets reused {OffsetsReused}, order violations {OrderViolations}, " +
        $"corrupt {Corrupt}, duplicates {Duplicates}, unacknowledged but present {UnacknowledgedPresent}";
}
