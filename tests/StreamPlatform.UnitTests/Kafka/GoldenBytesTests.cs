using System.Runtime.InteropServices;
using System.Text;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Kafka;

/// <summary>Hand-built wire bytes, decoded and re-encoded, for the encodings the gateway relies on first.</summary>
public sealed class GoldenBytesTests
{
    private static byte[] Bytes(params object[] parts)
    {
        var result = new List<byte>();
        foreach (var part in parts)
        {
            switch (part)
            {
                case int b:
                    result.Add(checked((byte)b));
                    break;
                case string s:
                    result.AddRange(Encoding.UTF8.GetBytes(s));
                    break;
                case byte[] raw:
                    result.AddRange(raw);
                    break;
                default:
                    throw new ArgumentException(part.GetType().Name);
            }
        }

        return [.. result];
    }

    private static byte[] Encode(IKafkaMessage message, short version) => MessageFactory.Encode(message, version);

    [Fact]
    public void ApiVersionsRequestV3IsFlexibleWithCompactStrings()
    {
        var wire = Bytes(0x0B, "librdkafka", 0x06, "2.3.0", 0x00);
        var request = MessageFactory.Decode(new ApiVersionsRequest(), wire, 3);

        Assert.Equal("librdkafka", request.ClientSoftwareName);
        Assert.Equal("2.3.0", request.ClientSoftwareVersion);
        Assert.Null(request.UnknownTaggedFields);
        Assert.Equal(wire, Encode(request, 3));
        Assert.Equal(18, request.ApiKeyValue);
        Assert.True(ApiVersionsRequest.IsFlexible(3));
        Assert.False(ApiVersionsRequest.IsFlexible(2));
        // v0-v2 have no body at all.
        Assert.Empty(Encode(request, 2));
    }

    [Fact]
    public void ApiVersionsRequestV3KeepsUnknownTaggedFields()
    {
        var wire = Bytes(0x02, "k", 0x02, "1", 0x02, 0x03, 0x01, 0xAA, 0x09, 0x02, 0xBB, 0xCC);
        var request = MessageFactory.Decode(new ApiVersionsRequest(), wire, 3);

        Assert.Equal([3, 9], request.UnknownTaggedFields!.Select(f => f.Tag));
        Assert.Equal(new byte[] { 0xBB, 0xCC }, request.UnknownTaggedFields![1].Data.ToArray());
        Assert.Equal(wire, Encode(request, 3));
    }

    [Fact]
    public void MetadataRequestV1NullTopicsIsMinusOne()
    {
        var wire = Bytes(0xFF, 0xFF, 0xFF, 0xFF);
        var request = MessageFactory.Decode(new MetadataRequest(), wire, 1);

        Assert.Null(request.Topics);
        Assert.Equal(wire, Encode(request, 1));

        // v0 has no null topics: -1 is malformed, and a null list is written as empty.
        Assert.Throws<KafkaProtocolException>(() => MessageFactory.Decode(new MetadataRequest(), wire, 0));
        Assert.Equal(new byte[4], Encode(request, 0));
    }

    [Fact]
    public void MetadataRequestV1WithOneTopic()
    {
        var wire = Bytes(0, 0, 0, 1, 0, 1, "a");
        var request = MessageFactory.Decode(new MetadataRequest(), wire, 1);

        Assert.Equal("a", Assert.Single(request.Topics!).Name);
        Assert.Equal(wire, Encode(request, 1));
    }

    [Fact]
    public void ProduceRequestV3ReturnsRecordsAsSliceOfTheFrame()
    {
        var records = new byte[] { 1, 2, 3, 4, 5 };
        var wire = Bytes(
            0xFF, 0xFF, // TransactionalId = null
            0xFF, 0xFF, // Acks = -1
            0x00, 0x00, 0x75, 0x30, // TimeoutMs = 30000
            0, 0, 0, 1, // one topic
            0, 1, "t",
            0, 0, 0, 1, // one partition
            0, 0, 0, 2, // Index = 2
            0, 0, 0, 5, records);
        var request = MessageFactory.Decode(new ProduceRequest(), wire, 3);

        Assert.Null(request.TransactionalId);
        Assert.Equal(-1, request.Acks);
        Assert.Equal(30000, request.TimeoutMs);
        var topic = Assert.Single(request.TopicData);
        Assert.Equal("t", topic.Name);
        var partition = Assert.Single(topic.PartitionData);
        Assert.Equal(2, partition.Index);
        Assert.NotNull(partition.Records);
        Assert.Equal(records, partition.Records.Value.ToArray());
        Assert.True(MemoryMarshal.TryGetArray(partition.Records.Value, out var segment));
        Assert.Same(wire, segment.Array);
        Assert.Equal(wire.Length - records.Length, segment.Offset);
        Assert.Equal(wire, Encode(request, 3));
    }

