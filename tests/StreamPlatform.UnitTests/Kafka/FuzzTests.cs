using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Kafka;

/// <summary>
/// Decoding hostile bytes: every truncation and seeded random corruptions of a valid encoding of
/// every message at every version. The only exception allowed is KafkaProtocolException; whatever
/// decodes must also re-encode (so a gateway can echo it).
/// </summary>
public sealed class FuzzTests
{
    private const int FlipsPerVersion = 300;

    /// <summary>In-process fuzz entry point: decodes <paramref name="bytes"/>; true if it was valid.</summary>
    internal static bool TryDecode(KafkaMessageInfo info, ReadOnlyMemory<byte> bytes, short version)
    {
        var message = info.Create();
        try
        {
            var reader = new KafkaReader(bytes);
            message.Read(ref reader, version);
        }
        catch (KafkaProtocolException)
        {
            return false;
        }
        catch (Exception ex)
        {
            Assert.Fail($"{info.Name} v{version}: {ex.GetType().Name} instead of KafkaProtocolException: {ex.Message} for {Convert.ToHexString(bytes.Span)}");
        }

        // Whatever was accepted can be written back.
        var size = message.ComputeSize(version);
        var buffer = new byte[size];
        var writer = new KafkaWriter(buffer);
        message.Write(ref writer, version);
        Assert.Equal(size, writer.Position);
        return true;
    }

    [Theory]
    [MemberData(nameof(MessageFactory.AllMessageNames), MemberType = typeof(MessageFactory))]
    public void TruncatedInputThrowsOnlyProtocolException(string name)
    {
        var info = MessageFactory.Info(name);
        for (var version = info.LowestVersion; version <= info.HighestVersion; version++)
        {
            var valid = MessageFactory.Encode(MessageFactory.Populated(info, version), version);
            Assert.True(TryDecode(info, valid, version));
            for (var length = 0; length < valid.Length; length++)
            {
                // A prefix can itself be a valid message (e.g. trailing fields all empty), so
                // either outcome is fine; an unexpected exception type fails inside TryDecode.
                TryDecode(info, valid.AsMemory(0, length), version);
            }
        }
    }

    [Theory]
    [MemberData(nameof(MessageFactory.AllMessageNames), MemberType = typeof(MessageFactory))]
    public void CorruptedInputThrowsOnlyProtocolException(string name)
    {
        var info = MessageFactory.Info(name);
        var rng = new Random(name.Length * 7919 + name[0]);
        for (var version = info.LowestVersion; version <= info.HighestVersion; version++)
        {
            var valid = MessageFactory.Encode(MessageFactory.Populated(info, version + 17), version);
            if (valid.Length == 0)
            {
                continue;
            }

            var copy = new byte[valid.Length];
            for (var i = 0; i < FlipsPerVersion; i++)
            {
                valid.CopyTo(copy, 0);
                var flips = 1 + rng.Next(3);
                for (var f = 0; f < flips; f++)
                {
                    // Bias towards 0xFF/0x80/0x00 which make lengths, varints and markers extreme.
                    copy[rng.Next(copy.Length)] = rng.Next(4) switch
                    {
                        0 => 0xFF,
                        1 => 0x80,
                        2 => 0x00,
                        _ => (byte)rng.Next(256),
                    };
                }

                TryDecode(info, copy, version);
            }
        }
    }
}
