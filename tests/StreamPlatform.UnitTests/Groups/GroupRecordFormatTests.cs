using System.Buffers.Binary;
using System.Text;
using Google.Protobuf;
using StreamPlatform.Broker.Groups;
using StreamPlatform.Protos.Kafka.Messages;
using Legacy = StreamPlatform.Protos.Grpc.Groups;

namespace StreamPlatform.UnitTests.Groups;

/// <summary>
/// __consumer_offsets holds Kafka's own record formats (checked here with a decoder written from
/// the JSON schemas, not with the project's codec), and logs written in the project's earlier
/// protobuf format still load to the same state.
/// </summary>
public sealed class GroupRecordFormatTests : IDisposable
{
    private readonly GroupTestHarness _h = new();

    public void Dispose() => _h.Dispose();

    private List<(byte[] Key, byte[]? Value)> RawRecords()
    {
        var records = new List<(byte[], byte[]?)>();
        new OffsetsPartitionStore(_h.OpenLog()).ReadAll((k, v) => records.Add((k.ToArray(), v?.ToArray())), CancellationToken.None);
        return records;
    }

    /// <summary>Big-endian reads of Kafka's non-flexible primitives, as any client library decodes them.</summary>
    private sealed class Cursor(byte[] bytes)
    {
        private int _pos;
        public short Int16() { var v = BinaryPrimitives.ReadInt16BigEndian(bytes.AsSpan(_pos)); _pos += 2; return v; }
        public int Int32() { var v = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(_pos)); _pos += 4; return v; }
        public long Int64() { var v = BinaryPrimitives.ReadInt64BigEndian(bytes.AsSpan(_pos)); _pos += 8; return v; }
        public string? String()
        {
            var len = Int16();
            if (len < 0) return null;
            var s = Encoding.UTF8.GetString(bytes, _pos, len);
            _pos += len;
            return s;
        }
        public byte[] Bytes()
        {
            var len = Int32();
            var b = bytes.AsSpan(_pos, len).ToArray();
            _pos += len;
            return b;
        }
        public bool AtEnd => _pos == bytes.Length;
    }

    [Fact]
    public async Task Offset_commits_are_kafkas_OffsetCommitKey_and_OffsetCommitValue_v3_with_empty_metadata_for_null()
    {
        await _h.LoadAsync();
        Assert.Equal(0, GroupTestHarness.CommitError(_h.Commit("g1", -1, "", "orders", 2, 42, metadata: "meta")));
        Assert.Equal(0, GroupTestHarness.CommitError(_h.Commit("g1", -1, "", "orders", 3, 7, metadata: null)));

        var records = RawRecords();
        Assert.Equal(2, records.Count);
        var decoded = records.Select(r =>
        {
            var key = new Cursor(r.Key);
            Assert.Equal(1, key.Int16()); // OffsetCommitKey, version 1
            var k = (Group: key.String(), Topic: key.String(), Partition: key.Int32());
            Assert.True(key.AtEnd);
            var value = new Cursor(r.Value!);
            Assert.Equal(3, value.Int16()); // OffsetCommitValue v3: offset, leaderEpoch, metadata, commitTimestamp
            var v = (Offset: value.Int64(), LeaderEpoch: value.Int32(), Metadata: value.String(), CommitTimestamp: value.Int64());
            Assert.True(value.AtEnd);
            return (k, v);
        }).ToList();
        Assert.Equal((("g1", "orders", 2), (42L, 3, "meta", GroupTestHarness.T0)), (decoded[0].k, decoded[0].v));
        Assert.Equal((("g1", "orders", 3), (7L, 3, "", GroupTestHarness.T0)), (decoded[1].k, decoded[1].v));
    }

    [Fact]
    public async Task A_commit_with_retention_is_OffsetCommitValue_v1_with_its_expire_timestamp()
    {
        await _h.LoadAsync();
        var request = new OffsetCommitRequest { GroupId = "g1", GenerationIdOrMemberEpoch = -1, MemberId = "", RetentionTimeMs = 60_000 };
        request.Topics.Add(new OffsetCommitRequest.OffsetCommitRequestTopic
        {
            Name = "t", Partitions = [new OffsetCommitRequest.OffsetCommitRequestPartition { PartitionIndex = 0, CommittedOffset = 5, CommittedMetadata = "x" }],
        });
        Assert.Equal(0, _h.Coordinator.OffsetCommit(request, 2).Topics[0].Partitions[0].ErrorCode);

        var value = new Cursor(RawRecords().Single().Value!);
        Assert.Equal(1, value.Int16()); // v1: offset, metadata, commitTimestamp, expireTimestamp
        Assert.Equal((5L, "x", GroupTestHarness.T0, GroupTestHarness.T0 + 60_000), (value.Int64(), value.String(), value.Int64(), value.Int64()));
        Assert.True(value.AtEnd);
    }

    [Fact]
    public async Task A_classic_group_is_kafkas_GroupMetadataKey_and_GroupMetadataValue_v3()
    {
        await _h.LoadAsync();
        var (member, join) = await _h.JoinNewAsync("g1");
        var joined = await join;
        var assignment = new byte[] { 0, 0, 1, 2, 3 };
        Assert.Equal(0, (await _h.SyncAsync("g1", member, joined.GenerationId, (member, assignment))).ErrorCode);

        var (key, valueBytes) = RawRecords().Last();
        var k = new Cursor(key);
        Assert.Equal(2, k.Int16());
        Assert.Equal("g1", k.String());
        Assert.True(k.AtEnd);
        var v = new Cursor(valueBytes!);
        Assert.Equal(3, v.Int16());
        Assert.Equal("consumer", v.String()); // protocolType
        Assert.Equal(joined.GenerationId, v.Int32());
        Assert.Equal("range", v.String()); // protocol
        Assert.Equal(member, v.String()); // leader
        Assert.Equal(GroupTestHarness.T0, v.Int64()); // currentStateTimestamp (v2+)
        Assert.Equal(1, v.Int32()); // members
        Assert.Equal(member, v.String());
        Assert.Null(v.String()); // groupInstanceId (v3+, nullable)
        Assert.Equal(("client", "/127.0.0.1"), (v.String(), v.String()));
        Assert.Equal((30_000, 10_000), (v.Int32(), v.Int32())); // rebalanceTimeout, sessionTimeout
        Assert.Equal(GroupTestHarness.Subscription("t"), v.Bytes());
        Assert.Equal(assignment, v.Bytes());
        Assert.True(v.AtEnd);
    }

    [Fact]
    public async Task Null_commit_metadata_is_fetched_as_an_empty_string_also_after_a_restart()
    {
        await _h.LoadAsync();
        Assert.Equal(0, GroupTestHarness.CommitError(_h.Commit("g1", -1, "", "t", 0, 11, metadata: null)));
        Assert.Equal("", FetchMetadata());
        await _h.RestartAsync();
        Assert.Equal("", FetchMetadata());
    }

    private string? FetchMetadata()
    {
        var r = new OffsetFetchRequest { GroupId = "g1", Topics = [new OffsetFetchRequest.OffsetFetchRequestTopic { Name = "t", PartitionIndexes = [0] }] };
        var partition = _h.Coordinator.OffsetFetch(r, 7).Topics[0].Partitions[0];
        Assert.Equal(11, partition.CommittedOffset);
        return partition.Metadata;
    }

    [Fact]
    public async Task Unreadable_records_are_skipped_on_load_and_never_taken_as_tombstones()
    {
        await _h.LoadAsync();
        Assert.Equal(0, GroupTestHarness.CommitError(_h.Commit("g1", -1, "", "t", 0, 9, metadata: "kept")));
        var random = new Random(1234);
        var junk = new List<(byte[] Key, byte[]? Value)>();
        for (var i = 0; i < 300; i++)
        {
            var key = new byte[random.Next(0, 40)];
            random.NextBytes(key);
            // Half of them look like records of known types with bodies cut or garbled.
            if (key.Length >= 2 && i % 2 == 0) BinaryPrimitives.WriteInt16BigEndian(key, (short)random.Next(0, 9));
            var value = new byte[random.Next(0, 40)];
            random.NextBytes(value);
            if (value.Length >= 2 && i % 3 == 0) BinaryPrimitives.WriteInt16BigEndian(value, (short)random.Next(0, 5));
            junk.Add((key, value));
        }
        // The same key as the real commit, with a value no version can read: skipped, not a tombstone.
        junk.Add((GroupRecords.EncodeOffsetKey("g1", "t", 0), [0, 3, 1]));
        var store = new OffsetsPartitionStore(_h.OpenLog());
        Assert.Equal(0, store.Append(junk, GroupTestHarness.T0).ErrorCode);

        await _h.RestartAsync();
        Assert.Equal(9, _h.Fetch("g1", "t", 0));
        Assert.Equal(0, GroupTestHarness.CommitError(_h.Commit("g1", -1, "", "t", 0, 10)));
        Assert.Equal(10, _h.Fetch("g1", "t", 0));
    }

    private static byte[] LegacyKey(short version, params object[] fields)
    {
        var bytes = new List<byte>();
        void Int16(short v) { var b = new byte[2]; BinaryPrimitives.WriteInt16BigEndian(b, v); bytes.AddRange(b); }
        Int16(version);
        foreach (var f in fields)
        {
            if (f is string s) { Int16((short)Encoding.UTF8.GetByteCount(s)); bytes.AddRange(Encoding.UTF8.GetBytes(s)); }
            else { var b = new byte[4]; BinaryPrimitives.WriteInt32BigEndian(b, (int)f); bytes.AddRange(b); }
        }
        return bytes.ToArray();
    }

    /// <summary>The earlier format: int16 0, then the protobuf message.</summary>
    internal static byte[] LegacyValue(IMessage message) => [0, 0, .. message.ToByteArray()];

    [Fact]
    public async Task A_log_in_the_earlier_protobuf_format_loads_to_the_same_state_and_is_rewritten_in_kafkas_on_change()
    {
        var assignment = new byte[] { 0, 0, 9 };
        var subscription = GroupTestHarness.Subscription("t");
        var group = new Legacy.GroupMetadataValue
        {
            ProtocolType = "consumer", Generation = 4, ProtocolName = "range", Leader = "m-1", CurrentStateTimestampMs = GroupTestHarness.T0 - 5,
        };
        var member = new Legacy.GroupMemberValue
        {
            MemberId = "m-1", GroupInstanceId = "i-1", HasGroupInstanceId = true, ClientId = "c", ClientHost = "/10.0.0.1",
            RebalanceTimeoutMs = 30_000, SessionTimeoutMs = 10_000, Subscription = ByteString.CopyFrom(subscription), Assignment = ByteString.CopyFrom(assignment),
        };
        member.Protocols.Add(new Legacy.GroupProtocolValue { Name = "range", Metadata = ByteString.CopyFrom(subscription) });
        group.Members.Add(member);
        var store = new OffsetsPartitionStore(_h.OpenLog());
        Assert.Equal(0, store.Append(
        [
            (LegacyKey(1, "g1", "t", 0), LegacyValue(new Legacy.OffsetCommitValue { Offset = 10, LeaderEpoch = 2, Metadata = "", MetadataNull = true, CommitTimestampMs = GroupTestHarness.T0, ExpireTimestampMs = -1 })),
            (LegacyKey(1, "g1", "t", 1), LegacyValue(new Legacy.OffsetCommitValue { Offset = 20, LeaderEpoch = 3, Metadata = "m", CommitTimestampMs = GroupTestHarness.T0, ExpireTimestampMs = -1 })),
            (LegacyKey(1, "g1", "t", 2), LegacyValue(new Legacy.OffsetCommitValue { Offset = 30, CommitTimestampMs = GroupTestHarness.T0, ExpireTimestampMs = -1 })),
            (LegacyKey(2, "g1"), LegacyValue(group)),
        ], GroupTestHarness.T0).ErrorCode);
        Assert.Equal(0, store.Append([(LegacyKey(1, "g1", "t", 2), null)], GroupTestHarness.T0).ErrorCode); // a legacy tombstone

        await _h.LoadAsync();
        AssertLegacyState();
        await _h.RestartAsync();
        AssertLegacyState();

        // The next change of each record writes it in Kafka's format; the state stays the same.
        Assert.Equal(0, _h.Heartbeat("g1", "m-1", 4, "i-1"));
        Assert.Equal(0, GroupTestHarness.CommitError(_h.Commit("g1", 4, "m-1", "t", 1, 20, metadata: "m")));
        Assert.Equal(3, BinaryPrimitives.ReadInt16BigEndian(RawRecords().Last().Value));
        await _h.RestartAsync();
        AssertLegacyState();
    }

    private void AssertLegacyState()
    {
        var r = new OffsetFetchRequest { GroupId = "g1", Topics = [new OffsetFetchRequest.OffsetFetchRequestTopic { Name = "t", PartitionIndexes = [0, 1, 2] }] };
        var partitions = _h.Coordinator.OffsetFetch(r, 7).Topics[0].Partitions;
        Assert.Equal([(10L, 2, ""), (20L, 3, "m"), (-1L, -1, "")], partitions.Select(p => (p.CommittedOffset, p.CommittedLeaderEpoch, p.Metadata)).ToArray());
        var described = _h.Coordinator.DescribeGroups(new DescribeGroupsRequest { Groups = ["g1"] }, 5).Groups[0];
        Assert.Equal(("Stable", "consumer", "range"), (described.GroupState, described.ProtocolType, described.ProtocolData));
        var m = Assert.Single(described.Members);
        Assert.Equal(("m-1", "i-1", "c", "/10.0.0.1"), (m.MemberId, m.GroupInstanceId, m.ClientId, m.ClientHost));
        Assert.Equal(new byte[] { 0, 0, 9 }, m.MemberAssignment.ToArray());
        Assert.Equal(GroupTestHarness.Subscription("t"), m.MemberMetadata.ToArray());
    }
}
