using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Broker.Groups;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Groups;

/// <summary>
/// A coordinator over a real partition log in a temp folder, with fake time. One offsets
/// partition by default, so every group lands on partition 0.
/// </summary>
internal sealed class GroupTestHarness : IDisposable
{
    public const long T0 = 1_700_000_000_000;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sp-groups-" + Guid.NewGuid().ToString("N"));
    private PartitionLog? _log;

    public GroupTestHarness(GroupConfig? config = null)
    {
        Config = config ?? new GroupConfig { OffsetsTopicPartitions = 1, InitialRebalanceDelayMs = 0, MinSessionTimeoutMs = 1000 };
        Directory.CreateDirectory(_dir);
        Time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(T0));
        Coordinator = NewCoordinator();
    }

    public FakeTimeProvider Time { get; }
    public GroupConfig Config { get; set; }
    public GroupCoordinator Coordinator { get; private set; }
    public HashSet<(string, int)> UnknownPartitions { get; } = [];
    /// <summary>The __consumer_offsets log's config (set before the log is first opened).</summary>
    public LogConfig LogConfig { get; set; } = LogConfig.Default;

    private GroupCoordinator NewCoordinator()
        => new(Time, () => Config, NullLogger.Instance, (t, p) => !UnknownPartitions.Contains((t, p)));

    public PartitionLog OpenLog()
    {
        _log ??= PartitionLog.Open(Path.Combine(_dir, "__consumer_offsets-0"), new TopicPartition("__consumer_offsets", 0), Guid.Empty,
            LogConfig, Time, NullLogger.Instance);
        return _log;
    }

    public async Task LoadAsync(int epoch = 0) => await Coordinator.LoadAsync(0, epoch, new OffsetsPartitionStore(OpenLog()));

    /// <summary>A new coordinator (as after a broker restart) reading the same log from disk.</summary>
    public async Task RestartAsync()
    {
        Coordinator.Dispose();
        _log?.Close();
        _log = null;
        Coordinator = NewCoordinator();
        await LoadAsync(1);
    }

    public void Advance(int ms) => Time.Advance(TimeSpan.FromMilliseconds(ms));

    public static byte[] Subscription(params string[] topics)
    {
        var s = new ConsumerProtocolSubscription();
        s.Topics.AddRange(topics);
        var bytes = new byte[2 + s.ComputeSize(0)];
        var writer = new KafkaWriter(bytes.AsSpan(2));
        s.Write(ref writer, 0);
        return bytes; // version 0 in the first two bytes (already zero)
    }

    public static JoinGroupRequest Join(string group, string memberId = "", string? instance = null, int sessionMs = 10_000, int rebalanceMs = 30_000,
        byte[]? metadata = null, string protocol = "range")
    {
        var r = new JoinGroupRequest
        {
            GroupId = group, MemberId = memberId, GroupInstanceId = instance, SessionTimeoutMs = sessionMs, RebalanceTimeoutMs = rebalanceMs,
            ProtocolType = "consumer",
        };
        r.Protocols.Add(new JoinGroupRequest.JoinGroupRequestProtocol { Name = protocol, Metadata = metadata ?? Subscription("t") });
        return r;
    }

    public Task<JoinGroupResponse> JoinAsync(JoinGroupRequest request, short version = 9) => Coordinator.JoinGroupAsync(request, version, "client", "/127.0.0.1");

    /// <summary>The KIP-394 dance: first join gets MEMBER_ID_REQUIRED and an id, the second join carries it.</summary>
    public async Task<(string MemberId, Task<JoinGroupResponse> Join)> JoinNewAsync(string group, string? instance = null, int sessionMs = 10_000, int rebalanceMs = 30_000, byte[]? metadata = null)
    {
        if (instance is not null)
        {
            // Static members skip MEMBER_ID_REQUIRED: they are identified by their instance id.
            var join = JoinAsync(Join(group, "", instance, sessionMs, rebalanceMs, metadata));
            return ("", join);
        }
        var first = await JoinAsync(Join(group, "", null, sessionMs, rebalanceMs, metadata));
        Assert.Equal((short)ErrorCode.MemberIdRequired, first.ErrorCode);
        Assert.False(string.IsNullOrEmpty(first.MemberId));
        return (first.MemberId, JoinAsync(Join(group, first.MemberId, null, sessionMs, rebalanceMs, metadata)));
    }

    public Task<SyncGroupResponse> SyncAsync(string group, string memberId, int generation, params (string Member, byte[] Assignment)[] assignments)
    {
        var r = new SyncGroupRequest { GroupId = group, MemberId = memberId, GenerationId = generation, ProtocolType = "consumer", ProtocolName = "range" };
        foreach (var (m, a) in assignments) r.Assignments.Add(new SyncGroupRequest.SyncGroupRequestAssignment { MemberId = m, Assignment = a });
        return Coordinator.SyncGroupAsync(r, 5);
    }

    public short Heartbeat(string group, string memberId, int generation, string? instance = null)
        => Coordinator.Heartbeat(new HeartbeatRequest { GroupId = group, MemberId = memberId, GenerationId = generation, GroupInstanceId = instance }, 4).ErrorCode;

    public OffsetCommitResponse Commit(string group, int generation, string memberId, string topic, int partition, long offset, string? metadata = "", short version = 8)
    {
        var r = new OffsetCommitRequest { GroupId = group, GenerationIdOrMemberEpoch = generation, MemberId = memberId };
        var t = new OffsetCommitRequest.OffsetCommitRequestTopic { Name = topic };
        t.Partitions.Add(new OffsetCommitRequest.OffsetCommitRequestPartition { PartitionIndex = partition, CommittedOffset = offset, CommittedLeaderEpoch = 3, CommittedMetadata = metadata });
        r.Topics.Add(t);
        return Coordinator.OffsetCommit(r, version);
    }

    public static short CommitError(OffsetCommitResponse r) => r.Topics[0].Partitions[0].ErrorCode;

    public long Fetch(string group, string topic, int partition)
    {
        var r = new OffsetFetchRequest { GroupId = group, Topics = [new OffsetFetchRequest.OffsetFetchRequestTopic { Name = topic, PartitionIndexes = [partition] }] };
        var response = Coordinator.OffsetFetch(r, 7);
        Assert.Equal(0, response.ErrorCode);
        return response.Topics[0].Partitions[0].CommittedOffset;
    }

    public string StateOf(string group)
        => Coordinator.DescribeGroups(new DescribeGroupsRequest { Groups = [group] }, 5).Groups[0].GroupState;

    public void Dispose()
    {
        Coordinator.Dispose();
        _log?.Close();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
