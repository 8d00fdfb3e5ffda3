namespace StreamPlatform.Faults;

/// <summary>
/// What one run of the fault scenario does. Every choice the run makes at random (which
/// partition's leader to kill, how long to wait) comes from <see cref="Seed"/>, so a failing
/// seed can be run again.
/// </summary>
public sealed record FaultScenarioOptions
{
    public const int RoundsMax = 1000;
    public const int PartitionsMax = 1000;
    public const int RecordBytesMin = 32; // room for "seed/seq/" before the filler
    public const int RecordBytesMax = 64 * 1024;
    public const int RecordsPerSecondMax = 100_000;

    /// <summary>Seeds the run's choices; printed so a run can be repeated.</summary>
    public required int Seed { get; init; }

    /// <summary>Kill / restart rounds: each kills -9 the broker leading a randomly chosen partition.</summary>
    public int Rounds { get; init; } = 3;

    public int Partitions { get; init; } = 6;

    public short ReplicationFactor { get; init; } = 3;

    public int MinInsyncReplicas { get; init; } = 2;

    /// <summary>
    /// The producer's fixed rate. Bounded on purpose: every acknowledged record is remembered
    /// and read back, and the kills must happen under load, not behind a saturated client queue.
    /// </summary>
    public int RecordsPerSecond { get; init; } = 2_000;

    public int RecordBytes { get; init; } = 100;

    /// <summary>
    /// The shortest time from one round's start to the next one's (0: back to back). A tool run
    /// of a given --duration spreads its rounds this way; the run also produces until this
    /// much time has passed after the last round started.
    /// </summary>
    public TimeSpan RoundSpacing { get; init; } = TimeSpan.Zero;

    /// <summary>Produce this long (seeded within the range) before each kill, so the kill hits a partition under load.</summary>
    public TimeSpan LoadBeforeKillMin { get; init; } = TimeSpan.FromMilliseconds(1_000);
    public TimeSpan LoadBeforeKillMax { get; init; } = TimeSpan.FromMilliseconds(3_000);

    /// <summary>Once the partition takes writes from its new leader, keep the killed broker down this much longer (seeded).</summary>
    public TimeSpan ExtraDownMin { get; init; } = TimeSpan.Zero;
    public TimeSpan ExtraDownMax { get; init; } = TimeSpan.FromMilliseconds(2_000);

    /// <summary>How long the controller may take to elect a new leader from the ISR after a kill (session timeout + election).</summary>
    public TimeSpan FailoverTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the partition may take to acknowledge a write under its new leader.</summary>
    public TimeSpan WritesResumeTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a restarted broker may take to be back in the ISR of every partition it replicates.</summary>
    public TimeSpan IsrRestoreTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long reading every partition back may take.</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Fails fast on an option outside its bound instead of a run that means nothing.</summary>
    public void Validate()
    {
        if (Rounds is < 1 or > RoundsMax) throw new ArgumentOutOfRangeException(nameof(Rounds), Rounds, $"1..{RoundsMax}");
        if (Partitions is < 1 or > PartitionsMax) throw new ArgumentOutOfRangeException(nameof(Partitions), Partitions, $"1..{PartitionsMax}");
        if (ReplicationFactor < 2) throw new ArgumentOutOfRangeException(nameof(ReplicationFactor), ReplicationFactor, "a fault test needs replicas: at least 2");
        if (MinInsyncReplicas < 1 || MinInsyncReplicas > ReplicationFactor)
            throw new ArgumentOutOfRangeException(nameof(MinInsyncReplicas), MinInsyncReplicas, $"1..{ReplicationFactor}");
        if (RecordsPerSecond is < 1 or > RecordsPerSecondMax)
            throw new ArgumentOutOfRangeException(nameof(RecordsPerSecond), RecordsPerSecond, $"1..{RecordsPerSecondMax}");
        if (RecordBytes is < RecordBytesMin or > RecordBytesMax)
            throw new ArgumentOutOfRangeException(nameof(RecordBytes), RecordBytes, $"{RecordBytesMin}..{RecordBytesMax}");
        if (LoadBeforeKillMax < LoadBeforeKillMin || ExtraDownMax < ExtraDownMin || RoundSpacing < TimeSpan.Zero)
            throw new ArgumentException("A range's maximum is below its minimum, or the round spacing is negative.");
    }
}
