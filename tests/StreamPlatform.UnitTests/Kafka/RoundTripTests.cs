using StreamPlatform.Protos.Kafka;

namespace StreamPlatform.UnitTests.Kafka;

/// <summary>Every message at every version: write, read, write gives identical bytes, and ComputeSize is exact.</summary>
public sealed class RoundTripTests
{
    [Theory]
    [MemberData(nameof(MessageFactory.AllMessageNames), MemberType = typeof(MessageFactory))]
    public void WriteReadWriteIsIdenticalAtEveryVersion(string name)
    {
        var info = MessageFactory.Info(name);
        for (var version = info.LowestVersion; version <= info.HighestVersion; version++)
        {
            for (var seed = 0; seed < 3; seed++)
            {
                var original = MessageFactory.Populated(info, seed * 1000 + version);
                var first = MessageFactory.Encode(original, version);
                var decoded = MessageFactory.Decode(info.Create(), first, version);
                var second = MessageFactory.Encode(decoded, version);
                Assert.True(first.AsSpan().SequenceEqual(second), $"{name} v{version} seed {seed}: re-encoding differs");
            }
        }
    }

    [Theory]
    [MemberData(nameof(MessageFactory.AllMessageNames), MemberType = typeof(MessageFactory))]
    public void EmptyMessageRoundTripsAtEveryVersion(string name)
    {
        var info = MessageFactory.Info(name);
        for (var version = info.LowestVersion; version <= info.HighestVersion; version++)
        {
            var first = MessageFactory.Encode(info.Create(), version);
            var second = MessageFactory.Encode(MessageFactory.Decode(info.Create(), first, version), version);
            Assert.Equal(first, second);
        }
    }

    [Fact]
    public void UnsupportedVersionIsRejected()
    {
        var message = new StreamPlatform.Protos.Kafka.Messages.ProduceRequest();
        Assert.Throws<KafkaProtocolException>(() => message.ComputeSize(99));
        Assert.Throws<KafkaProtocolException>(() =>
        {
            var reader = new KafkaReader(new byte[64]);
            message.Read(ref reader, -1);
        });
    }
}
