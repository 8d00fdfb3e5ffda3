using StreamPlatform.Broker.Replication;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Broker.Transactions;

/// <summary>
/// DescribeProducers (API 61; Kafka's ReplicaManager.activeProducerState) on the partitions this
/// broker leads: each producer's id, epoch, last sequence (-1 when none in its epoch), last
/// timestamp, coordinator epoch and the first offset of its open transaction (-1: none).
/// Partitions not led here answer NOT_LEADER_OR_FOLLOWER, unknown ones
/// UNKNOWN_TOPIC_OR_PARTITION (the gateway splits a request by leader and merges).
/// </summary>
public static class ProducerDescriber
{
    public static DescribeProducersResponse Describe(ReplicaManager replicas, DescribeProducersRequest request)
    {
        var response = new DescribeProducersResponse();
        foreach (var topic in request.Topics)
        {
            var topicResponse = new DescribeProducersResponse.TopicResponse { Name = topic.Name };
            response.Topics.Add(topicResponse);
            foreach (var index in topic.PartitionIndexes)
            {
                var partitionResponse = new DescribeProducersResponse.PartitionResponse { PartitionIndex = index };
                topicResponse.Partitions.Add(partitionResponse);
                var (partition, error) = replicas.LeaderPartition(topic.Name, index, -1);
                if (partition is null)
                {
                    partitionResponse.ErrorCode = error;
                    continue;
                }
                foreach (var e in partition.Log.ProducerState.ActiveProducers().OrderBy(e => e.ProducerId))
                {
                    partitionResponse.ActiveProducers.Add(new DescribeProducersResponse.ProducerState
                    {
                        ProducerId = e.ProducerId,
                        ProducerEpoch = e.Epoch,
                        LastSequence = e.LastSeq,
                        LastTimestamp = e.LastTimestampMs,
                        CoordinatorEpoch = e.CoordinatorEpoch,
                        CurrentTxnStartOffset = e.CurrentTxnFirstOffset,
                    });
                }
            }
        }
        return response;
    }
}
