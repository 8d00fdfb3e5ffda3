using StreamPlatform.Gateway.Apis;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Gateway;

public class ErrorResponsesTests
{
    [Fact]
    public void Produce_error_response_covers_every_partition_in_order()
    {
        var request = new ProduceRequest { Acks = 1 };
        request.TopicData.Add(new ProduceRequest.TopicProduceData
        {
            Name = "a",
            PartitionData = { new ProduceRequest.PartitionProduceData { Index = 2 }, new ProduceRequest.PartitionProduceData { Index = 0 } },
        });
        request.TopicData.Add(new ProduceRequest.TopicProduceData { Name = "b", PartitionData = { new ProduceRequest.PartitionProduceData { Index = 1 } } });
        var response = Assert.IsType<ProduceResponse>(ErrorResponses.Build(request, 9, ErrorCode.InvalidRequiredAcks));
        Assert.Equal(["a", "b"], response.Responses.Select(t => t.Name));
        Assert.Equal([2, 0], response.Responses[0].PartitionResponses.Select(p => p.Index));
        Assert.All(response.Responses.SelectMany(t => t.PartitionResponses), p =>
        {
            Assert.Equal((short)ErrorCode.InvalidRequiredAcks, p.ErrorCode);
            Assert.Equal(-1, p.BaseOffset);
        });
    }

    [Fact]
    public void Fetch_error_response_keeps_topic_ids_and_has_no_session()
    {
        var id = Guid.NewGuid();
        var request = new FetchRequest();
        request.Topics.Add(new FetchRequest.FetchTopic
        {
            TopicId = id,
            Partitions = { new FetchRequest.FetchPartition { Partition = 0 }, new FetchRequest.FetchPartition { Partition = 3 } },
        });
        var response = Assert.IsType<FetchResponse>(ErrorResponses.Build(request, 13, ErrorCode.UnknownServerError));
        Assert.Equal(0, response.SessionId);
        var topic = Assert.Single(response.Responses);
        Assert.Equal(id, topic.TopicId);
        Assert.Equal([0, 3], topic.Partitions.Select(p => p.PartitionIndex));
        Assert.All(topic.Partitions, p => Assert.Equal((short)ErrorCode.UnknownServerError, p.ErrorCode));
        // The response must still encode (records empty, not null).
        Assert.True(response.ComputeSize(13) > 0);
    }

    [Fact]
    public void ListOffsets_and_admin_error_responses()
    {
        var list = new ListOffsetsRequest();
        list.Topics.Add(new ListOffsetsRequest.ListOffsetsTopic { Name = "t", Partitions = { new ListOffsetsRequest.ListOffsetsPartition { PartitionIndex = 4 } } });
        var l = Assert.IsType<ListOffsetsResponse>(ErrorResponses.Build(list, 5, ErrorCode.NotLeaderOrFollower));
        Assert.Equal((short)ErrorCode.NotLeaderOrFollower, l.Topics[0].Partitions[0].ErrorCode);

        var create = new CreateTopicsRequest();
        create.Topics.Add(new CreateTopicsRequest.CreatableTopic { Name = "x" });
        var c = Assert.IsType<CreateTopicsResponse>(ErrorResponses.Build(create, 5, ErrorCode.NotController));
        Assert.Equal(("x", (short)ErrorCode.NotController), (c.Topics[0].Name, c.Topics[0].ErrorCode));

        var describe = new DescribeConfigsRequest();
        describe.Resources.Add(new DescribeConfigsRequest.DescribeConfigsResource { ResourceType = 2, ResourceName = "t" });
        var d = Assert.IsType<DescribeConfigsResponse>(ErrorResponses.Build(describe, 4, ErrorCode.UnknownServerError));
        Assert.Equal((2, "t"), ((int)d.Results[0].ResourceType, d.Results[0].ResourceName));
    }

    [Fact]
    public void Fetch_max_bytes_keeps_the_first_batch_and_drops_what_overflows()
    {
        var response = new FetchResponse();
        var topic = new FetchResponse.FetchableTopicResponse { Topic = "t" };
        foreach (var size in new[] { 0, 600, 300, 200 })
        {
            var p = ErrorResponses.FetchError(topic.Partitions.Count, 0);
            p.Records = new byte[size];
            topic.Partitions.Add(p);
        }
        response.Responses.Add(topic);
        FetchApi.EnforceMaxBytes(response, 500);
        Assert.Equal([0, 600, 0, 0], topic.Partitions.Select(p => p.Records?.Length ?? 0));

        FetchApi.EnforceMaxBytes(response, 10_000);
        Assert.Equal(600, topic.Partitions[1].Records?.Length);
    }
}
