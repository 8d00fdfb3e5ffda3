using System.Buffers.Binary;
using Google.Protobuf;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.CoordinatorRecords;
using Legacy = StreamPlatform.Protos.Grpc.Groups;

namespace StreamPlatform.Broker.Groups;

/// <summary>A committed offset as the coordinator keeps it (and writes it to __consumer_offsets). Metadata is never null: Kafka stores "" for a null commit metadata.</summary>
public sealed record CommittedOffset(long Offset, int LeaderEpoch, string Metadata, long CommitTimestampMs, long ExpireTimestampMs)
{
    /// <summary>
    /// Where its record is in __consumer_offsets (-1: not known). Decides which of a
    /// transactional and a plain commit of the same partition is the newer one when the
    /// transaction commits (Kafka's OffsetAndMetadata.recordOffset); not part of the record's value.
    /// </summary>
    public long RecordOffset { get; init; } = -1;
}

/// <summary>
/// The records of __consumer_offsets in Kafka's own format, so that tools reading the topic
/// (lag checkers, Kafka's console consumer formatters, stream processors) decode them. A key is an
/// int16 record type followed by the key schema at that version (Protos/Kafka/Schema/Records,
/// non-flexible); a value is an int16 version followed by the value schema; a null value is a
/// tombstone. Versions are the ones Kafka 4.x writes: OffsetCommitValue 3 (1 when the commit
/// carries an explicit expire timestamp, OffsetCommit v2–4 retention), GroupMetadataValue 3, the
/// KIP-848 values 0 (GroupCoordinatorRecordHelpers, MetadataVersion.offsetCommitValueVersion).
/// <para>Before this format the project wrote value version 0 followed by a protobuf message
/// (groups.proto) under the same key types 1–3, and a member record under type 4 with two strings
/// (group, member). Those are still read: a legacy value has version 0, which Kafka has not written
/// for offsets and classic groups since 0.10; for type 3 the two share version 0 and are told apart
/// by shape (see <see cref="DecodeConsumerGroupEpoch"/>); a type 4 key with two strings is a legacy
/// member, with one string Kafka's partition metadata.</para>
/// </summary>
public static class GroupRecords
{
    public const short OffsetCommitType = 1;
    public const short GroupMetadataType = 2;
    public const short ConsumerGroupMetadataType = 3;
    public const short ConsumerGroupPartitionMetadataType = 4;
    public const short ConsumerGroupMemberMetadataType = 5;
    public const short ConsumerGroupTargetAssignmentMetadataType = 6;
    public const short ConsumerGroupTargetAssignmentMemberType = 7;
    public const short ConsumerGroupCurrentMemberAssignmentType = 8;

    /// <summary>Not a Kafka type: a legacy (group, member) record under type 4, named only so the coordinator can write its tombstone.</summary>
    public const short LegacyConsumerMemberType = -4;

    public const short OffsetCommitValueVersion = 3;
    public const short OffsetCommitValueVersionWithExpiry = 1;
    public const short GroupMetadataValueVersion = 3;
    public const short ConsumerValueVersion = 0;
    public const short LegacyValueVersion = 0;

    /// <summary>Kafka's limit on group ids and topic names in keys (int16 length).</summary>
    public const int KeyStringBytesMax = short.MaxValue;

    // ---------------------------------------------------------------- encoding

    public static byte[] EncodeOffsetKey(string group, string topic, int partition)
        => Encode(OffsetCommitType, new OffsetCommitKey { Group = group, Topic = topic, Partition = partition });

    public static byte[] EncodeOffsetValue(CommittedOffset o)
    {
        var value = new OffsetCommitValue
        {
            Offset = o.Offset, LeaderEpoch = o.LeaderEpoch, Metadata = o.Metadata, CommitTimestamp = o.CommitTimestampMs, ExpireTimestamp = o.ExpireTimestampMs,
        };
        return Encode(o.ExpireTimestampMs >= 0 ? OffsetCommitValueVersionWithExpiry : OffsetCommitValueVersion, value);
    }

    public static byte[] EncodeGroupKey(string group) => Encode(GroupMetadataType, new GroupMetadataKey { Group = group });

