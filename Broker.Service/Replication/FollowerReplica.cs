namespace StreamPlatform.Broker.Replication;

/// <summary>
/// What a leader knows of one follower (Kafka's Replica): its log end offset (the offset of its
/// last fetch) and when it was last caught up. Guarded by its <see cref="Partition"/>: updated
/// under the partition's lock for this replica (<see cref="Sync"/>), read by the high-watermark
/// computation with atomic reads.
/// </summary>
public sealed class FollowerReplica(int brokerId)
{
    private long _logEndOffset = -1;

    public int BrokerId { get; } = brokerId;
    /// <summary>Serializes updates of this replica's state (two streams of one follower may overlap after a reconnect).</summary>
    internal object Sync { get; } = new();
    /// <summary>-1 until the follower fetched under the current leader.</summary>
    public long LogEndOffset => Interlocked.Read(ref _logEndOffset);
    /// <summary>The leader's log end offset at the follower's previous fetch.</summary>
    public long LastFetchLeaderLogEndOffset { get; private set; } = -1;
    public long LastFetchTimeMs { get; private set; } = -1;
    /// <summary>
    /// The last time the follower was known to have everything the leader had: its fetch offset
    /// reached the leader's end (at that fetch), or the end the leader had at its previous fetch.
    /// </summary>
    public long LastCaughtUpTimeMs { get; private set; }
    /// <summary>The broker epoch of the follower's last fetch.</summary>
    public long BrokerEpoch { get; private set; } = -1;

    /// <summary>Kafka's Replica.updateFetchStateOrThrow.</summary>
    internal void UpdateFetchState(long fetchOffset, long fetchTimeMs, long leaderEndOffset, long brokerEpoch)
    {
        if (fetchOffset >= leaderEndOffset) LastCaughtUpTimeMs = Math.Max(LastCaughtUpTimeMs, fetchTimeMs);
        else if (fetchOffset >= LastFetchLeaderLogEndOffset) LastCaughtUpTimeMs = Math.Max(LastCaughtUpTimeMs, LastFetchTimeMs);
        Interlocked.Exchange(ref _logEndOffset, fetchOffset);
        LastFetchLeaderLogEndOffset = leaderEndOffset;
        LastFetchTimeMs = fetchTimeMs;
        BrokerEpoch = brokerEpoch;
    }

    /// <summary>
    /// On becoming leader (Kafka's resetReplicaState): the follower's offset is unknown until it
    /// fetches; an in-sync follower counts as caught up now, so it gets replica.lag.time.max.ms to
    /// fetch from the new leader before it is dropped.
    /// </summary>
    internal void Reset(long nowMs, long leaderEndOffset, bool inSync)
    {
        Interlocked.Exchange(ref _logEndOffset, -1);
        LastFetchLeaderLogEndOffset = inSync ? leaderEndOffset : -1;
        LastFetchTimeMs = inSync ? nowMs : -1;
        LastCaughtUpTimeMs = inSync ? nowMs : 0;
        BrokerEpoch = -1;
    }

    /// <summary>Kafka's Replica.isCaughtUp: at the leader's end, or caught up within the last lag time.</summary>
    public bool IsCaughtUp(long leaderEndOffset, long nowMs, long replicaLagTimeMaxMs)
        => LogEndOffset == leaderEndOffset || nowMs - LastCaughtUpTimeMs <= replicaLagTimeMaxMs;
}
