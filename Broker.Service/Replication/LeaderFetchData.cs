namespace StreamPlatform.Broker.Replication;

/// <summary>
/// One partition of a leader's answer as the follower applies it (<see cref="Partition.ApplyFromLeader"/>):
/// the fields of ReplicaFetchPartitionResult, with the records as the bytes received.
/// </summary>
public readonly record struct LeaderFetchData(short ErrorCode, long HighWatermark, long LogStartOffset, long LogEndOffset,
    int DivergingEpoch, long DivergingEndOffset, ReadOnlyMemory<byte> Records)
{
    public bool Diverging => DivergingEpoch >= 0 || DivergingEndOffset >= 0;
}
