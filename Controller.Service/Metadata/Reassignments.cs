using System.Collections.Immutable;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Controller;
using StreamPlatform.Protos.Grpc.Metadata;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Controller.Metadata;

/// <summary>
/// Partition reassignment (Kafka's KIP-455 as the KRaft controller runs it). Starting one makes
/// the replica set target + (original - target), with adding = target - original and removing =
/// original - target: the adding replicas create their logs and fetch from the leader like any
/// follower, and the leader adds them to the ISR once caught up (AlterPartition). As soon as every
/// target replica is in the ISR the reassignment completes in the same log entry: the ISR keeps
/// only target replicas, a leader outside the target hands over to the first live in-sync target
/// replica, the leader epoch is bumped (the removed replicas are fenced), and the replica set
/// becomes the target. A cancel restores the original replicas (the added ones leave the ISR).
/// </summary>
internal static class Reassignments
{
    public static AlterReassignmentsResponse Alter(MetadataStage stage, AlterReassignmentsRequest request)
    {
        var response = new AlterReassignmentsResponse();
        foreach (var t in request.Topics)
        {
            var topicResult = new ReassignTopicResult { Name = t.Name };
            response.Topics.Add(topicResult);
            foreach (var item in t.Partitions)
            {
                var (code, message) = AlterOne(stage, t.Name, item);
                topicResult.Partitions.Add(new ReassignPartitionResult { Partition = item.Partition, ErrorCode = code, ErrorMessage = message ?? "" });
            }
        }
        return response;
    }

