using System.Globalization;

namespace StreamPlatform.Broker.Storage;

public readonly record struct TopicPartition(string Topic, int Partition)
{
    /// <summary>The partition's directory name, Kafka style: <c>topic-partition</c>.</summary>
    public string DirectoryName => $"{Topic}-{Partition.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Parses <c>topic-partition</c> (topics may contain '-': the last one separates).</summary>
    public static bool TryParseDirectoryName(string name, out TopicPartition tp)
    {
        tp = default;
        var dash = name.LastIndexOf('-');
        if (dash <= 0 || !int.TryParse(name.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var p)) return false;
        tp = new TopicPartition(name[..dash], p);
        return true;
    }

    public override string ToString() => DirectoryName;
}
