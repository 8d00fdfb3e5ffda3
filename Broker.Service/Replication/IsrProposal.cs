namespace StreamPlatform.Broker.Replication;

/// <summary>
/// An ISR change a leader asked the controller for and has no answer to yet (Kafka's
/// PendingExpandIsr / PendingShrinkIsr). While it exists the partition's maximal ISR is the
/// committed ISR united with <see cref="NewIsr"/>: an added follower counts for the high
/// watermark at once, a removed one still counts until the controller committed its removal.
/// </summary>
/// <param name="LeaderEpoch">The leader epoch the proposal was made in.</param>
/// <param name="PartitionEpoch">The partition epoch of the committed state it changes.</param>
/// <param name="NewIsr">The whole proposed ISR (contains the leader).</param>
public sealed record IsrProposal(int LeaderEpoch, int PartitionEpoch, IReadOnlyList<int> NewIsr)
{
    /// <summary>Whether it is on its way to the controller (one request in flight per partition at most).</summary>
    internal bool Sent { get; set; }
}
