namespace StreamPlatform.Faults;

/// <summary>One kill / restart round: who was killed, and how long each step of the recovery took.</summary>
public sealed class RoundReport
{
    public required int Round { get; init; }

    /// <summary>The partition whose leader was chosen (seeded).</summary>
    public required int Partition { get; init; }

    /// <summary>The real broker id killed -9 (the partition's leader in the controller's metadata).</summary>
    public required int KilledBroker { get; init; }

    /// <summary>Acknowledged records of the whole topic when the kill was issued.</summary>
    public long AckedAtKill { get; set; }

    /// <summary>The broker the controller elected for the partition; -1 when none was elected in time.</summary>
    public int NewLeader { get; set; } = -1;

    /// <summary>Kill until the controller showed another leader for the partition.</summary>
    public double? FailoverMs { get; set; }

    /// <summary>Kill until the partition acknowledged a write again (under its new leader).</summary>
    public double? WritesResumedMs { get; set; }

    /// <summary>Kill until the broker process was started again.</summary>
    public double DownMs { get; set; }

    /// <summary>Restart until the broker was back in the ISR of every partition it replicates.</summary>
    public double? IsrRejoinedMs { get; set; }

    /// <summary>What went wrong in this round (no new leader, writes never resumed); empty when nothing did.</summary>
    public List<string> Problems { get; } = [];

    public override string ToString()
    {
        static string Ms(double? v) => v is { } x ? $"{x / 1000:F1} s" : "never";
        return $"round {Round}: killed broker {KilledBroker} (leader of p{Partition}) at {AckedAtKill} acked; new leader {NewLeader} after {Ms(FailoverMs)}, " +
               $"writes resumed after {Ms(WritesResumedMs)}, down {DownMs / 1000:F1} s, back in every ISR {Ms(IsrRejoinedMs)} after restart" +
               (Problems.Count > 0 ? $"; PROBLEMS: {string.Join("; ", Problems)}" : "");
    }
}
