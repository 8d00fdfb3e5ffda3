using System.Collections.Immutable;
using StreamPlatform.Protos.Configs;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Metadata;

namespace StreamPlatform.Controller.Metadata;

/// <summary>
/// The controller's leader and ISR rules (Kafka's PartitionChangeBuilder and
/// ReplicationControlManager, KRaft): pure functions of the metadata state that return the record
/// a partition needs, or null when it needs none. The controller stages what they return.
///
/// Invariants kept: the leader is a live ISR member or -1; the ISR is never empty (the last
/// member stays when it is fenced, so the partition can lead again when that broker returns);
/// a clean election picks only an ISR member (it holds every acknowledged record); only
/// unclean.leader.election.enable lets an out-of-sync replica lead, with ISR = {it}.
/// </summary>
public static class PartitionElections
{
    public const string UncleanConfig = "unclean.leader.election.enable";

    /// <summary>The topic's unclean.leader.election.enable, else the cluster-wide broker value, else false.</summary>
    public static bool UncleanEnabled(MetadataState state, TopicState topic)
    {
        var value = topic.Configs.TryGetValue(UncleanConfig, out var own) ? own
            : state.BrokerConfigs.TryGetValue(UncleanConfig, out var broker) ? broker
            : ConfigCatalog.Topic[UncleanConfig].DefaultValue;
        return string.Equals(value, "true", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// The record that gives <paramref name="p"/> <paramref name="newLeader"/> and
    /// <paramref name="newIsr"/>: ChangePartitionLeader (leader epoch + 1) when the leader changes
    /// or <paramref name="bumpLeaderEpoch"/>; ChangeIsr (same leader epoch) when only the ISR
    /// changes; null when nothing changes.
    /// </summary>
    public static MetadataRecord? Change(TopicState topic, PartitionState p, int newLeader, ImmutableArray<int> newIsr, bool bumpLeaderEpoch = false)
    {
        var isrChanged = !newIsr.SequenceEqual(p.Isr);
        if (newLeader != p.Leader || bumpLeaderEpoch)
        {
            var change = new ChangePartitionLeaderRecord
            {
                TopicId = TopicIds.ToByteString(topic.TopicId),
                Partition = p.Partition,
                NewLeader = newLeader,
                NewLeaderEpoch = p.LeaderEpoch + 1,
            };
            if (isrChanged) change.NewIsr = new ReplicaSet { BrokerIds = { newIsr } };
            return new MetadataRecord { ChangePartitionLeader = change };
        }
        if (!isrChanged) return null;
        return new MetadataRecord
        {
            ChangeIsr = new ChangeIsrRecord
            {
                TopicId = TopicIds.ToByteString(topic.TopicId),
                Partition = p.Partition,
                LeaderEpoch = p.LeaderEpoch,
                NewIsr = new ReplicaSet { BrokerIds = { newIsr } },
            },
        };
    }

    /// <summary>
    /// Clean election: the first replica, in replica order (so the preferred replica wins when it
    /// can), that is in <paramref name="isr"/> and live; else -1.
    /// </summary>
    public static int CleanLeader(MetadataState state, PartitionState p, ImmutableArray<int> isr)
        => p.Replicas.FirstOrDefault(b => isr.Contains(b) && state.IsLive(b), -1);

    /// <summary>Unclean election: the first live replica in replica order, else -1.</summary>
    public static int UncleanLeader(MetadataState state, PartitionState p)
        => p.Replicas.FirstOrDefault(state.IsLive, -1);

    /// <summary>
    /// Broker <paramref name="fenced"/> (already fenced in <paramref name="state"/>) leaves the
    /// partition: out of the ISR unless it is the last member; if it led, the first live ISR
    /// member in replica order leads, else (unclean election enabled) the first live replica with
    /// ISR = {it}, else nobody (-1) and the ISR keeps its last member(s).
    /// </summary>
    public static MetadataRecord? OnFence(MetadataState state, TopicState topic, PartitionState p, int fenced)
    {
        if (p.Leader != fenced && !p.Isr.Contains(fenced)) return null;
        var isr = p.Isr.Remove(fenced);
        if (p.Leader != fenced)
            return isr.IsEmpty ? null : Change(topic, p, p.Leader, isr);
        var leader = CleanLeader(state, p, isr);
        if (leader >= 0) return Change(topic, p, leader, InSync(state, isr, leader));
        if (UncleanEnabled(state, topic) && UncleanLeader(state, p) is var unclean and >= 0)
            return Change(topic, p, unclean, [unclean]);
        return Change(topic, p, -1, isr.IsEmpty ? [fenced] : isr);
    }

    /// <summary>
    /// Broker <paramref name="broker"/> has just registered (a new process, or the same one after
    /// its session expired):
    /// - a partition it leads (a restart within the session) keeps it as leader with a new leader
    ///   epoch, which fences whatever the previous incarnation still had in flight;
    /// - a leaderless partition whose ISR holds it gets it as leader (it holds the acknowledged
    ///   records), or, with unclean election enabled, any leaderless partition it is a replica of
    ///   (ISR = {it});
    /// - a partition where it is an ISR follower (only possible after a restart within the
    ///   session: fencing removes followers) loses it from the ISR: the leader's view of its log
    ///   belonged to the previous incarnation (KIP-903's concern), so the leader adds it back with
    ///   AlterPartition once the new incarnation has caught up.
    /// The controller never adds a returning broker to an ISR otherwise.
    /// </summary>
    public static MetadataRecord? OnRegister(MetadataState state, TopicState topic, PartitionState p, int broker)
    {
        if (p.Leader == broker) return Change(topic, p, broker, p.Isr, bumpLeaderEpoch: true);
        if (p.Leader == -1)
        {
            if (p.Isr.Contains(broker)) return Change(topic, p, broker, InSync(state, p.Isr, broker));
            if (p.Replicas.Contains(broker) && UncleanEnabled(state, topic)) return Change(topic, p, broker, [broker]);
            return null;
        }
        return p.Isr.Contains(broker) ? Change(topic, p, p.Leader, p.Isr.Remove(broker)) : null;
    }

    /// <summary>
    /// The ISR members still live, and the new leader: a fenced member left in the ISR (it was
    /// the last one when fenced) is dropped once another member leads.
    /// </summary>
    public static ImmutableArray<int> InSync(MetadataState state, ImmutableArray<int> isr, int leader)
        => isr.Where(b => b == leader || state.IsLive(b)).ToImmutableArray();
}
