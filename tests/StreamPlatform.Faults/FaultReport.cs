namespace StreamPlatform.Faults;

/// <summary>Everything one seed's run found; <see cref="Passed"/> is the verdict.</summary>
public sealed class FaultReport
{
    public required int Seed { get; init; }

    public required string Topic { get; init; }

    public List<RoundReport> Rounds { get; } = [];

    public long Sent { get; set; }

    public long DeliveryFailed { get; set; }

    /// <summary>Records neither acknowledged nor failed when the producer was closed.</summary>
    public long Undelivered { get; set; }

    public IReadOnlyDictionary<string, long> Errors { get; set; } = new Dictionary<string, long>();

    public AckCheckResult? Check { get; set; }

    /// <summary>Null when read to the end.</summary>
    public string? ReadError { get; set; }

    /// <summary>"broker 2 not in the ISR of p1 (isr [1,3])"; empty when every restarted broker is back in every ISR.</summary>
    public List<string> IsrNotRestored { get; } = [];

    /// <summary>The final ISR of every partition, as the controller shows it.</summary>
    public string FinalPartitions { get; set; } = "";

    public double ElapsedSeconds { get; set; }

    public IEnumerable<string> Problems()
    {
        foreach (var round in Rounds)
            foreach (var p in round.Problems)
                yield return $"round {round.Round}: {p}";
        if (ReadError is not null)
            yield return "read back: " + ReadError;
        if (Check is null)
            yield return "no check ran";
        else if (!Check.Ok)
            yield return "check: " + Check;
        foreach (var isr in IsrNotRestored)
            yield return "ISR: " + isr;
    }

    public bool Passed => !Problems().Any();

    public string Summary() =>
        $"seed {Seed}: {(Passed ? "PASSED" : "FAILED")} in {ElapsedSeconds:F0} s; sent {Sent}, acked {Check?.Acked}, failed {DeliveryFailed}, undelivered {Undelivered}; " +
        $"lost {Check?.Lost.Count}, offsets reused {Check?.OffsetsReused.Count}, order violations {Check?.OrderViolations.Count}, corrupt {Check?.Corrupt.Count}, " +
        $"duplicates {Check?.Duplicates}; ISR restored {(IsrNotRestored.Count == 0 ? "yes" : "NO")}";
}
