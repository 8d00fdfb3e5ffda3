using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Controller;
using StreamPlatform.Protos.Grpc.Metadata;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Controller.Metadata;

/// <summary>
/// CreatePartitions (Kafka's ReplicationControlManager.createPartitions): validates each topic's
/// request against the staged state and stages one CreatePartitions record per topic. New
/// partitions are created like a new topic's: every live replica in the ISR (all are empty), the
/// first live replica leading.
/// </summary>
internal static class PartitionCreation
{
    /// <summary>Results in request order; <paramref name="staged"/> receives the results whose records were staged.</summary>
    public static CreatePartitionsResponse Create(MetadataStage stage, CreatePartitionsRequest request, ControllerOptions options, Random random, List<CreatePartitionsTopicResult> staged)
    {
        var response = new CreatePartitionsResponse();
        var counts = request.Topics.GroupBy(t => t.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var partitionsStaged = 0L;
        foreach (var t in request.Topics)
        {
            var result = new CreatePartitionsTopicResult { Name = t.Name };
            response.Results.Add(result);
            try
            {
                if (counts[t.Name] > 1) throw new MetadataStateException(ErrorCodes.InvalidRequest, "Duplicate topic name.");
                var record = Build(stage.State, t, options, random);
                partitionsStaged += record.Partitions.Count;
                // Bounds the work and the log entry of one call, as CreateTopics.
                if (partitionsStaged > options.MaxPartitionsPerRequest)
                    throw new MetadataStateException(ErrorCodes.ThrottlingQuotaExceeded,
                        $"The request creates more than {options.MaxPartitionsPerRequest} partitions; create the rest in another request.");
                stage.Add(new MetadataRecord { CreatePartitions = record });
                staged.Add(result);
            }
            catch (MetadataStateException ex)
            {
                result.ErrorCode = ex.ErrorCode;
                result.ErrorMessage = ex.Message;
            }
        }
        return response;
    }

    private static CreatePartitionsRecord Build(MetadataState state, CreatePartitionsTopic request, ControllerOptions options, Random random)
    {
        if (!state.Topics.TryGetValue(request.Name, out var topic))
            throw new MetadataStateException(ErrorCodes.UnknownTopicOrPartition, $"The topic '{request.Name}' does not exist.");
        // __consumer_offsets is hashed over its partition count: more partitions would move groups
        // away from their committed offsets. Refused as DeleteTopics refuses internal topics.
        if (topic.Internal)
            throw new MetadataStateException(ErrorCodes.TopicAuthorizationFailed, $"Topic {topic.Name} is an internal topic: its partitions cannot be added to.");
        var current = topic.Partitions.Length;
        if (request.Count == current)
            throw new MetadataStateException(ErrorCodes.InvalidPartitions, $"Topic already has {current} partition(s).");
        if (request.Count < current)
            throw new MetadataStateException(ErrorCodes.InvalidPartitions, $"The topic {topic.Name} currently has {current} partition(s); {request.Count} would not be an increase.");
        if (request.Count > options.MaxPartitionsPerTopic)
            throw new MetadataStateException(ErrorCodes.InvalidPartitions, $"Number of partitions {request.Count} is above the limit of {options.MaxPartitionsPerTopic}.");
        var additional = request.Count - current;
        var rf = topic.ReplicationFactor;
        var live = state.Brokers.Values.Where(b => !b.Fenced).Select(b => b.BrokerId).ToArray();
        int[][] assignment;
        if (request.Assignments.Count > 0)
        {
            if (request.Assignments.Count != additional)
                throw new MetadataStateException(ErrorCodes.InvalidReplicaAssignment,
                    $"Attempted to add {additional} additional partition(s), but only {request.Assignments.Count} assignment(s) were specified.");
            assignment = new int[additional][];
            for (var i = 0; i < additional; i++)
            {
                var replicas = request.Assignments[i].BrokerIds.ToArray();
                var partition = current + i;
                if (replicas.Length == 0)
                    throw new MetadataStateException(ErrorCodes.InvalidReplicaAssignment, $"The manual partition assignment of partition {partition} is an empty replica list.");
                if (replicas.Length != rf)
                    throw new MetadataStateException(ErrorCodes.InvalidReplicaAssignment,
                        $"The manual partition assignment includes a partition with {replicas.Length} replica(s), but this is not consistent with previous partitions, which have {rf} replica(s).");
                if (replicas.Distinct().Count() != replicas.Length)
                    throw new MetadataStateException(ErrorCodes.InvalidReplicaAssignment, $"The manual partition assignment of partition {partition} lists a broker more than once.");
                foreach (var b in replicas)
                    if (!state.Brokers.ContainsKey(b))
                        throw new MetadataStateException(ErrorCodes.InvalidReplicaAssignment, $"The manual partition assignment includes broker {b}, but no broker with that id is registered.");
                if (!replicas.Any(state.IsLive))
                    throw new MetadataStateException(ErrorCodes.InvalidReplicaAssignment, $"All brokers specified in the manual partition assignment for partition {partition} are fenced.");
                assignment[i] = replicas;
            }
        }
        else
        {
            if (rf > live.Length)
                throw new MetadataStateException(ErrorCodes.InvalidReplicationFactor,
                    $"Unable to replicate the partition {rf} time(s): only {live.Length} broker(s) are live.");
            assignment = ReplicaAssigner.Assign(live, additional, rf, random);
        }
        var record = new CreatePartitionsRecord { TopicId = TopicIds.ToByteString(topic.TopicId) };
        for (var i = 0; i < additional; i++)
        {
            var replicas = assignment[i];
            var pr = new PartitionRecord { Partition = current + i, Leader = replicas.First(state.IsLive), LeaderEpoch = 0 };
            pr.Replicas.AddRange(replicas);
            pr.Isr.AddRange(replicas.Where(state.IsLive));
            record.Partitions.Add(pr);
        }
        return record;
    }
}