    public static byte[] EncodeGroupValue(GroupMetadataValue value) => Encode(GroupMetadataValueVersion, value);

    /// <summary>The key of a KIP-848 record: group-level types (3, 4, 6) take the group only, member-level ones (5, 7, 8, legacy) the member too.</summary>
    public static byte[] EncodeConsumerKey(short type, string group, string memberId) => type switch
    {
        ConsumerGroupMetadataType => Encode(type, new ConsumerGroupMetadataKey { GroupId = group }),
        ConsumerGroupPartitionMetadataType => Encode(type, new ConsumerGroupPartitionMetadataKey { GroupId = group }),
        ConsumerGroupTargetAssignmentMetadataType => Encode(type, new ConsumerGroupTargetAssignmentMetadataKey { GroupId = group }),
        ConsumerGroupMemberMetadataType => Encode(type, new ConsumerGroupMemberMetadataKey { GroupId = group, MemberId = memberId }),
        ConsumerGroupTargetAssignmentMemberType => Encode(type, new ConsumerGroupTargetAssignmentMemberKey { GroupId = group, MemberId = memberId }),
        ConsumerGroupCurrentMemberAssignmentType => Encode(type, new ConsumerGroupCurrentMemberAssignmentKey { GroupId = group, MemberId = memberId }),
        // The legacy member key had Kafka's member-key shape under type 4.
        LegacyConsumerMemberType => EncodeAs(ConsumerGroupPartitionMetadataType, new ConsumerGroupMemberMetadataKey { GroupId = group, MemberId = memberId }, 5),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Not a consumer group record type."),
    };

    public static byte[] EncodeConsumerValue(IKafkaMessage value) => Encode(ConsumerValueVersion, value);

    /// <summary>int16 version (or key type), then the message at that version.</summary>
    public static byte[] Encode(short version, IKafkaMessage message) => EncodeAs(version, message, version);

    private static byte[] EncodeAs(short prefix, IKafkaMessage message, short version)
    {
        var buffer = new byte[2 + message.ComputeSize(version)];
        BinaryPrimitives.WriteInt16BigEndian(buffer, prefix);
        var writer = new KafkaWriter(buffer.AsSpan(2));
        message.Write(ref writer, version);
        return buffer;
    }

    // ---------------------------------------------------------------- decoding

    /// <summary>One record of the log as the coordinator replays it; a null value is a tombstone.</summary>
    public abstract record Record(string Group);
    public sealed record OffsetCommit(string Group, string Topic, int Partition, CommittedOffset? Value) : Record(Group);
    public sealed record ClassicGroupMetadata(string Group, GroupMetadataValue? Value) : Record(Group);
    public sealed record ConsumerGroupEpoch(string Group, int? Epoch) : Record(Group);
    /// <summary>Subscribed topics' partition counts by name.</summary>
    public sealed record ConsumerPartitionMetadata(string Group, Dictionary<string, int>? Counts) : Record(Group);
    public sealed record ConsumerTargetEpoch(string Group, int? Epoch) : Record(Group);
    public sealed record ConsumerMemberMetadata(string Group, string MemberId, ConsumerGroupMemberMetadataValue? Value) : Record(Group);
    public sealed record ConsumerTargetMember(string Group, string MemberId, TopicAssignment? Value) : Record(Group);
    public sealed record ConsumerCurrentAssignment(string Group, string MemberId, ConsumerGroupCurrentMemberAssignmentValue? Value) : Record(Group);
    public sealed record LegacyConsumerGroup(string Group, Legacy.ConsumerGroupValue? Value) : Record(Group);
    public sealed record LegacyConsumerMember(string Group, string MemberId, Legacy.ConsumerMemberValue? Value) : Record(Group);

    /// <summary>
    /// The record, or null for one this version cannot read (unknown type or value version,
    /// malformed bytes): skipped on load, as Kafka skips unknown record types. A record whose key
    /// reads but whose value does not is skipped too, never taken as a tombstone.
    /// </summary>
    public static Record? Decode(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value)
    {
        try
        {
            return DecodeOrThrow(key, value);
        }
        catch (KafkaProtocolException)
        {
            return null;
        }
        catch (InvalidProtocolBufferException)
        {
            return null;
        }
    }

