using System.Buffers.Binary;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Kafka;

public sealed class KafkaFramesTests
{
    [Theory]
    [InlineData((short)8)] // header v1
    [InlineData((short)9)] // header v2, flexible body
    public void RequestFrameRoundTripsThroughHeaderAndBody(short version)
    {
        var header = new RequestHeader { RequestApiKey = (short)ApiKey.Produce, RequestApiVersion = version, CorrelationId = 42, ClientId = "c" };
        var body = new ProduceRequest { Acks = -1, TimeoutMs = 1000, TopicData = [new() { Name = "t" }] };
        var frame = KafkaFrames.EncodeRequestFrame(header, body);
        Assert.Equal(frame.Length - 4, BinaryPrimitives.ReadInt32BigEndian(frame));

        var reader = new KafkaReader(frame.AsMemory(4));
        var decodedHeader = KafkaFrames.ReadRequestHeader(ref reader);
        Assert.Equal(42, decodedHeader.CorrelationId);
        Assert.Equal("c", decodedHeader.ClientId);
        var decodedBody = (ProduceRequest)KafkaMessages.CreateRequest((ApiKey)decodedHeader.RequestApiKey);
        decodedBody.Read(ref reader, decodedHeader.RequestApiVersion);
        reader.EnsureEnd();
        Assert.Equal("t", decodedBody.TopicData[0].Name);
    }

    [Fact]
    public void ApiVersionsResponseKeepsHeaderV0EvenWhenFlexible()
    {
        var body = new ApiVersionsResponse { ErrorCode = (short)ErrorCode.None };
        var frame = KafkaFrames.EncodeResponseFrame(ApiKey.ApiVersions, 3, 7, body);
        Assert.Equal(7, BinaryPrimitives.ReadInt32BigEndian(frame.AsSpan(4)));
        Assert.Equal(4 + 4 + body.ComputeSize(3), frame.Length);

        var metadata = KafkaFrames.EncodeResponseFrame(ApiKey.Metadata, 9, 8, new MetadataResponse());
        Assert.Equal(0, metadata[8]); // header v1: empty tagged section after the correlation id
        Assert.Equal(4 + 5 + new MetadataResponse().ComputeSize(9), metadata.Length);
    }

    [Fact]
    public void ShortHeaderIsMalformed()
    {
        Assert.Throws<KafkaProtocolException>(() =>
        {
            var reader = new KafkaReader(new byte[] { 0, 1, 0 });
            KafkaFrames.ReadRequestHeader(ref reader);
        });
        Assert.Throws<KafkaProtocolException>(() =>
        {
            var reader = new KafkaReader(new byte[] { 0, 1, 0, 9, 0, 0 });
            KafkaFrames.ReadRequestHeader(ref reader);
        });
    }
}
