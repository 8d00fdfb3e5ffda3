namespace StreamPlatform.Broker.Replication;

/// <summary>What <see cref="Partition.MakeLeader"/> / <see cref="Partition.MakeFollower"/> did with a state.</summary>
public enum TransitionResult
{
    /// <summary>Refused: its leader epoch (or, with the same epoch, its partition epoch) is older than the partition's.</summary>
    Stale,
    /// <summary>Nothing new: same epochs.</summary>
    Unchanged,
    /// <summary>Same leader and leader epoch, newer partition epoch: replicas / ISR updated.</summary>
    Updated,
    /// <summary>A new role, leader or leader epoch.</summary>
    Changed,
}