    private static (short Code, string? Message) AlterOne(MetadataStage stage, string name, ReassignPartition item)
    {
        if (!stage.State.Topics.TryGetValue(name, out var topic) || (uint)item.Partition >= (uint)topic.Partitions.Length)
            return (ErrorCodes.UnknownTopicOrPartition, $"Unable to find partition {name}-{item.Partition}.");
        var p = topic.Partitions[item.Partition];
        var original = Original(p);
        if (item.Replicas is null)
        {
            if (!p.Reassigning) return (ErrorCodes.NoReassignmentInProgress, $"No ongoing reassignment for {name}-{item.Partition}.");
            Finish(stage, topic.Name, item.Partition, original);
            return (ErrorCodes.None, null);
        }
        var target = item.Replicas.BrokerIds.ToImmutableArray();
        if (target.IsEmpty) return (ErrorCodes.InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list.");
        if (target.Distinct().Count() != target.Length) return (ErrorCodes.InvalidReplicaAssignment, "The manual partition assignment includes a broker more than once.");
        foreach (var b in target)
            if (!stage.State.Brokers.ContainsKey(b))
                return (ErrorCodes.InvalidReplicaAssignment, $"The manual partition assignment includes broker {b}, but no broker with that id is registered.");
        if (target.SequenceEqual(original))
        {
            // Back to where it started: a cancel (or nothing to do).
            if (p.Reassigning) Finish(stage, topic.Name, item.Partition, original);
            return (ErrorCodes.None, null);
        }
        var adding = target.Where(b => !original.Contains(b)).ToImmutableArray();
        var removing = original.Where(b => !target.Contains(b)).ToImmutableArray();
        // The ISR may hold replicas added by an earlier reassignment that this one drops: they leave first.
        var replicas = target.AddRange(removing);
        var isr = p.Isr.Where(replicas.Contains).ToImmutableArray();
        if (isr.IsEmpty) return (ErrorCodes.InvalidReplicaAssignment, $"Partition {name}-{item.Partition}: no in-sync replica would remain.");
        // Replicas of the replaced reassignment leave at once: a new leader epoch fences them.
        var dropped = p.Replicas.Any(b => !replicas.Contains(b));
        if (!isr.SequenceEqual(p.Isr) || dropped)
        {
            var leader = replicas.Contains(p.Leader) ? p.Leader : PartitionElections.CleanLeader(stage.State, p, isr);
            Stage(stage, PartitionElections.Change(topic, p, leader, isr, bumpLeaderEpoch: dropped));
        }
        var current = stage.State.Topics[name].Partitions[item.Partition];
        stage.Add(ChangeReplicas(topic, current, replicas, adding, removing));
        MaybeComplete(stage, name, item.Partition);
        return (ErrorCodes.None, null);
    }

    /// <summary>The replicas before the reassignment in progress (all of them when none is).</summary>
    private static ImmutableArray<int> Original(PartitionState p) => p.Replicas.Where(b => !p.Adding.Contains(b)).ToImmutableArray();

    /// <summary>
    /// Completes the partition's reassignment when every target replica is in the ISR (called
    /// after every ISR change and at the start of a reassignment).
    /// </summary>
    public static void MaybeComplete(MetadataStage stage, string topicName, int partition)
    {
        var p = stage.State.Topics[topicName].Partitions[partition];
        if (!p.Reassigning) return;
        var target = p.Replicas.Where(b => !p.Removing.Contains(b)).ToImmutableArray();
        if (!target.All(p.Isr.Contains)) return;
        Finish(stage, topicName, partition, target);
    }

    /// <summary>
    /// Ends the reassignment with <paramref name="replicas"/> as the replica set (the target on
    /// completion, the original on cancel): ISR narrowed to them, the leader kept if it is one of
    /// them, else the first live in-sync one (else -1), leader epoch + 1 so replicas that left are
    /// fenced; then the replica sets.
    /// </summary>
    private static void Finish(MetadataStage stage, string topicName, int partition, ImmutableArray<int> replicas)
    {
        var topic = stage.State.Topics[topicName];
        var p = topic.Partitions[partition];
        var isr = p.Isr.Where(replicas.Contains).ToImmutableArray();
        int leader;
        if (isr.IsEmpty)
        {
            // Only replicas that are leaving are in sync (a cancel after the original replicas
            // fell out of the ISR): what they hold beyond the original ones is lost, as in Kafka's
            // revert, which elects uncleanly then.
            leader = replicas.FirstOrDefault(stage.State.IsLive, -1);
            isr = [leader >= 0 ? leader : replicas[0]];
        }
        else
        {
            leader = replicas.Contains(p.Leader) && stage.State.IsLive(p.Leader) ? p.Leader
                : replicas.FirstOrDefault(b => isr.Contains(b) && stage.State.IsLive(b), -1);
            if (leader >= 0) isr = PartitionElections.InSync(stage.State, isr, leader);
        }
        Stage(stage, PartitionElections.Change(topic, p, leader, isr, bumpLeaderEpoch: true));
        var current = stage.State.Topics[topicName].Partitions[partition];
        stage.Add(ChangeReplicas(topic, current, replicas, [], []));
    }

    private static void Stage(MetadataStage stage, MetadataRecord? record)
    {
        if (record is not null) stage.Add(record);
    }

    private static MetadataRecord ChangeReplicas(TopicState topic, PartitionState p, ImmutableArray<int> replicas, ImmutableArray<int> adding, ImmutableArray<int> removing)
    {
        var record = new ChangeReplicasRecord { TopicId = TopicIds.ToByteString(topic.TopicId), Partition = p.Partition, LeaderEpoch = p.LeaderEpoch };
        record.Replicas.AddRange(replicas);
        record.AddingReplicas.AddRange(adding);
        record.RemovingReplicas.AddRange(removing);
        return new MetadataRecord { ChangeReplicas = record };
    }

    /// <summary>Partitions with a reassignment in progress: every one, or among those named (unknown ones are left out, as Kafka).</summary>
    public static ListReassignmentsResponse List(MetadataState state, ListReassignmentsRequest request)
    {
        var response = new ListReassignmentsResponse();
        void Add(TopicState topic, PartitionState p)
        {
            if (!p.Reassigning) return;
            var r = new OngoingReassignment { Topic = topic.Name, Partition = p.Partition };
            r.Replicas.AddRange(p.Replicas);
            r.AddingReplicas.AddRange(p.Adding);
            r.RemovingReplicas.AddRange(p.Removing);
            response.Reassignments.Add(r);
        }
        if (request.AllPartitions)
        {
            foreach (var topic in state.Topics.Values)
                foreach (var p in topic.Partitions)
                    Add(topic, p);
            return response;
        }
        foreach (var query in request.Topics)
        {
            if (!state.Topics.TryGetValue(query.Name, out var topic)) continue;
            foreach (var partition in query.Partitions.Distinct())
                if ((uint)partition < (uint)topic.Partitions.Length) Add(topic, topic.Partitions[partition]);
        }
        return response;
    }
}
