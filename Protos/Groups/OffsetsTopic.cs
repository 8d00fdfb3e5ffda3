namespace StreamPlatform.Protos.Groups;

/// <summary>
/// The internal topic that holds consumer groups and their committed offsets, and the mapping
/// of a group to its partition. Gateways and brokers both use it, so they always agree on the
/// coordinator; the formula is Kafka's, so a group lands on the partition Kafka would choose.
/// </summary>
public static class OffsetsTopic
{
    public const string Name = "__consumer_offsets";

    /// <summary>Kafka's Utils.abs(groupId.hashCode()) % partitions.</summary>
    public static int PartitionFor(string groupId, int partitionCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(partitionCount, 1);
        var hash = JavaStringHashCode(groupId);
        // Kafka's Utils.abs maps int.MinValue to 0 (Math.abs would stay negative).
        var abs = hash == int.MinValue ? 0 : Math.Abs(hash);
        return abs % partitionCount;
    }

    /// <summary>java.lang.String.hashCode: s[0]*31^(n-1) + ... + s[n-1] over UTF-16 code units, wrapping.</summary>
    public static int JavaStringHashCode(string value)
    {
        var h = 0;
        unchecked
        {
            foreach (var c in value) h = 31 * h + c;
        }
        return h;
    }
}
