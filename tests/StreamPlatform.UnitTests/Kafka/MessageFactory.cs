using System.Collections;
using System.Reflection;
using System.Text;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Kafka;

/// <summary>Builds generated messages with every property set to a random, non-default value (seeded).</summary>
internal static class MessageFactory
{
    private static readonly string[] Words = ["topic", "héllo", "漢字", "a", "", "x-1", "😀", "consumer.group"];

    public static IKafkaMessage Populated(KafkaMessageInfo info, int seed)
    {
        var message = info.Create();
        Populate(message, new Random(seed), depth: 0);
        return message;
    }

    public static void Populate(object target, Random rng, int depth)
    {
        foreach (var property in target.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (!property.CanWrite)
            {
                continue;
            }

            if (property.PropertyType == typeof(List<TaggedField>))
            {
                // Tags far above the known ones: preserved in flexible versions, dropped in others.
                property.SetValue(target, new List<TaggedField> { new(90 + rng.Next(5), new byte[] { 7, 8, 9 }), new(120, new byte[] { 1 }) });
                continue;
            }

            property.SetValue(target, Value(property.PropertyType, rng, depth));
        }
    }

    private static object? Value(Type type, Random rng, int depth)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        if (t == typeof(sbyte)) return (sbyte)rng.Next(sbyte.MinValue, sbyte.MaxValue + 1);
        if (t == typeof(short)) return (short)rng.Next(short.MinValue, short.MaxValue + 1);
        if (t == typeof(ushort)) return (ushort)rng.Next(ushort.MaxValue + 1);
        if (t == typeof(int)) return rng.Next(int.MinValue, int.MaxValue);
        if (t == typeof(long)) return rng.NextInt64(long.MinValue, long.MaxValue);
        if (t == typeof(double)) return (rng.NextDouble() - 0.5) * 1e6;
        if (t == typeof(bool)) return rng.Next(2) == 1;
        if (t == typeof(Guid)) return new Guid(RandomBytes(rng, 16));
        if (t == typeof(string)) return RandomString(rng);
        if (t == typeof(ReadOnlyMemory<byte>)) return new ReadOnlyMemory<byte>(RandomBytes(rng, rng.Next(0, 12)));
        if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(List<>))
        {
            var list = (IList)Activator.CreateInstance(t)!;
            var count = depth > 3 ? 1 : rng.Next(1, 3);
            for (var i = 0; i < count; i++)
            {
                list.Add(Value(t.GetGenericArguments()[0], rng, depth + 1));
            }

            return list;
        }

        if (t.IsClass)
        {
            var nested = Activator.CreateInstance(t)!;
            Populate(nested, rng, depth + 1);
            return nested;
        }

        throw new InvalidOperationException($"No generator for {t}.");
    }

    private static byte[] RandomBytes(Random rng, int length)
    {
        var bytes = new byte[length];
        rng.NextBytes(bytes);
        return bytes;
    }

    private static string RandomString(Random rng)
    {
        var sb = new StringBuilder();
        var parts = rng.Next(1, 4);
        for (var i = 0; i < parts; i++)
        {
            sb.Append(Words[rng.Next(Words.Length)]);
        }

        return sb.ToString();
    }

    public static byte[] Encode(IKafkaMessage message, short version)
    {
        var size = message.ComputeSize(version);
        var buffer = new byte[size];
        var writer = new KafkaWriter(buffer);
        message.Write(ref writer, version);
        Assert.Equal(size, writer.Position);
        return buffer;
    }

    public static T Decode<T>(T message, ReadOnlyMemory<byte> bytes, short version)
        where T : IKafkaMessage
    {
        var reader = new KafkaReader(bytes);
        message.Read(ref reader, version);
        Assert.Equal(0, reader.Remaining);
        return message;
    }

    public static IEnumerable<object[]> AllMessageNames() => KafkaMessages.All.Select(m => new object[] { m.Name });

    public static KafkaMessageInfo Info(string name) => KafkaMessages.All.Single(m => m.Name == name);
}