    private static Record? DecodeOrThrow(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value)
    {
        if (key.Length < 2) return null;
        var type = BinaryPrimitives.ReadInt16BigEndian(key.Span);
        var keyBody = key[2..];
        switch (type)
        {
            case 0 or OffsetCommitType:
                {
                    var k = ReadExact<OffsetCommitKey>(keyBody, type);
                    if (value is not { } v) return new OffsetCommit(k.Group, k.Topic, k.Partition, null);
                    var version = ValueVersion(v);
                    if (version == LegacyValueVersion)
                    {
                        var legacy = Legacy.OffsetCommitValue.Parser.ParseFrom(v.Span[2..]);
                        // Null metadata was kept as null then; Kafka (and this coordinator now) store "".
                        return new OffsetCommit(k.Group, k.Topic, k.Partition,
                            new CommittedOffset(legacy.Offset, legacy.LeaderEpoch, legacy.Metadata, legacy.CommitTimestampMs, legacy.ExpireTimestampMs));
                    }
                    var o = ReadValue<OffsetCommitValue>(v, version);
                    return new OffsetCommit(k.Group, k.Topic, k.Partition, new CommittedOffset(o.Offset, o.LeaderEpoch, o.Metadata, o.CommitTimestamp, o.ExpireTimestamp));
                }
            case GroupMetadataType:
                {
                    var k = ReadExact<GroupMetadataKey>(keyBody, type);
                    if (value is not { } v) return new ClassicGroupMetadata(k.Group, null);
                    var version = ValueVersion(v);
                    return new ClassicGroupMetadata(k.Group, version == LegacyValueVersion
                        ? FromLegacy(Legacy.GroupMetadataValue.Parser.ParseFrom(v.Span[2..]))
                        : ReadValue<GroupMetadataValue>(v, version));
                }
            case ConsumerGroupMetadataType:
                {
                    var k = ReadExact<ConsumerGroupMetadataKey>(keyBody, type);
                    if (value is not { } v) return new ConsumerGroupEpoch(k.GroupId, null);
                    return DecodeConsumerGroupEpoch(k.GroupId, v);
                }
            case ConsumerGroupPartitionMetadataType:
                {
                    if (TryReadExact<ConsumerGroupPartitionMetadataKey>(keyBody, type) is { } k)
                    {
                        if (value is not { } v) return new ConsumerPartitionMetadata(k.GroupId, null);
                        var metadata = ReadValue<ConsumerGroupPartitionMetadataValue>(v, ValueVersion(v));
                        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
                        foreach (var t in metadata.Topics) counts[t.TopicName] = t.NumPartitions;
                        return new ConsumerPartitionMetadata(k.GroupId, counts);
                    }
                    // (group, member) under type 4: the project's legacy member record.
                    var lk = ReadExact<ConsumerGroupMemberMetadataKey>(keyBody, 5);
                    if (value is not { } lv) return new LegacyConsumerMember(lk.GroupId, lk.MemberId, null);
                    if (ValueVersion(lv) != LegacyValueVersion) return null;
                    return new LegacyConsumerMember(lk.GroupId, lk.MemberId, Legacy.ConsumerMemberValue.Parser.ParseFrom(lv.Span[2..]));
                }
            case ConsumerGroupMemberMetadataType:
                {
                    var k = ReadExact<ConsumerGroupMemberMetadataKey>(keyBody, type);
                    return new ConsumerMemberMetadata(k.GroupId, k.MemberId, value is { } v ? ReadValue<ConsumerGroupMemberMetadataValue>(v, ValueVersion(v)) : null);
                }
            case ConsumerGroupTargetAssignmentMetadataType:
                {
                    var k = ReadExact<ConsumerGroupTargetAssignmentMetadataKey>(keyBody, type);
                    return new ConsumerTargetEpoch(k.GroupId, value is { } v ? ReadValue<ConsumerGroupTargetAssignmentMetadataValue>(v, ValueVersion(v)).AssignmentEpoch : null);
                }
            case ConsumerGroupTargetAssignmentMemberType:
                {
                    var k = ReadExact<ConsumerGroupTargetAssignmentMemberKey>(keyBody, type);
                    if (value is not { } v) return new ConsumerTargetMember(k.GroupId, k.MemberId, null);
                    var target = ReadValue<ConsumerGroupTargetAssignmentMemberValue>(v, ValueVersion(v));
                    return new ConsumerTargetMember(k.GroupId, k.MemberId, TopicAssignment.Of(target.TopicPartitions.SelectMany(t => t.Partitions.Select(p => (t.TopicId, p)))));
                }
            case ConsumerGroupCurrentMemberAssignmentType:
                {
                    var k = ReadExact<ConsumerGroupCurrentMemberAssignmentKey>(keyBody, type);
                    return new ConsumerCurrentAssignment(k.GroupId, k.MemberId, value is { } v ? ReadValue<ConsumerGroupCurrentMemberAssignmentValue>(v, ValueVersion(v)) : null);
                }
            default:
                return null;
        }
    }