    [Fact]
    public void RequestHeaderV2HasNonCompactClientIdAndTaggedSection()
    {
        var wire = Bytes(0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x07, 0x00, 0x07, "rdkafka", 0x00);
        var header = MessageFactory.Decode(new RequestHeader(), wire, 2);

        Assert.Equal(18, header.RequestApiKey);
        Assert.Equal(3, header.RequestApiVersion);
        Assert.Equal(7, header.CorrelationId);
        Assert.Equal("rdkafka", header.ClientId);
        Assert.Equal(wire, Encode(header, 2));

        // A null client id is int16 -1, in v1 as in v2.
        header.ClientId = null;
        Assert.Equal(Bytes(0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x07, 0xFF, 0xFF), Encode(header, 1));
        Assert.Equal(Bytes(0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x07), Encode(header, 0));
    }

    [Fact]
    public void FetchResponseV12PreservesUnknownTaggedFieldsBesideKnownOnes()
    {
        var wire = Bytes(
            0, 0, 0, 0, // ThrottleTimeMs
            0, 0, // ErrorCode
            0, 0, 0, 1, // SessionId
            0x02, // one topic (compact)
            0x02, "t",
            0x02, // one partition
            0, 0, 0, 0, // PartitionIndex
            0, 0, // ErrorCode
            0, 0, 0, 0, 0, 0, 0, 10, // HighWatermark
            0, 0, 0, 0, 0, 0, 0, 10, // LastStableOffset
            0, 0, 0, 0, 0, 0, 0, 0, // LogStartOffset
            0x00, // AbortedTransactions = null
            0xFF, 0xFF, 0xFF, 0xFF, // PreferredReadReplica
            0x04, 0xAA, 0xBB, 0xCC, // Records (compact)
            0x02, // partition tagged fields: CurrentLeader (1) and unknown 3
            0x01, 0x09, 0, 0, 0, 3, 0, 0, 0, 5, 0x00,
            0x03, 0x02, 0xDE, 0xAD,
            0x00, // topic tagged fields
            0x01, // top-level: tag 0 is NodeEndpoints only from v16, so unknown here
            0x00, 0x01, 0x42);
        var response = MessageFactory.Decode(new FetchResponse(), wire, 12);

        var partition = Assert.Single(Assert.Single(response.Responses).Partitions);
        Assert.Equal(3, partition.CurrentLeader.LeaderId);
        Assert.Equal(5, partition.CurrentLeader.LeaderEpoch);
        Assert.Null(partition.AbortedTransactions);
        Assert.Equal(-1, partition.DivergingEpoch.Epoch);
        var unknown = Assert.Single(partition.UnknownTaggedFields!);
        Assert.Equal(3, unknown.Tag);
        Assert.Equal(new byte[] { 0xDE, 0xAD }, unknown.Data.ToArray());
        Assert.Equal(0, Assert.Single(response.UnknownTaggedFields!).Tag);
        Assert.Empty(response.NodeEndpoints);

        Assert.Equal(wire, Encode(response, 12));

        // Unknown fields listed before known ones are still written in tag order.
        partition.UnknownTaggedFields = [new TaggedField(3, new byte[] { 0xDE, 0xAD }), new TaggedField(0x80, new byte[] { 1 })];
        partition.CurrentLeader.LeaderId = 4;
        var reencoded = Encode(response, 12);
        var again = MessageFactory.Decode(new FetchResponse(), reencoded, 12);
        var p2 = again.Responses[0].Partitions[0];
        Assert.Equal(4, p2.CurrentLeader.LeaderId);
        Assert.Equal([3, 0x80], p2.UnknownTaggedFields!.Select(f => f.Tag));
    }

    [Fact]
    public void DefaultTaggedFieldsAreNotWritten()
    {
        var partition = new FetchResponse.PartitionData { PartitionIndex = 1 };
        var response = new FetchResponse { Responses = [new FetchResponse.FetchableTopicResponse { Topic = "t", Partitions = [partition] }] };
        var withDefaults = Encode(response, 12);

        partition.SnapshotId.Epoch = 9;
        var withSnapshot = Encode(response, 12);
        var decoded = MessageFactory.Decode(new FetchResponse(), withSnapshot, 12);

        Assert.Equal(9, decoded.Responses[0].Partitions[0].SnapshotId.Epoch);
        Assert.Equal(-1, decoded.Responses[0].Partitions[0].SnapshotId.EndOffset);
        // tag 2 + size 1 + (int64 + int32 + empty tagged section) = 2 + 13 bytes more.
        Assert.Equal(withDefaults.Length + 2 + 13, withSnapshot.Length);
    }

    [Fact]
    public void NullableStructUsesInt8Marker()
    {
        var response = new ConsumerGroupHeartbeatResponse { MemberId = "m" };
        Assert.Null(response.Assignment);
        var without = Encode(response, 0);
        Assert.Equal(0xFF, without[^2]); // -1 marker, then the empty tagged section

        response.Assignment = new ConsumerGroupHeartbeatResponse.AssignmentData();
        var with = Encode(response, 0);
        Assert.Equal(without.Length + 2, with.Length); // marker -1 becomes marker 1 + empty array + empty tagged section
        Assert.NotNull(MessageFactory.Decode(new ConsumerGroupHeartbeatResponse(), with, 0).Assignment);
    }
}
