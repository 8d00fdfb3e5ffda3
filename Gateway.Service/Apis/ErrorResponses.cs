using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

/// <summary>
/// The one place that turns a request into a response where every partition (or topic, or
/// resource) carries the same error, as Kafka's getErrorResponse does. Used for request-level
/// failures (invalid acks, unexpected exceptions) by every API.
/// </summary>
public static class ErrorResponses
{
    /// <summary>Null when the API has no per-item error shape (the connection is then closed).</summary>
    public static IKafkaResponse? Build(IKafkaRequest request, short version, ErrorCode error)
    {
        var code = (short)error;
        switch (request)
        {
            case ProduceRequest produce:
            {
                var response = new ProduceResponse();
                foreach (var topic in produce.TopicData)
                {
                    var t = new ProduceResponse.TopicProduceResponse { Name = topic.Name };
                    foreach (var p in topic.PartitionData)
                        t.PartitionResponses.Add(new ProduceResponse.PartitionProduceResponse { Index = p.Index, ErrorCode = code, BaseOffset = -1 });
                    response.Responses.Add(t);
                }
                return response;
            }
            case FetchRequest fetch:
            {
                var response = new FetchResponse { SessionId = 0 };
                foreach (var topic in fetch.Topics)
                {
                    var t = new FetchResponse.FetchableTopicResponse { Topic = topic.Topic, TopicId = topic.TopicId };
                    foreach (var p in topic.Partitions)
                        t.Partitions.Add(FetchError(p.Partition, code));
                    response.Responses.Add(t);
                }
                return response;
            }
            case ListOffsetsRequest list:
            {
                var response = new ListOffsetsResponse();
                foreach (var topic in list.Topics)
                {
                    var t = new ListOffsetsResponse.ListOffsetsTopicResponse { Name = topic.Name };
                    foreach (var p in topic.Partitions)
                        t.Partitions.Add(new ListOffsetsResponse.ListOffsetsPartitionResponse { PartitionIndex = p.PartitionIndex, ErrorCode = code });
                    response.Topics.Add(t);
                }
                return response;
            }
            case MetadataRequest metadata:
            {
                var response = new MetadataResponse();
                foreach (var topic in metadata.Topics ?? [])
                    response.Topics.Add(new MetadataResponse.MetadataResponseTopic { Name = topic.Name, TopicId = topic.TopicId, ErrorCode = code });
                return response;
            }
            case CreateTopicsRequest create:
            {
                var response = new CreateTopicsResponse();
                foreach (var topic in create.Topics)
                    response.Topics.Add(new CreateTopicsResponse.CreatableTopicResult { Name = topic.Name, ErrorCode = code });
                return response;
            }
            case DeleteTopicsRequest delete:
            {
                var response = new DeleteTopicsResponse();
                foreach (var name in delete.TopicNames)
                    response.Responses.Add(new DeleteTopicsResponse.DeletableTopicResult { Name = name, ErrorCode = code });
                foreach (var topic in delete.Topics)
                    response.Responses.Add(new DeleteTopicsResponse.DeletableTopicResult { Name = topic.Name, TopicId = topic.TopicId, ErrorCode = code });
                return response;
            }
            case DescribeConfigsRequest describe:
            {
                var response = new DescribeConfigsResponse();
                foreach (var r in describe.Resources)
                    response.Results.Add(new DescribeConfigsResponse.DescribeConfigsResult
                    {
                        ErrorCode = code, ResourceType = r.ResourceType, ResourceName = r.ResourceName,
                    });
                return response;
            }
            case DescribeClusterRequest:
                return new DescribeClusterResponse { ErrorCode = code };
            case ApiVersionsRequest:
                return new ApiVersionsResponse { ErrorCode = code };
            default:
                return null;
        }
    }

    public static FetchResponse.PartitionData FetchError(int partition, short code) => new()
    {
        PartitionIndex = partition,
        ErrorCode = code,
        HighWatermark = -1,
        LastStableOffset = -1,
        LogStartOffset = -1,
        Records = ReadOnlyMemory<byte>.Empty,
        // Kafka sends null for an errored partition (its FetchDataInfo has no aborted list).
        AbortedTransactions = null,
    };
}
