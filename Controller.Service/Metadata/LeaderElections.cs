using StreamPlatform.Protos.Grpc.Controller;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Controller.Metadata;

/// <summary>
/// Elections an operator or the controller's balancer asks for (the failure-driven ones are in
/// <see cref="PartitionElections"/>): Kafka's ElectLeaders (ReplicationControlManager.electLeaders)
/// and the automatic preferred-leader balancing (auto.leader.rebalance.enable).
/// </summary>
internal static class LeaderElections
{
    /// <summary>Kafka's ElectionType values.</summary>
    public const int Preferred = 0;
    public const int Unclean = 1;

    public static ElectLeadersResponse Elect(MetadataStage stage, ElectLeadersRequest request)
    {
        var response = new ElectLeadersResponse();
        if (request.ElectionType is not (Preferred or Unclean))
        {
            response.ErrorCode = ErrorCodes.InvalidRequest;
            response.ErrorMessage = $"Unknown election type {request.ElectionType}.";
            return response;
        }
        if (request.AllPartitions)
        {
            // Kafka's null topic_partitions: every partition; those needing no election are left
            // out of the answer (otherwise every call would list the whole cluster).
            foreach (var name in stage.State.Topics.Keys)
            {
                var topicResult = new ElectLeadersTopicResult { Name = name };
                for (var p = 0; p < stage.State.Topics[name].Partitions.Length; p++)
                {
                    var (code, message) = ElectOne(stage, name, p, request.ElectionType);
                    if (code != ErrorCodes.ElectionNotNeeded)
                        topicResult.Partitions.Add(new ElectLeadersPartitionResult { Partition = p, ErrorCode = code, ErrorMessage = message ?? "" });
                }
                if (topicResult.Partitions.Count > 0) response.Topics.Add(topicResult);
            }
            return response;
        }
        foreach (var topic in request.Topics)
        {
            var topicResult = new ElectLeadersTopicResult { Name = topic.Name };
            response.Topics.Add(topicResult);
            foreach (var p in topic.Partitions)
            {
                var (code, message) = ElectOne(stage, topic.Name, p, request.ElectionType);
                topicResult.Partitions.Add(new ElectLeadersPartitionResult { Partition = p, ErrorCode = code, ErrorMessage = message ?? "" });
            }
        }
        return response;
    }

    /// <summary>One partition's election (Kafka's ReplicationControlManager.electLeader); stages the change it makes.</summary>
    private static (short Code, string? Message) ElectOne(MetadataStage stage, string name, int partition, int electionType)
    {
        var state = stage.State;
        if (!state.Topics.TryGetValue(name, out var topic)) return (ErrorCodes.UnknownTopicOrPartition, $"No such topic as {name}");
        if ((uint)partition >= (uint)topic.Partitions.Length) return (ErrorCodes.UnknownTopicOrPartition, $"No such partition as {name}-{partition}");
        var p = topic.Partitions[partition];
        if (electionType == Preferred)
        {
            var preferred = p.Replicas[0];
            if (p.Leader == preferred) return (ErrorCodes.ElectionNotNeeded, "Leader election not needed for topic partition.");
            if (!p.Isr.Contains(preferred) || !state.IsLive(preferred))
                return (ErrorCodes.PreferredLeaderNotAvailable, $"Failed to elect leader for {name}-{partition}: the preferred replica {preferred} is not live and in sync.");
            stage.Add(PartitionElections.Change(topic, p, preferred, p.Isr)!);
            return (ErrorCodes.None, null);
        }
        if (p.Leader >= 0) return (ErrorCodes.ElectionNotNeeded, "Leader election not needed for topic partition.");
        // Kafka's unclean election still prefers an in-sync replica; only without one does an
        // out-of-sync replica lead, alone in the ISR.
        var clean = PartitionElections.CleanLeader(state, p, p.Isr);
        if (clean >= 0)
        {
            stage.Add(PartitionElections.Change(topic, p, clean, PartitionElections.InSync(state, p.Isr, clean))!);
            return (ErrorCodes.None, null);
        }
        var unclean = PartitionElections.UncleanLeader(state, p);
        if (unclean < 0) return (ErrorCodes.EligibleLeadersNotAvailable, $"Failed to elect leader for {name}-{partition}: no replica is live.");
        stage.Add(PartitionElections.Change(topic, p, unclean, [unclean])!);
        return (ErrorCodes.None, null);
    }

    /// <summary>
    /// Automatic preferred-leader balancing (Kafka's checkAndTriggerAutoLeaderRebalance): for each
    /// live broker, the share of the partitions it is the preferred (first) replica of that another
    /// broker leads; above <paramref name="percentage"/> %, each of those partitions where it is in
    /// the ISR moves back to it (leader epoch + 1). Returns how many moved.
    /// </summary>
    public static int Rebalance(MetadataStage stage, int percentage)
    {
        var byPreferred = stage.State.Topics.Values
            .SelectMany(t => t.Partitions.Select(p => (Topic: t.Name, p.Partition, Preferred: p.Replicas[0], Led: p.Leader == p.Replicas[0])))
            .GroupBy(x => x.Preferred)
            .OrderBy(g => g.Key)
            .ToList();
        var moved = 0;
        foreach (var group in byPreferred)
        {
            var broker = group.Key;
            if (!stage.State.IsLive(broker)) continue;
            var total = group.Count();
            var notLed = group.Where(x => !x.Led).ToList();
            // Strictly above the threshold, as Kafka (imbalanceRatio > percentage / 100).
            if (notLed.Count * 100L <= (long)percentage * total) continue;
            foreach (var (name, partition, _, _) in notLed)
            {
                var topic = stage.State.Topics[name];
                var p = topic.Partitions[partition];
                if (!p.Isr.Contains(broker)) continue;
                stage.Add(PartitionElections.Change(topic, p, broker, p.Isr)!);
                moved++;
            }
        }
        return moved;
    }

    /// <summary>
    /// Every leaderless partition of a topic with unclean.leader.election.enable true and a live
    /// replica gets a leader: a live ISR member if any (clean), else the first live replica alone
    /// in the ISR. Returns how many.
    /// </summary>
    public static int ElectUncleanWhereEnabled(MetadataStage stage)
    {
        var elected = 0;
        foreach (var name in stage.State.Topics.Keys)
        {
            if (!PartitionElections.UncleanEnabled(stage.State, stage.State.Topics[name])) continue;
            for (var p = 0; p < stage.State.Topics[name].Partitions.Length; p++)
            {
                if (stage.State.Topics[name].Partitions[p].Leader >= 0) continue;
                if (ElectOne(stage, name, p, Unclean).Code == ErrorCodes.None) elected++;
            }
        }
        return elected;
    }
}
