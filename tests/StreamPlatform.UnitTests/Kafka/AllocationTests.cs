using StreamPlatform.Protos.Kafka;

namespace StreamPlatform.UnitTests.Kafka;

/// <summary>ComputeSize and Write run on every response the gateway sends: they must not allocate.</summary>
public sealed class AllocationTests
{
    [Theory]
    [InlineData("ProduceRequest", (short)11)]
    [InlineData("FetchResponse", (short)17)]
    [InlineData("MetadataResponse", (short)12)]
    [InlineData("ApiVersionsResponse", (short)4)]
    [InlineData("RequestHeader", (short)2)]
    [InlineData("DescribeConfigsResponse", (short)4)]
    public void ComputeSizeAndWriteDoNotAllocate(string name, short version)
    {
        var message = MessageFactory.Populated(MessageFactory.Info(name), seed: 5);
        var buffer = new byte[message.ComputeSize(version)];
        WriteOnce(message, buffer, version); // warm up (JIT, static initialisers)

        var before = GC.GetAllocatedBytesForCurrentThread();
        var size = 0;
        for (var i = 0; i < 10; i++)
        {
            size = WriteOnce(message, buffer, version);
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(buffer.Length, size);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void ReadingFixedSizeFieldsAllocatesNothing()
    {
        var source = new StreamPlatform.Protos.Kafka.Messages.HeartbeatResponse { ThrottleTimeMs = 5, ErrorCode = 27 };
        var wire = MessageFactory.Encode(source, 3);
        var target = new StreamPlatform.Protos.Kafka.Messages.HeartbeatResponse();
        ReadOnce(target, wire, 3); // warm up

        var before = GC.GetAllocatedBytesForCurrentThread();
        ReadOnce(target, wire, 3);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(27, target.ErrorCode);
    }

    private static void ReadOnce(IKafkaMessage message, byte[] wire, short version)
    {
        var reader = new KafkaReader(wire);
        message.Read(ref reader, version);
    }

    private static int WriteOnce(IKafkaMessage message, byte[] buffer, short version)
    {
        var size = message.ComputeSize(version);
        var writer = new KafkaWriter(buffer.AsSpan(0, size));
        message.Write(ref writer, version);
        return writer.Position;
    }
}
