namespace StreamPlatform.Faults;

/// <summary>A record the producer got a delivery report without error for: where the cluster said it is.</summary>
public readonly record struct AckedRecord(long Seq, int Partition, long Offset);

/// <summary>
/// A record read back: where it was, which sequence number its key names (-1: not a key of
/// ours), and whether its value is exactly the one that sequence number was written with.
/// </summary>
public readonly record struct ConsumedRecord(int Partition, long Offset, long Seq, bool ValueMatches);