    /// <summary>
    /// Type 3 values: Kafka's ConsumerGroupMetadataValue v0 is an int32 epoch and an empty
    /// tagged-field section, 5 bytes; the legacy protobuf ConsumerGroupValue (also "version 0")
    /// always names its assignor ("uniform" or "range", field 3), so it is at least 7 bytes and
    /// never reads as Kafka's value without trailing bytes or tagged fields.
    /// </summary>
    private static Record DecodeConsumerGroupEpoch(string group, ReadOnlyMemory<byte> value)
    {
        var version = ValueVersion(value);
        if (version != ConsumerValueVersion) throw new KafkaProtocolException($"Unknown ConsumerGroupMetadataValue version {version}.");
        try
        {
            var kafka = ReadValue<ConsumerGroupMetadataValue>(value, version);
            if (kafka.UnknownTaggedFields is null or { Count: 0 }) return new ConsumerGroupEpoch(group, kafka.Epoch);
        }
        catch (KafkaProtocolException)
        {
        }
        return new LegacyConsumerGroup(group, Legacy.ConsumerGroupValue.Parser.ParseFrom(value.Span[2..]));
    }

    private static short ValueVersion(ReadOnlyMemory<byte> value)
    {
        if (value.Length < 2) throw new KafkaProtocolException("Value shorter than its version.");
        return BinaryPrimitives.ReadInt16BigEndian(value.Span);
    }

    private static T ReadValue<T>(ReadOnlyMemory<byte> value, short version) where T : IKafkaMessage, new() => ReadExact<T>(value[2..], version);

    private static T ReadExact<T>(ReadOnlyMemory<byte> bytes, short version) where T : IKafkaMessage, new()
    {
        var message = new T();
        var reader = new KafkaReader(bytes);
        message.Read(ref reader, version);
        reader.EnsureEnd();
        return message;
    }

    private static T? TryReadExact<T>(ReadOnlyMemory<byte> bytes, short version) where T : class, IKafkaMessage, new()
    {
        try
        {
            return ReadExact<T>(bytes, version);
        }
        catch (KafkaProtocolException)
        {
            return null;
        }
    }

    /// <summary>
    /// A legacy classic group in Kafka's shape. The legacy value also listed every protocol a
    /// member offered; Kafka's keeps the chosen protocol's metadata only, and so does a load now.
    /// </summary>
    private static GroupMetadataValue FromLegacy(Legacy.GroupMetadataValue v)
    {
        var value = new GroupMetadataValue
        {
            ProtocolType = v.ProtocolType, Generation = v.Generation,
            Protocol = v.ProtocolName.Length == 0 ? null : v.ProtocolName, Leader = v.Leader.Length == 0 ? null : v.Leader,
            CurrentStateTimestamp = v.CurrentStateTimestampMs,
        };
        foreach (var m in v.Members)
            value.Members.Add(new GroupMetadataValue.MemberMetadata
            {
                MemberId = m.MemberId, GroupInstanceId = m.HasGroupInstanceId ? m.GroupInstanceId : null, ClientId = m.ClientId, ClientHost = m.ClientHost,
                RebalanceTimeout = m.RebalanceTimeoutMs, SessionTimeout = m.SessionTimeoutMs,
                Subscription = m.Subscription.ToByteArray(), Assignment = m.Assignment.ToByteArray(),
            });
        return value;
    }
}
