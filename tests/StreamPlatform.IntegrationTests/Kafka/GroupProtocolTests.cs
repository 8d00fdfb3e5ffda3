using StreamPlatform.IntegrationTests.Infrastructure;
using StreamPlatform.Protos.Kafka.Messages;
using Xunit.Abstractions;
using KafkaError = StreamPlatform.Protos.Kafka.Messages.ErrorCode;

namespace StreamPlatform.IntegrationTests.Kafka;

/// <summary>The group APIs on the wire, request by request, at chosen versions (what clients cannot be made to send).</summary>
[Collection(ClusterCollection.Name)]
public sealed class GroupProtocolTests : IDisposable
{
    private readonly ClusterFixture _fixture;
    private readonly IDisposable _attach;

    public GroupProtocolTests(ClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    private string Bootstrap => _fixture.BootstrapServers;

    /// <summary>Retries while the coordinator is being created or loaded, as clients do.</summary>
    private static async Task<T> UntilCoordinatorReadyAsync<T>(Func<Task<T>> call, Func<T, short> error)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var r = await call();
            var e = (KafkaError)error(r);
            if (e is not (KafkaError.CoordinatorNotAvailable or KafkaError.CoordinatorLoadInProgress or KafkaError.NotCoordinator) || DateTime.UtcNow > deadline) return r;
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task FindCoordinatorSingleAndBatchedKeys()
    {
        await using var connection = await RawKafkaConnection.ConnectAsync(Bootstrap);
        var v0 = await UntilCoordinatorReadyAsync(() => connection.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = "raw-group" }, 0), r => r.ErrorCode);
        Assert.Equal(0, v0.ErrorCode);
        var metadata = await connection.SendAsync<MetadataResponse>(new MetadataRequest { Topics = [] }, 9);
        var gateway = Assert.Single(metadata.Brokers, b => b.NodeId == v0.NodeId);
        Assert.Equal((gateway.Host, gateway.Port), (v0.Host, v0.Port));

