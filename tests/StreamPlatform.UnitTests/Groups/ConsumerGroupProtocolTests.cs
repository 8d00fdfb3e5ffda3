using System.Buffers.Binary;
using System.Text;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Broker.Groups;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Kafka.Messages;
using Legacy = StreamPlatform.Protos.Grpc.Groups;

namespace StreamPlatform.UnitTests.Groups;

/// <summary>KIP-848: server-side assignors and the member reconciliation, with fake time and a real log.</summary>
public sealed class ConsumerGroupProtocolTests : IDisposable
{
    private static readonly Guid TopicA = Guid.Parse("00000000-0000-0000-0000-00000000000a");
    private static readonly Guid TopicB = Guid.Parse("00000000-0000-0000-0000-00000000000b");
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sp-cgroups-" + Guid.NewGuid().ToString("N"));
    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000));
    private readonly Dictionary<string, ServerAssignors.TopicMeta> _topics = new()
    {
        ["a"] = new("a", TopicA, 6),
        ["b"] = new("b", TopicB, 2),
    };
    private PartitionLog _log;
    private GroupCoordinator _coordinator;

    public ConsumerGroupProtocolTests()
    {
        Directory.CreateDirectory(_dir);
        (_log, _coordinator) = Start();
        _coordinator.LoadAsync(0, 0, new OffsetsPartitionStore(_log)).GetAwaiter().GetResult();
    }

    private GroupConfig _config = new() { OffsetsTopicPartitions = 1, ConsumerSessionTimeoutMs = 45_000, ConsumerHeartbeatIntervalMs = 5000 };

    private (PartitionLog, GroupCoordinator) Start()
    {
        var log = PartitionLog.Open(Path.Combine(_dir, "__consumer_offsets-0"), new TopicPartition("__consumer_offsets", 0), Guid.Empty, LogConfig.Default, _time, NullLogger.Instance);
        var coordinator = new GroupCoordinator(_time, () => _config, NullLogger.Instance)
        {
            TopicLookup = name => _topics.GetValueOrDefault(name),
            TopicNameById = id => _topics.Values.FirstOrDefault(t => t.Id == id)?.Name,
        };
        return (log, coordinator);
    }

    /// <summary>As after a broker restart: a new coordinator reads the same log from disk.</summary>
    private async Task RestartAsync()
    {
        _coordinator.Dispose();
        _log.Close();
        (_log, _coordinator) = Start();
        await _coordinator.LoadAsync(0, 1, new OffsetsPartitionStore(_log));
    }

    public void Dispose()
    {
        _coordinator.Dispose();
        _log.Close();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private ConsumerGroupHeartbeatResponse Heartbeat(string member, int epoch, IEnumerable<int>? ownedA = null, string[]? topics = null, string? assignor = null, short version = 1)
    {
        var request = new ConsumerGroupHeartbeatRequest
        {
            GroupId = "g", MemberId = member, MemberEpoch = epoch, RebalanceTimeoutMs = epoch == 0 ? 30_000 : -1,
            SubscribedTopicNames = epoch == 0 ? (topics ?? ["a"]).ToList() : topics?.ToList(), ServerAssignor = assignor,
        };
        if (ownedA is not null) request.TopicPartitions = [new ConsumerGroupHeartbeatRequest.TopicPartitionsData { TopicId = TopicA, Partitions = ownedA.ToList() }];
        else if (epoch == 0) request.TopicPartitions = [];
        return _coordinator.ConsumerGroupHeartbeat(request, version, "client", "/127.0.0.1");
    }

    private static int[] PartitionsOf(ConsumerGroupHeartbeatResponse r, Guid topic)
        => r.Assignment?.TopicPartitions.Where(t => t.TopicId == topic).SelectMany(t => t.Partitions).Order().ToArray() ?? [];

    [Fact]
    public void Range_assignor_gives_contiguous_ranges_in_member_order()
    {
        var target = ServerAssignors.AssignRange(
            new Dictionary<string, List<string>> { ["m1"] = ["a", "b"], ["m2"] = ["a", "b"], ["m3"] = ["a"] },
            _topics);
        Assert.Equal([0, 1], target["m1"][TopicA]);
        Assert.Equal([2, 3], target["m2"][TopicA]);
        Assert.Equal([4, 5], target["m3"][TopicA]);
        Assert.Equal([0], target["m1"][TopicB]);
        Assert.Equal([1], target["m2"][TopicB]);
        Assert.False(target["m3"].ContainsKey(TopicB));
    }

    [Fact]
    public void Uniform_assignor_balances_and_keeps_partitions_where_they_were()
    {
        var subs = new Dictionary<string, List<string>> { ["m1"] = ["a"], ["m2"] = ["a"] };
        var first = ServerAssignors.AssignUniform(subs, _topics, new Dictionary<string, TopicAssignment>());
        Assert.Equal(3, first["m1"].PartitionCount);
        Assert.Equal(3, first["m2"].PartitionCount);
        subs["m3"] = ["a"];
        var second = ServerAssignors.AssignUniform(subs, _topics, first);
        Assert.All(second.Values, a => Assert.Equal(2, a.PartitionCount));
        Assert.Subset(first["m1"].All.ToHashSet(), second["m1"].All.ToHashSet());
        Assert.Subset(first["m2"].All.ToHashSet(), second["m2"].All.ToHashSet());
        Assert.Equal(6, second.Values.SelectMany(a => a.All).Distinct().Count());
        // 7 partitions over 2 members: 4 + 3, never 4 + 4.
        var seven = new Dictionary<string, ServerAssignors.TopicMeta> { ["a"] = new("a", TopicA, 7) };
        var uneven = ServerAssignors.AssignUniform(new Dictionary<string, List<string>> { ["m1"] = ["a"], ["m2"] = ["a"] }, seven,
            new Dictionary<string, TopicAssignment> { ["m1"] = TopicAssignment.Of(Enumerable.Range(0, 4).Select(p => (TopicA, p))), ["m2"] = TopicAssignment.Of(Enumerable.Range(3, 4).Select(p => (TopicA, p))) });
        Assert.Equal(7, uneven.Values.Sum(a => a.PartitionCount));
        Assert.Equal([3, 4], uneven.Values.Select(a => a.PartitionCount).Order());
    }

    [Fact]
    public void Joining_member_gets_partitions_only_after_the_owner_revoked_them()
    {
        var a1 = Heartbeat("m1", 0);
        Assert.Equal(0, a1.ErrorCode);
        Assert.Equal(1, a1.MemberEpoch);
        Assert.Equal([0, 1, 2, 3, 4, 5], PartitionsOf(a1, TopicA));
        Assert.Equal(5000, a1.HeartbeatIntervalMs);

        var b1 = Heartbeat("m2", 0);
        Assert.Equal(2, b1.MemberEpoch); // at the new epoch, but everything is still owned by m1
        Assert.Empty(PartitionsOf(b1, TopicA));

        // m1 must revoke 3 partitions first, staying at epoch 1.
        var a2 = Heartbeat("m1", 1, ownedA: [0, 1, 2, 3, 4, 5]);
        Assert.Equal(1, a2.MemberEpoch);
        var kept = PartitionsOf(a2, TopicA);
        Assert.Equal(3, kept.Length);
        // Still reporting the revoked ones: nothing changes, m2 still waits.
        Assert.Equal(1, Heartbeat("m1", 1, ownedA: [0, 1, 2, 3, 4, 5]).MemberEpoch);
        Assert.Empty(PartitionsOf(Heartbeat("m2", 2, ownedA: []), TopicA));

        // m1 revoked: it moves to epoch 2; m2 can now have the released partitions.
        var a3 = Heartbeat("m1", 1, ownedA: kept);
        Assert.Equal(2, a3.MemberEpoch);
        var b2 = Heartbeat("m2", 2, ownedA: []);
        Assert.Equal([0, 1, 2, 3, 4, 5], kept.Concat(PartitionsOf(b2, TopicA)).Order().ToArray());

        var described = _coordinator.ConsumerGroupDescribe(new ConsumerGroupDescribeRequest { GroupIds = ["g", "missing"] }, 0);
        Assert.Equal("Stable", described.Groups[0].GroupState);
        Assert.Equal(2, described.Groups[0].GroupEpoch);
        Assert.Equal("uniform", described.Groups[0].AssignorName);
        Assert.Equal("a", described.Groups[0].Members[0].Assignment.TopicPartitions[0].TopicName);
        Assert.Equal((short)Protos.Kafka.Messages.ErrorCode.GroupIdNotFound, described.Groups[1].ErrorCode);
        Assert.Equal("consumer", Assert.Single(_coordinator.ListGroups(new ListGroupsRequest { TypesFilter = ["consumer"] }, 5).Groups).GroupType);
    }

    [Fact]
    public async Task Members_epochs_and_assignments_survive_a_restart_mid_reconciliation()
    {
        Heartbeat("m1", 0);
        Heartbeat("m2", 0);
        var kept = PartitionsOf(Heartbeat("m1", 1, ownedA: [0, 1, 2, 3, 4, 5]), TopicA); // m1 now revoking 3

        await RestartAsync();
        var described = _coordinator.ConsumerGroupDescribe(new ConsumerGroupDescribeRequest { GroupIds = ["g"] }, 0).Groups[0];
        Assert.Equal((2, 2, "Reconciling"), (described.GroupEpoch, described.AssignmentEpoch, described.GroupState));
        // m1 carries on at epoch 1 (no rejoin) and finishes its revocation; then m2 gets the rest.
        var a = Heartbeat("m1", 1, ownedA: kept);
        Assert.Equal(0, a.ErrorCode);
        Assert.Equal(2, a.MemberEpoch);
        var b = Heartbeat("m2", 2, ownedA: []);
        Assert.Equal(0, b.ErrorCode);
        Assert.Equal([0, 1, 2, 3, 4, 5], kept.Concat(PartitionsOf(b, TopicA)).Order().ToArray());

        // A member that left stays gone after another restart.
        Heartbeat("m2", -1);
        await RestartAsync();
        Assert.Equal((short)Protos.Kafka.Messages.ErrorCode.UnknownMemberId, Heartbeat("m2", 2, ownedA: []).ErrorCode);
        var alone = Heartbeat("m1", 2, ownedA: kept); // still at epoch 2: the leave moved the group to 3
        Assert.Equal((0, 3), ((int)alone.ErrorCode, alone.MemberEpoch));
        Assert.Equal([0, 1, 2, 3, 4, 5], PartitionsOf(alone, TopicA));
    }

    private List<(byte[] Key, byte[]? Value)> RawRecords()
    {
        var records = new List<(byte[], byte[]?)>();
        new OffsetsPartitionStore(_log).ReadAll((k, v) => records.Add((k.ToArray(), v?.ToArray())), CancellationToken.None);
        return records;
    }

    private static (short Type, string Group, string? Member) RawKey(byte[] key)
    {
        string ReadString(ref int pos)
        {
            var len = BinaryPrimitives.ReadInt16BigEndian(key.AsSpan(pos));
            var s = Encoding.UTF8.GetString(key, pos + 2, len);
            pos += 2 + len;
            return s;
        }
        var pos = 2;
        var group = ReadString(ref pos);
        return (BinaryPrimitives.ReadInt16BigEndian(key), group, pos < key.Length ? ReadString(ref pos) : null);
    }

    [Fact]
    public void A_consumer_group_is_written_as_kafkas_records_and_a_leave_tombstones_the_members()
    {
        Heartbeat("m1", 0);
        var byKey = RawRecords().GroupBy(r => RawKey(r.Key)).ToDictionary(g => g.Key, g => g.Last().Value);
        Assert.Equal(
            [(3, "g", null), (4, "g", null), (5, "g", "m1"), (6, "g", null), (7, "g", "m1"), (8, "g", "m1")],
            byKey.Keys.Select(k => ((int)k.Type, k.Group, k.Member)).Order().ToArray());
        // ConsumerGroupMetadataValue v0 (flexible): int32 epoch and an empty tagged-field section.
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0, 1, 0 }, byKey[(3, "g", null)]);
        // ConsumerGroupTargetAssignmentMetadataValue v0: int32 assignment epoch.
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0, 1, 0 }, byKey[(6, "g", null)]);
        // ConsumerGroupCurrentMemberAssignmentValue v0: member epoch 1, previous 0, state STABLE (0),
        // assigned: compact array of one (topic id, compact int32 array 0..5), no pending revocation.
        var current = byKey[(8, "g", "m1")]!;
        Assert.Equal((0, 1, 0, 0), (BinaryPrimitives.ReadInt16BigEndian(current), BinaryPrimitives.ReadInt32BigEndian(current.AsSpan(2)),
            BinaryPrimitives.ReadInt32BigEndian(current.AsSpan(6)), (int)current[10]));
        Assert.Equal(2, current[11]); // one topic
        Assert.Equal(TopicA, new Guid(current.AsSpan(12, 16), bigEndian: true));
        Assert.Equal(7, current[28]); // six partitions
        Assert.Equal(Enumerable.Range(0, 6), Enumerable.Range(0, 6).Select(i => BinaryPrimitives.ReadInt32BigEndian(current.AsSpan(29 + 4 * i))));

        Heartbeat("m1", -1);
        var after = RawRecords().GroupBy(r => RawKey(r.Key)).ToDictionary(g => g.Key, g => g.Last().Value);
        Assert.Null(after[(5, "g", "m1")]);
        Assert.Null(after[(7, "g", "m1")]);
        Assert.Null(after[(8, "g", "m1")]);
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0, 2, 0 }, after[(3, "g", null)]);
    }

    private static byte[] LegacyKey(short version, params string[] strings)
    {
        var bytes = new List<byte> { (byte)(version >> 8), (byte)version };
        foreach (var s in strings)
        {
            var utf8 = Encoding.UTF8.GetBytes(s);
            bytes.Add((byte)(utf8.Length >> 8));
            bytes.Add((byte)utf8.Length);
            bytes.AddRange(utf8);
        }
        return bytes.ToArray();
    }

    private static Legacy.TopicPartitionsValue LegacyPartitions(Guid topic, params int[] partitions)
    {
        var bytes = new byte[16];
        topic.TryWriteBytes(bytes, bigEndian: true, out _);
        var v = new Legacy.TopicPartitionsValue { TopicId = ByteString.CopyFrom(bytes) };
        v.Partitions.AddRange(partitions);
        return v;
    }

    [Fact]
    public async Task A_consumer_group_in_the_earlier_protobuf_format_loads_to_the_same_state_and_its_legacy_records_go_on_change()
    {
        _coordinator.Dispose();
        _log.Close();
        (_log, _coordinator) = Start();
        var group = new Legacy.ConsumerGroupValue { GroupEpoch = 5, AssignmentEpoch = 5, AssignorName = "range" };
        var target = new Legacy.MemberTargetValue { MemberId = "m1" };
        target.Target.Add(LegacyPartitions(TopicA, 0, 1, 2, 3, 4, 5));
        group.Targets.Add(target);
        group.SubscriptionMetadata["a"] = 6;
        var member = new Legacy.ConsumerMemberValue
        {
            ClientId = "c", ClientHost = "/10.0.0.9", RebalanceTimeoutMs = 30_000, ServerAssignor = "range", MemberEpoch = 5, PreviousMemberEpoch = 4,
        };
        member.SubscribedTopics.Add("a");
        member.Assigned.Add(LegacyPartitions(TopicA, 0, 1, 2, 3, 4, 5));
        Assert.Equal(0, new OffsetsPartitionStore(_log).Append(
        [
            (LegacyKey(3, "g"), GroupRecordFormatTests.LegacyValue(group)),
            (LegacyKey(4, "g", "m1"), GroupRecordFormatTests.LegacyValue(member)),
        ], 1_700_000_000_000).ErrorCode);
        await _coordinator.LoadAsync(0, 1, new OffsetsPartitionStore(_log));
        AssertLegacyState();

        // A second member joins: the group is written in Kafka's format, the legacy member record gets its tombstone.
        Heartbeat("m2", 0, topics: ["a"], assignor: "range");
        Assert.Contains(RawRecords(), r => RawKey(r.Key) == (4, "g", "m1") && r.Value is null);
        await RestartAsync();
        var described = _coordinator.ConsumerGroupDescribe(new ConsumerGroupDescribeRequest { GroupIds = ["g"] }, 0).Groups[0];
        Assert.Equal((6, 6, "range"), (described.GroupEpoch, described.AssignmentEpoch, described.AssignorName));
        var m1 = described.Members.Single(m => m.MemberId == "m1");
        // (Its heartbeat above came from another client address: a heartbeat updates them.)
        Assert.Equal((5, "client", "/127.0.0.1"), (m1.MemberEpoch, m1.ClientId, m1.ClientHost));
        Assert.Equal([0, 1, 2, 3, 4, 5], m1.Assignment.TopicPartitions.Single().Partitions);
        Assert.Equal([0, 1, 2], m1.TargetAssignment.TopicPartitions.Single().Partitions);
        Assert.Contains(described.Members, m => m.MemberId == "m2");
    }

    private void AssertLegacyState()
    {
        var described = _coordinator.ConsumerGroupDescribe(new ConsumerGroupDescribeRequest { GroupIds = ["g"] }, 0).Groups[0];
        Assert.Equal((0, "Stable", 5, 5, "range"), ((int)described.ErrorCode, described.GroupState, described.GroupEpoch, described.AssignmentEpoch, described.AssignorName));
        var m = Assert.Single(described.Members);
        Assert.Equal(("m1", 5, "c", "/10.0.0.9"), (m.MemberId, m.MemberEpoch, m.ClientId, m.ClientHost));
        Assert.Equal(["a"], m.SubscribedTopicNames);
        Assert.Equal("a", m.Assignment.TopicPartitions.Single().TopicName);
        Assert.Equal([0, 1, 2, 3, 4, 5], m.Assignment.TopicPartitions.Single().Partitions);
        Assert.Equal([0, 1, 2, 3, 4, 5], m.TargetAssignment.TopicPartitions.Single().Partitions);
        // The member carries on at its epoch without rejoining.
        var heartbeat = Heartbeat("m1", 5, ownedA: [0, 1, 2, 3, 4, 5]);
        Assert.Equal((0, 5), ((int)heartbeat.ErrorCode, heartbeat.MemberEpoch));
    }

    private ConsumerGroupHeartbeatResponse StaticHeartbeat(string member, string instance, int epoch, IEnumerable<int>? ownedA = null)
    {
        var request = new ConsumerGroupHeartbeatRequest
        {
            GroupId = "g", MemberId = member, MemberEpoch = epoch, InstanceId = instance, RebalanceTimeoutMs = epoch == 0 ? 30_000 : -1,
            SubscribedTopicNames = epoch == 0 ? ["a"] : null, TopicPartitions = epoch == 0 ? [] : null,
        };
        if (ownedA is not null) request.TopicPartitions = [new ConsumerGroupHeartbeatRequest.TopicPartitionsData { TopicId = TopicA, Partitions = ownedA.ToList() }];
        return _coordinator.ConsumerGroupHeartbeat(request, 1, "client", "/127.0.0.1");
    }

    [Fact]
    public void Static_member_restart_takes_over_its_partitions_without_a_new_group_epoch()
    {
        StaticHeartbeat("s1-a", "s1", 0);
        StaticHeartbeat("s2-a", "s2", 0);
        var kept = PartitionsOf(StaticHeartbeat("s1-a", "s1", 1, ownedA: [0, 1, 2, 3, 4, 5]), TopicA);
        StaticHeartbeat("s1-a", "s1", 1, ownedA: kept);
        var other = PartitionsOf(StaticHeartbeat("s2-a", "s2", 2, ownedA: []), TopicA);
        Assert.Equal(3, other.Length);
        var groupEpoch = _coordinator.ConsumerGroupDescribe(new ConsumerGroupDescribeRequest { GroupIds = ["g"] }, 0).Groups[0].GroupEpoch;

        // While s1 is still active, another process with its instance id is refused.
        Assert.Equal((short)Protos.Kafka.Messages.ErrorCode.UnreleasedInstanceId, StaticHeartbeat("s1-b", "s1", 0).ErrorCode);
        // s1 shuts down for a restart (-2): its partitions stay reserved for it.
        Assert.Equal(-2, StaticHeartbeat("s1-a", "s1", -2).MemberEpoch);
        Assert.Null(StaticHeartbeat("s2-a", "s2", 2, ownedA: other).Assignment);
        var back = StaticHeartbeat("s1-b", "s1", 0);
        Assert.Equal(0, back.ErrorCode);
        Assert.Equal(2, back.MemberEpoch);
        Assert.Equal(kept, PartitionsOf(back, TopicA));
        Assert.Equal(groupEpoch, _coordinator.ConsumerGroupDescribe(new ConsumerGroupDescribeRequest { GroupIds = ["g"] }, 0).Groups[0].GroupEpoch);
        Assert.Equal((short)Protos.Kafka.Messages.ErrorCode.UnknownMemberId, StaticHeartbeat("s1-a", "s1", 2, ownedA: kept).ErrorCode);
    }

    [Fact]
    public void Stale_and_future_epochs_are_fenced_and_unknown_members_rejoin()
    {
        Heartbeat("m1", 0);
        Assert.Equal((short)Protos.Kafka.Messages.ErrorCode.FencedMemberEpoch, Heartbeat("m1", 7, ownedA: []).ErrorCode);
        Assert.Equal((short)Protos.Kafka.Messages.ErrorCode.UnknownMemberId, Heartbeat("ghost", 3).ErrorCode);
        Assert.Equal((short)Protos.Kafka.Messages.ErrorCode.InvalidRequest, Heartbeat("", 0).ErrorCode);
        Assert.Equal((short)Protos.Kafka.Messages.ErrorCode.UnsupportedAssignor, Heartbeat("m3", 0, assignor: "sticky").ErrorCode);
        // v0: the coordinator makes up the member id.
        var v0 = Heartbeat("", 0, version: 0);
        Assert.Equal(0, v0.ErrorCode);
        Assert.False(string.IsNullOrEmpty(v0.MemberId));
    }

    [Fact]
    public void Session_timeout_and_leave_free_partitions_for_the_others()
    {
        Heartbeat("m1", 0);
        var b = Heartbeat("m2", 0);
        var kept = PartitionsOf(Heartbeat("m1", 1, ownedA: [0, 1, 2, 3, 4, 5]), TopicA);
        Heartbeat("m1", 1, ownedA: kept);
        Heartbeat("m2", b.MemberEpoch, ownedA: []);
        // m2 leaves: m1 gets everything at the next epoch.
        Assert.Equal(-1, Heartbeat("m2", -1).MemberEpoch);
        var all = Heartbeat("m1", 2, ownedA: kept);
        Assert.Equal(3, all.MemberEpoch);
        Assert.Equal([0, 1, 2, 3, 4, 5], PartitionsOf(all, TopicA));
        // m1 goes silent past the session timeout: the group is empty.
        _time.Advance(TimeSpan.FromMilliseconds(45_001));
        Assert.Equal("Empty", _coordinator.ConsumerGroupDescribe(new ConsumerGroupDescribeRequest { GroupIds = ["g"] }, 0).Groups[0].GroupState);
        Assert.Equal((short)Protos.Kafka.Messages.ErrorCode.UnknownMemberId, Heartbeat("m1", 3, ownedA: []).ErrorCode);
    }

    [Fact]
    public void A_group_config_from_metadata_sets_that_groups_session_timeout_and_heartbeat_interval()
    {
        // GROUP config resource "g" (AlterConfigs, KIP-848) as the metadata carries it; "other" has none.
        var brokerConfigs = new Dictionary<string, string> { ["offsets.topic.num.partitions"] = "1" };
        var set = new Protos.Grpc.ConfigSet { Name = "g" };
        set.Configs["consumer.session.timeout.ms"] = "50000";
        set.Configs["consumer.heartbeat.interval.ms"] = "6000";
        _config = GroupConfig.From(brokerConfigs, [set]);
        Assert.Equal((45_000, 5000), (_config.ConsumerSessionTimeoutMsOf("other"), _config.ConsumerHeartbeatIntervalMsOf("other")));

        var joined = Heartbeat("m1", 0);
        Assert.Equal(6000, joined.HeartbeatIntervalMs);
        // Past the broker default (45 s) but within the group's 50 s: still a member.
        _time.Advance(TimeSpan.FromMilliseconds(45_001));
        Assert.Equal("Stable", _coordinator.ConsumerGroupDescribe(new ConsumerGroupDescribeRequest { GroupIds = ["g"] }, 0).Groups[0].GroupState);
        _time.Advance(TimeSpan.FromMilliseconds(5_000));
        Assert.Equal("Empty", _coordinator.ConsumerGroupDescribe(new ConsumerGroupDescribeRequest { GroupIds = ["g"] }, 0).Groups[0].GroupState);
    }

    [Fact]
    public async Task Offset_commit_and_fetch_check_the_member_epoch()
    {
        var r = Heartbeat("m1", 0);
        OffsetCommitResponse Commit(string member, int epoch, short version = 9) => _coordinator.OffsetCommit(new OffsetCommitRequest
        {
            GroupId = "g", MemberId = member, GenerationIdOrMemberEpoch = epoch,
            Topics = [new() { Name = "a", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 10 }] }],
        }, version);
        Assert.Equal(0, Commit("m1", r.MemberEpoch).Topics[0].Partitions[0].ErrorCode);
        Assert.Equal((short)Protos.Kafka.Messages.ErrorCode.StaleMemberEpoch, Commit("m1", r.MemberEpoch - 1).Topics[0].Partitions[0].ErrorCode);
        Assert.Equal((short)Protos.Kafka.Messages.ErrorCode.FencedMemberEpoch, Commit("m1", r.MemberEpoch + 1).Topics[0].Partitions[0].ErrorCode);
        Assert.Equal((short)Protos.Kafka.Messages.ErrorCode.UnknownMemberId, Commit("ghost", 1).Topics[0].Partitions[0].ErrorCode);
        Assert.Equal(0, Commit("", -1).Topics[0].Partitions[0].ErrorCode); // admin commit
        var fetch = _coordinator.OffsetFetch(new OffsetFetchRequest
        {
            Groups = [new() { GroupId = "g", MemberId = "m1", MemberEpoch = r.MemberEpoch - 1, Topics = null }],
        }, 9);
        Assert.Equal((short)Protos.Kafka.Messages.ErrorCode.StaleMemberEpoch, fetch.Groups[0].ErrorCode);
        var ok = _coordinator.OffsetFetch(new OffsetFetchRequest
        {
            Groups = [new() { GroupId = "g", MemberId = "m1", MemberEpoch = r.MemberEpoch, Topics = null }],
        }, 9);
        Assert.Equal(10, ok.Groups[0].Topics[0].Partitions[0].CommittedOffset);
        // A classic member cannot join a consumer-protocol group that has members.
        var join = await _coordinator.JoinGroupAsync(GroupTestHarness.Join("g"), 9, "c", "h");
        Assert.Equal((short)Protos.Kafka.Messages.ErrorCode.InconsistentGroupProtocol, join.ErrorCode);
        Assert.Equal((short)Protos.Kafka.Messages.ErrorCode.NonEmptyGroup, _coordinator.DeleteGroups(new DeleteGroupsRequest { GroupsNames = ["g"] }, 2).Results[0].ErrorCode);
    }
}
