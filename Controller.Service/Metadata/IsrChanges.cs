using System.Collections.Immutable;
using Microsoft.Extensions.Logging;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Controller;
using StreamPlatform.Protos.Grpc.Metadata;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Controller.Metadata;

/// <summary>
/// AlterPartition's per-partition decision (Kafka's ReplicationControlManager.validateAlterPartitionData):
/// checks a leader's proposed ISR against the current state, in Kafka's order, and returns the
/// ChangeIsr record an accepted change needs (none when the ISR is unchanged).
/// </summary>
public static class IsrChanges
{
    public readonly record struct Decision(short ErrorCode, string? Message, MetadataRecord? Record);

    /// <summary>
    /// Decides every item of a request (its broker epoch already checked) and stages the accepted
    /// changes; an ISR that grew may complete a reassignment (<see cref="Reassignments.MaybeComplete"/>).
    /// </summary>
    internal static AlterPartitionResponse Alter(MetadataStage stage, AlterPartitionRequest request, ILogger logger)
    {
        var response = new AlterPartitionResponse();
        foreach (var t in request.Topics)
        {
            var topicResult = new AlterPartitionTopicResult { TopicId = t.TopicId };
            response.Topics.Add(topicResult);
            foreach (var item in t.Partitions)
            {
                var result = new AlterPartitionItemResult { Partition = item.Partition };
                topicResult.Partitions.Add(result);
                if (t.TopicId.Length != 16 || !stage.State.TryGetTopic(TopicIds.ToGuid(t.TopicId), out var topic))
                {
                    result.ErrorCode = ErrorCodes.UnknownTopicId;
                    continue;
                }
                var decision = Decide(stage.State, topic, request.BrokerId, item);
                result.ErrorCode = decision.ErrorCode;
                if (decision.ErrorCode != ErrorCodes.None)
                    logger.LogInformation("AlterPartition from broker {BrokerId} refused: {Reason}", request.BrokerId, decision.Message);
                else if (decision.Record is { } record)
                {
                    stage.Add(record);
                    Reassignments.MaybeComplete(stage, topic.Name, item.Partition);
                }
            }
        }
        return response;
    }

    /// <summary>Every result, accepted or not, tells the leader the partition's state in <paramref name="state"/> (the committed one).</summary>
    internal static void AnswerStates(MetadataState state, AlterPartitionResponse response)
    {
        foreach (var topicResult in response.Topics)
        {
            if (topicResult.TopicId.Length != 16 || !state.TryGetTopic(TopicIds.ToGuid(topicResult.TopicId), out var topic)) continue;
            foreach (var result in topicResult.Partitions)
            {
                if ((uint)result.Partition >= (uint)topic.Partitions.Length) continue;
                var p = topic.Partitions[result.Partition];
                result.LeaderId = p.Leader;
                result.LeaderEpoch = p.LeaderEpoch;
                result.PartitionEpoch = p.PartitionEpoch;
                result.Isr.AddRange(p.Isr);
            }
        }
    }

    public static Decision Decide(MetadataState state, TopicState topic, int brokerId, AlterPartitionItem item)
    {
        if ((uint)item.Partition >= (uint)topic.Partitions.Length)
            return Refuse(ErrorCodes.UnknownTopicOrPartition, $"Topic '{topic.Name}' has no partition {item.Partition}.");
        var p = topic.Partitions[item.Partition];
        var name = $"{topic.Name}-{p.Partition}";
        if (p.Leader != brokerId)
            return Refuse(ErrorCodes.NotLeaderOrFollower, $"Broker {brokerId} does not lead {name} (leader {p.Leader}).");
        if (item.LeaderEpoch != p.LeaderEpoch)
            return Refuse(ErrorCodes.FencedLeaderEpoch, $"{name}: leader epoch {item.LeaderEpoch} is not the current {p.LeaderEpoch}.");
        if (item.PartitionEpoch != p.PartitionEpoch)
            return Refuse(ErrorCodes.InvalidUpdateVersion, $"{name}: partition epoch {item.PartitionEpoch} is not the current {p.PartitionEpoch}.");
        var isr = item.NewIsr.ToImmutableArray();
        if (isr.Distinct().Count() != isr.Length)
            return Refuse(ErrorCodes.InvalidRequest, $"{name}: the new ISR lists a broker twice.");
        if (!isr.Contains(p.Leader))
            return Refuse(ErrorCodes.InvalidRequest, $"{name}: the new ISR lacks the leader {p.Leader}.");
        foreach (var b in isr)
        {
            if (!p.Replicas.Contains(b))
                return Refuse(ErrorCodes.IneligibleReplica, $"{name}: broker {b} is not a replica.");
            // A fenced broker is not fetching; in the ISR it would hold the high watermark back
            // (and could be elected although it may lack records).
            if (!state.IsLive(b))
                return Refuse(ErrorCodes.IneligibleReplica, $"{name}: broker {b} is fenced.");
        }
        // Same members: nothing to record (the order of the ISR carries no meaning).
        if (isr.Length == p.Isr.Length && isr.All(p.Isr.Contains)) return new Decision(ErrorCodes.None, null, null);
        return new Decision(ErrorCodes.None, null, PartitionElections.Change(topic, p, p.Leader, isr));
    }

    private static Decision Refuse(short code, string message) => new(code, message, null);
}
