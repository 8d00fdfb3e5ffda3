using System.Buffers.Binary;
using System.Text;
using Google.Protobuf;
using StreamPlatform.Protos.Grpc.Groups;

namespace StreamPlatform.Broker.Groups;

/// <summary>A committed offset as the coordinator keeps it (and writes it to __consumer_offsets).</summary>
public sealed record CommittedOffset(long Offset, int LeaderEpoch, string? Metadata, long CommitTimestampMs, long ExpireTimestampMs);

/// <summary>
/// Keys and values of the records in __consumer_offsets. Keys start with an int16 version that
/// also says what the key names, as Kafka's do (0/1: an offset of (group, topic, partition);
/// 2: a group's metadata), so compaction keeps exactly the newest record per group and per
/// committed partition. Key fields are int16-length UTF-8 strings and big-endian ints. Values
/// are an int16 value version (0) and a protobuf message from groups.proto; a null value is a
/// tombstone (offset deleted, group deleted).
/// </summary>
public static class GroupRecords
{
    public const short OffsetKeyVersion = 1;
    public const short GroupKeyVersion = 2;
    /// <summary>KIP-848: a consumer group's epochs and target assignment (group).</summary>
    public const short ConsumerGroupKeyVersion = 3;
    /// <summary>KIP-848: one consumer group member (group, member id).</summary>
    public const short ConsumerMemberKeyVersion = 4;
    public const short ValueVersion = 0;
    /// <summary>Kafka's limit on group ids and topic names in keys (int16 length).</summary>
    public const int KeyStringBytesMax = short.MaxValue;

    public abstract record Key;
    public sealed record OffsetKey(string Group, string Topic, int Partition) : Key;
    public sealed record GroupKey(string Group) : Key;
    public sealed record ConsumerGroupKey(string Group) : Key;
    public sealed record ConsumerMemberKey(string Group, string MemberId) : Key;

    public static byte[] EncodeConsumerGroupKey(string group) => EncodeStrings(ConsumerGroupKeyVersion, group);

    public static byte[] EncodeConsumerMemberKey(string group, string memberId) => EncodeStrings(ConsumerMemberKeyVersion, group, memberId);

    private static byte[] EncodeStrings(short version, params string[] values)
    {
        var encoded = values.Select(Encoding.UTF8.GetBytes).ToArray();
        var buffer = new byte[2 + encoded.Sum(e => 2 + e.Length)];
        BinaryPrimitives.WriteInt16BigEndian(buffer, version);
        var pos = 2;
        foreach (var e in encoded) pos = WriteString(buffer, pos, e);
        return buffer;
    }

    public static byte[] EncodeOffsetKey(string group, string topic, int partition)
    {
        var g = Encoding.UTF8.GetBytes(group);
        var t = Encoding.UTF8.GetBytes(topic);
        var buffer = new byte[2 + 2 + g.Length + 2 + t.Length + 4];
        var span = buffer.AsSpan();
        BinaryPrimitives.WriteInt16BigEndian(span, OffsetKeyVersion);
        var pos = WriteString(span, 2, g);
        pos = WriteString(span, pos, t);
        BinaryPrimitives.WriteInt32BigEndian(span[pos..], partition);
        return buffer;
    }

    public static byte[] EncodeGroupKey(string group)
    {
        var g = Encoding.UTF8.GetBytes(group);
        var buffer = new byte[2 + 2 + g.Length];
        BinaryPrimitives.WriteInt16BigEndian(buffer, GroupKeyVersion);
        WriteString(buffer, 2, g);
        return buffer;
    }

    private static int WriteString(Span<byte> span, int pos, byte[] utf8)
    {
        if (utf8.Length > KeyStringBytesMax) throw new ArgumentException($"Key string of {utf8.Length} bytes is over {KeyStringBytesMax}.");
        BinaryPrimitives.WriteInt16BigEndian(span[pos..], (short)utf8.Length);
        utf8.CopyTo(span[(pos + 2)..]);
        return pos + 2 + utf8.Length;
    }

    /// <summary>The key, or null for a key this version does not know (skipped on load, as Kafka does with unknown versions).</summary>
    public static Key? DecodeKey(ReadOnlySpan<byte> key)
    {
        if (key.Length < 2) return null;
        var version = BinaryPrimitives.ReadInt16BigEndian(key);
        var pos = 2;
        switch (version)
        {
            case 0 or OffsetKeyVersion:
                {
                    if (!TryReadString(key, ref pos, out var g) || !TryReadString(key, ref pos, out var t) || key.Length - pos != 4) return null;
                    return new OffsetKey(g, t, BinaryPrimitives.ReadInt32BigEndian(key[pos..]));
                }
            case GroupKeyVersion:
                {
                    if (!TryReadString(key, ref pos, out var g) || pos != key.Length) return null;
                    return new GroupKey(g);
                }
            case ConsumerGroupKeyVersion:
                {
                    if (!TryReadString(key, ref pos, out var g) || pos != key.Length) return null;
                    return new ConsumerGroupKey(g);
                }
            case ConsumerMemberKeyVersion:
                {
                    if (!TryReadString(key, ref pos, out var g) || !TryReadString(key, ref pos, out var m) || pos != key.Length) return null;
                    return new ConsumerMemberKey(g, m);
                }
            default:
                return null;
        }
    }

    private static bool TryReadString(ReadOnlySpan<byte> span, ref int pos, out string value)
    {
        value = "";
        if (span.Length - pos < 2) return false;
        var len = BinaryPrimitives.ReadInt16BigEndian(span[pos..]);
        if (len < 0 || span.Length - pos - 2 < len) return false;
        value = Encoding.UTF8.GetString(span.Slice(pos + 2, len));
        pos += 2 + len;
        return true;
    }

    public static byte[] EncodeValue(IMessage message)
    {
        var size = message.CalculateSize();
        var buffer = new byte[2 + size];
        BinaryPrimitives.WriteInt16BigEndian(buffer, ValueVersion);
        message.WriteTo(buffer.AsSpan(2));
        return buffer;
    }

    /// <summary>Parses a value; null when its version is unknown or its bytes are not a valid message.</summary>
    public static T? DecodeValue<T>(ReadOnlySpan<byte> value, MessageParser<T> parser) where T : class, IMessage<T>
    {
        if (value.Length < 2 || BinaryPrimitives.ReadInt16BigEndian(value) != ValueVersion) return null;
        try
        {
            return parser.ParseFrom(value[2..]);
        }
        catch (InvalidProtocolBufferException)
        {
            return null;
        }
    }

    public static OffsetCommitValue ToValue(CommittedOffset o) => new()
    {
        Offset = o.Offset, LeaderEpoch = o.LeaderEpoch, Metadata = o.Metadata ?? "", MetadataNull = o.Metadata is null,
        CommitTimestampMs = o.CommitTimestampMs, ExpireTimestampMs = o.ExpireTimestampMs,
    };

    public static CommittedOffset FromValue(OffsetCommitValue v)
        => new(v.Offset, v.LeaderEpoch, v.MetadataNull ? null : v.Metadata, v.CommitTimestampMs, v.ExpireTimestampMs);
}
