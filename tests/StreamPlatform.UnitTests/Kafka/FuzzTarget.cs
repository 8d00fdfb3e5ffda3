using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Kafka;

/// <summary>
/// In-process fuzz entry point (no SharpFuzz needed): the first two bytes pick a message type, the
/// third a version, the rest is the body. A coverage-guided fuzzer can call <see cref="Run"/>.
/// </summary>
internal static class FuzzTarget
{
    public static bool Run(ReadOnlyMemory<byte> input)
    {
        if (input.Length < 3)
        {
            return false;
        }

        var span = input.Span;
        var info = KafkaMessages.All[((span[0] << 8) | span[1]) % KafkaMessages.All.Count];
        var range = info.HighestVersion - info.LowestVersion + 1;
        var version = (short)(info.LowestVersion + (span[2] % range));
        return FuzzTests.TryDecode(info, input[3..], version);
    }
}

public sealed class FuzzTargetTests
{
    [Fact]
    public void RandomInputsNeverThrowAnythingButProtocolErrors()
    {
        var rng = new Random(20261123);
        var accepted = 0;
        for (var i = 0; i < 20000; i++)
        {
            var input = new byte[3 + rng.Next(0, 48)];
            rng.NextBytes(input);
            if (FuzzTarget.Run(input))
            {
                accepted++;
            }
        }

        // Some random bodies are valid (empty or all-optional messages); most are not.
        Assert.InRange(accepted, 1, 19999);
    }
}
