using StreamPlatform.Broker.Storage;

namespace StreamPlatform.Broker.Replication;

/// <summary>
/// A leader's answer for one partition of a follower's fetch (<see cref="Partition.ReadForFollower"/>).
/// <see cref="DivergingEpoch"/>/<see cref="DivergingEndOffset"/> are -1 unless the follower's log
/// diverged; <see cref="Read"/> is null unless records may be returned.
/// </summary>
public readonly record struct FollowerFetchResult(short ErrorCode, long HighWatermark, long LogStartOffset, long LogEndOffset,
    int DivergingEpoch, long DivergingEndOffset, LogReadResult? Read)
{
    public bool Diverging => DivergingEpoch >= 0 || DivergingEndOffset >= 0;

    public static FollowerFetchResult Error(short errorCode, long highWatermark = -1, long logStartOffset = -1, long logEndOffset = -1)
        => new(errorCode, highWatermark, logStartOffset, logEndOffset, -1, -1, null);
}
