namespace StreamPlatform.Broker.Replication;

/// <summary>What this broker is for one partition it hosts (see <see cref="Partition"/> for the transitions).</summary>
public enum ReplicaRole
{
    /// <summary>Not (yet, or no longer) a replica with a role: created, or stopped (topic deleted, moved away).</summary>
    None,
    Leader,
    Follower,
}
