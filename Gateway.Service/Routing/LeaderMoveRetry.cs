using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Routing;

/// <summary>
/// The one retry the gateway makes on its own for reads (Fetch, ListOffsets): a partition that
/// came back NOT_LEADER_OR_FOLLOWER (the broker no longer leads it, the broker was unreachable, or
/// no leader was known when the request was routed) is asked again, once, on its new leader,
/// if the metadata shows one with a newer leader epoch than the one the request was routed
/// with, after waiting for such metadata at most as long as the caller allows. Reads are
/// idempotent, so a retry can never do harm; Produce never comes here (without idempotent
/// producers a retried append could be written twice).
/// <para>The client's own leader epoch stays authoritative: a partition whose request carries an
/// epoch older than the new leader's is not retried (the new leader would answer
/// FENCED_LEADER_EPOCH and the client must refresh its metadata, and validate its position, as
/// KIP-320 asks, either way). FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH answers are the client's
/// business and are never retried.</para>
/// </summary>
public static class LeaderMoveRetry
{
    /// <summary>A partition whose leader looked gone: where it was routed, and the epoch the client believes in (-1: none).</summary>
    public readonly record struct Candidate<TSlot>(string Topic, int Partition, int RoutedLeader, int RoutedLeaderEpoch, int ClientLeaderEpoch, TSlot Slot);

    /// <summary>Whether a partition's error means "ask the new leader" (nothing else is retried).</summary>
    public static bool IsMoved(short errorCode) => errorCode == (short)ErrorCode.NotLeaderOrFollower;

    /// <summary>The live leader (-1: none) and leader epoch a partition is routed by in <paramref name="metadata"/> (-1, -1 when unknown).</summary>
    public static (int Leader, int LeaderEpoch) RoutedBy(ClusterMetadata metadata, string topic, int partition)
        => metadata.TryGetPartition(topic, partition, out _, out var info)
            ? (metadata.LeaderOf(info)?.BrokerId ?? -1, info.LeaderEpoch)
            : (-1, -1);

    /// <summary>
    /// Waits up to <paramref name="waitMax"/> for metadata in which every candidate has a live
    /// leader newer than its routed one, then returns that metadata and the candidates to
    /// retry in it (those that moved and whose client epoch is not older than the new one).
    /// </summary>
    public static async Task<(ClusterMetadata Metadata, List<Candidate<TSlot>> Retry)> WaitForNewLeadersAsync<TSlot>(
        TopicAdmin admin, IReadOnlyList<Candidate<TSlot>> candidates, TimeSpan waitMax, CancellationToken cancellationToken)
    {
        var metadata = admin.Watcher.Current;
        if (candidates.Count > 0 && waitMax > TimeSpan.Zero && !candidates.All(c => Moved(metadata, c)))
            metadata = await admin.WaitForAsync(m => candidates.All(c => Moved(m, c)), waitMax, cancellationToken).ConfigureAwait(false);
        var retry = new List<Candidate<TSlot>>(candidates.Count);
        foreach (var c in candidates)
        {
            if (!Moved(metadata, c)) continue;
            var epoch = metadata.TopicsByName[c.Topic].Partitions[c.Partition].LeaderEpoch;
            if (c.ClientLeaderEpoch != -1 && c.ClientLeaderEpoch < epoch) continue;
            retry.Add(c);
        }
        return (metadata, retry);
    }

    /// <summary>A live leader with a newer epoch than the routed one (any live leader when none was routed).</summary>
    private static bool Moved<TSlot>(ClusterMetadata metadata, Candidate<TSlot> c)
    {
        if (!metadata.TryGetPartition(c.Topic, c.Partition, out _, out var info)) return false;
        if (metadata.LeaderOf(info) is null) return false;
        return c.RoutedLeader < 0 || info.LeaderEpoch > c.RoutedLeaderEpoch;
    }
}
