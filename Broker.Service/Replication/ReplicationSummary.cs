namespace StreamPlatform.Broker.Replication;

/// <summary>
/// This broker's replication state for operators (/health details, metrics): partitions it
/// leads whose ISR lacks replicas (under-replicated) or is below min.insync.replicas (offline
/// for acks=all writes), ISR changes the controller accepted, and each led partition's ISR and
/// followers' lag.
/// </summary>
public sealed record ReplicationSummary(int LeaderCount, int FollowerCount, int UnderReplicated, int UnderMinIsr, long IsrShrinks, long IsrExpands,
    IReadOnlyList<PartitionReplicationStatus> Partitions);

/// <summary>One led partition: ISR, high watermark and each follower's lag (records behind the leader's end, ms since last caught up).</summary>
public sealed record PartitionReplicationStatus(string Topic, int Partition, int LeaderEpoch, IReadOnlyList<int> Replicas, IReadOnlyList<int> Isr,
    long HighWatermark, long LogEndOffset, IReadOnlyList<FollowerLag> Followers)
{
    public static PartitionReplicationStatus Of(Partition p, long nowMs)
    {
        var leo = p.Log.LogEndOffset;
        return new PartitionReplicationStatus(p.TopicPartition.Topic, p.TopicPartition.Partition, p.LeaderEpoch, p.Replicas, p.Isr, p.HighWatermark, leo,
            p.Followers.Select(f => new FollowerLag(f.BrokerId, f.LogEndOffset < 0 ? -1 : leo - f.LogEndOffset,
                f.LogEndOffset == leo ? 0 : Math.Max(0, nowMs - f.LastCaughtUpTimeMs))).ToArray());
    }
}

/// <summary>A follower's lag: -1 records when it has not fetched from this leader yet.</summary>
public sealed record FollowerLag(int BrokerId, long LagRecords, long LagMs);