        var v4 = await connection.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyType = 0, CoordinatorKeys = ["a", "b"] }, 4);
        Assert.Equal(["a", "b"], v4.Coordinators.Select(c => c.Key));
        Assert.All(v4.Coordinators, c => Assert.Equal(0, c.ErrorCode));
        // Key type 1 (transactional id): __transaction_state is created on first use, then the
        // coordinator is a gateway of the cluster, like a group's.
        var txn = await UntilCoordinatorReadyAsync(
            () => connection.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { KeyType = 1, CoordinatorKeys = ["t"] }, 4),
            r => Assert.Single(r.Coordinators).ErrorCode);
        var txnCoordinator = Assert.Single(txn.Coordinators);
        Assert.Equal(("t", (short)0), (txnCoordinator.Key, txnCoordinator.ErrorCode));
        Assert.Contains(metadata.Brokers, b => (b.NodeId, b.Host, b.Port) == (txnCoordinator.NodeId, txnCoordinator.Host, txnCoordinator.Port));

        // Both coordinator topics are internal in Metadata.
        var all = await connection.SendAsync<MetadataResponse>(new MetadataRequest { Topics = null }, 9);
        Assert.True(Assert.Single(all.Topics, t => t.Name == "__consumer_offsets").IsInternal);
        Assert.True(Assert.Single(all.Topics, t => t.Name == "__transaction_state").IsInternal);
    }

    [Fact]
    public async Task ClassicGroupLifecycleOnTheWire()
    {
        var group = KafkaHelpers.UniqueTopic("rawg");
        var topic = KafkaHelpers.UniqueTopic("rawt");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 2);
        await using var connection = await RawKafkaConnection.ConnectAsync(Bootstrap);
        JoinGroupRequest Join(string memberId) => new()
        {
            GroupId = group, MemberId = memberId, SessionTimeoutMs = 10_000, RebalanceTimeoutMs = 10_000, ProtocolType = "consumer",
            Protocols = [new JoinGroupRequest.JoinGroupRequestProtocol { Name = "range", Metadata = new byte[] { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 } }],
        };

        // As clients do: find the coordinator first (the first FindCoordinator creates __consumer_offsets).
        var found = await UntilCoordinatorReadyAsync(() => connection.SendAsync<FindCoordinatorResponse>(new FindCoordinatorRequest { Key = group }, 3), r => r.ErrorCode);
        Assert.Equal(0, found.ErrorCode);
        var invalid = await connection.SendAsync<JoinGroupResponse>(new JoinGroupRequest { GroupId = "", ProtocolType = "consumer", SessionTimeoutMs = 10_000 }, 5);
        Assert.Equal((short)KafkaError.InvalidGroupId, invalid.ErrorCode);
        var tooShort = Join("");
        tooShort.SessionTimeoutMs = 1;
        var badSession = await UntilCoordinatorReadyAsync(() => connection.SendAsync<JoinGroupResponse>(tooShort, 5), r => r.ErrorCode);
        Assert.Equal((short)KafkaError.InvalidSessionTimeout, badSession.ErrorCode);

        var first = await connection.SendAsync<JoinGroupResponse>(Join(""), 5);
        Assert.Equal((short)KafkaError.MemberIdRequired, first.ErrorCode);
        var joined = await connection.SendAsync<JoinGroupResponse>(Join(first.MemberId), 5);
        Assert.Equal(0, joined.ErrorCode);
        Assert.Equal(first.MemberId, joined.Leader);
        var sync = await connection.SendAsync<SyncGroupResponse>(new SyncGroupRequest
        {
            GroupId = group, GenerationId = joined.GenerationId, MemberId = joined.MemberId,
            Assignments = [new SyncGroupRequest.SyncGroupRequestAssignment { MemberId = joined.MemberId, Assignment = new byte[] { 1, 2 } }],
        }, 3);
        Assert.Equal(new byte[] { 1, 2 }, sync.Assignment.ToArray());
        var heartbeat = await connection.SendAsync<HeartbeatResponse>(new HeartbeatRequest { GroupId = group, GenerationId = joined.GenerationId, MemberId = joined.MemberId }, 3);
        Assert.Equal(0, heartbeat.ErrorCode);
        var stale = await connection.SendAsync<HeartbeatResponse>(new HeartbeatRequest { GroupId = group, GenerationId = joined.GenerationId + 5, MemberId = joined.MemberId }, 3);
        Assert.Equal((short)KafkaError.IllegalGeneration, stale.ErrorCode);

        var commit = await connection.SendAsync<OffsetCommitResponse>(new OffsetCommitRequest
        {
            GroupId = group, GenerationIdOrMemberEpoch = joined.GenerationId, MemberId = joined.MemberId,
            Topics = [new OffsetCommitRequest.OffsetCommitRequestTopic
            {
                Name = topic,
                Partitions = [new OffsetCommitRequest.OffsetCommitRequestPartition { PartitionIndex = 1, CommittedOffset = 42, CommittedMetadata = "m" }],
            }],
        }, 7);
        Assert.Equal(0, commit.Topics[0].Partitions[0].ErrorCode);

        var fetch = await connection.SendAsync<OffsetFetchResponse>(new OffsetFetchRequest
        {
            Groups =
            [
                new OffsetFetchRequest.OffsetFetchRequestGroup { GroupId = group, Topics = null },
                new OffsetFetchRequest.OffsetFetchRequestGroup { GroupId = group + "-none", Topics = [new() { Name = topic, PartitionIndexes = [0] }] },
            ],
        }, 8);
        var mine = fetch.Groups[0].Topics.Single(t => t.Name == topic).Partitions.Single();
        Assert.Equal((1, 42L, "m"), (mine.PartitionIndex, mine.CommittedOffset, mine.Metadata));
        Assert.Equal(-1, fetch.Groups[1].Topics[0].Partitions[0].CommittedOffset);

        var described = await connection.SendAsync<DescribeGroupsResponse>(new DescribeGroupsRequest { Groups = [group] }, 5);
        Assert.Equal("Stable", described.Groups[0].GroupState);
        var listed = await connection.SendAsync<ListGroupsResponse>(new ListGroupsRequest { StatesFilter = ["Stable"] }, 4);
        Assert.Contains(listed.Groups, g => g.GroupId == group);

        var notEmpty = await connection.SendAsync<DeleteGroupsResponse>(new DeleteGroupsRequest { GroupsNames = [group] }, 2);
        Assert.Equal((short)KafkaError.NonEmptyGroup, notEmpty.Results[0].ErrorCode);
        var leave = await connection.SendAsync<LeaveGroupResponse>(new LeaveGroupRequest
        {
            GroupId = group, Members = [new LeaveGroupRequest.MemberIdentity { MemberId = joined.MemberId }, new LeaveGroupRequest.MemberIdentity { MemberId = "ghost" }],
        }, 3);
        Assert.Equal([(short)0, (short)KafkaError.UnknownMemberId], leave.Members.Select(m => m.ErrorCode));
        var deleted = await connection.SendAsync<DeleteGroupsResponse>(new DeleteGroupsRequest { GroupsNames = [group, group + "-none"] }, 2);
        Assert.Equal([(short)0, (short)KafkaError.GroupIdNotFound], deleted.Results.Select(r => r.ErrorCode));
    }
}
