using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Broker.Groups;
using StreamPlatform.Broker.Replication;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.UnitTests.Storage;

namespace StreamPlatform.UnitTests.Groups;

/// <summary>
/// The coordinator over a replicated __consumer_offsets partition: three replica-layer
/// <see cref="Partition"/>s on real logs, driven in-process with fake time, the coordinator on
/// the leader. A commit is answered only once the followers in the ISR have it; it fails as
/// Kafka's coordinator fails (COORDINATOR_NOT_AVAILABLE on commit timeout or too small an ISR,
/// NOT_COORDINATOR when leadership is lost while waiting).
/// </summary>
public sealed class ReplicatedCoordinatorTests : IAsyncLifetime
{
    private const long T0 = 1_700_000_000_000;
    private static readonly TopicPartition Tp = new("__consumer_offsets", 0);
    private static readonly TimeSpan Soon = TimeSpan.FromSeconds(5);
    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(T0));
    private readonly Dictionary<int, (TempDir Dir, Partition Partition)> _brokers = [];
    private readonly GroupConfig _config = new() { OffsetsTopicPartitions = 1, InitialRebalanceDelayMs = 0, OffsetsCommitTimeoutMs = 5000 };
    private GroupCoordinator _coordinator = null!;

    public async Task InitializeAsync()
    {
        foreach (var id in new[] { 1, 2, 3 })
        {
            var dir = new TempDir();
            _brokers[id] = (dir, new Partition(Tp, id, dir.Open(time: _time, topic: Tp.Topic), _time) { ReplicaLagTimeMaxMs = 10_000, MinInSyncReplicas = 2 });
        }
        var state = new PartitionState(1, 0, 0, [1, 2, 3], [1, 2, 3]);
        foreach (var (id, (_, p)) in _brokers)
            Assert.Equal(TransitionResult.Changed, id == 1 ? p.MakeLeader(state) : p.MakeFollower(state));
        _coordinator = new GroupCoordinator(_time, () => _config, NullLogger.Instance);
        await _coordinator.LoadAsync(0, 0, new OffsetsPartitionStore(B(1).Log, () => B(1)));
    }

    public Task DisposeAsync()
    {
        _coordinator.Dispose();
        foreach (var (dir, partition) in _brokers.Values)
        {
            partition.Log.Close();
            dir.Dispose();
        }
        return Task.CompletedTask;
    }

    private Partition B(int id) => _brokers[id].Partition;

    /// <summary>One fetch round trip of a follower from the leader (as the replication stream does).</summary>
    private void Fetch(int follower, int leader = 1)
    {
        var f = B(follower);
        var (offset, lastEpoch) = f.FetchPosition();
        var answer = B(leader).ReadForFollower(follower, 1, offset, lastEpoch, f.LeaderEpoch, 1 << 20, minOneBatch: true);
        var data = new LeaderFetchData(answer.ErrorCode, answer.HighWatermark, answer.LogStartOffset, answer.LogEndOffset,
            answer.DivergingEpoch, answer.DivergingEndOffset, answer.Read is { Length: > 0 } read ? read.ToArray() : ReadOnlyMemory<byte>.Empty);
        Assert.Equal(0, f.ApplyFromLeader(f.LeaderEpoch, data));
    }

    private short Commit(long offset)
    {
        var request = new OffsetCommitRequest { GroupId = "g", GenerationIdOrMemberEpoch = -1, MemberId = "" };
        request.Topics.Add(new OffsetCommitRequest.OffsetCommitRequestTopic
        {
            Name = "t", Partitions = { new OffsetCommitRequest.OffsetCommitRequestPartition { PartitionIndex = 0, CommittedOffset = offset } },
        });
        return _coordinator.OffsetCommit(request, 8).Topics[0].Partitions[0].ErrorCode;
    }

    [Fact]
    public async Task A_commit_is_answered_once_every_follower_in_the_isr_has_it()
    {
        Fetch(2);
        Fetch(3); // the followers' offsets are known to the leader
        Assert.Equal(0, Commit(42));
        var answered = _coordinator.WaitCommittedAsync(["g"], CancellationToken.None);
        Fetch(2);
        Fetch(2);
        await Task.Delay(50);
        Assert.False(answered.IsCompleted); // broker 3 (in the ISR) does not have it yet
        Fetch(3);
        Fetch(3);
        Assert.Equal(ErrorCode.None, await answered.WaitAsync(Soon));
        Assert.Equal(B(1).Log.LogEndOffset, B(1).HighWatermark);
    }

    [Fact]
    public async Task A_commit_not_replicated_within_the_commit_timeout_is_coordinator_not_available()
    {
        Assert.Equal(0, Commit(42));
        var answered = _coordinator.WaitCommittedAsync(["g"], CancellationToken.None);
        _time.Advance(TimeSpan.FromMilliseconds(4999));
        await Task.Delay(50);
        Assert.False(answered.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(ErrorCode.CoordinatorNotAvailable, await answered.WaitAsync(Soon));
    }

    [Fact]
    public async Task An_isr_below_min_insync_replicas_refuses_the_commit_before_writing_it()
    {
        B(1).MinInSyncReplicas = 4;
        var end = B(1).Log.LogEndOffset;
        Assert.Equal((short)ErrorCode.CoordinatorNotAvailable, Commit(42));
        Assert.Equal(end, B(1).Log.LogEndOffset);
        // Nothing pending: nothing to wait for.
        Assert.Equal(ErrorCode.None, await _coordinator.WaitCommittedAsync(["g"], CancellationToken.None).WaitAsync(Soon));
    }

    [Fact]
    public async Task Leadership_lost_while_a_commit_waits_is_not_coordinator()
    {
        Assert.Equal(0, Commit(42));
        var answered = _coordinator.WaitCommittedAsync(["g"], CancellationToken.None);
        // The controller elects broker 2: broker 1 steps down and its waiting commits fail.
        var state = new PartitionState(2, 1, 1, [1, 2, 3], [2, 3]);
        Assert.Equal(TransitionResult.Changed, B(1).MakeFollower(state));
        Assert.Equal(ErrorCode.NotCoordinator, await answered.WaitAsync(Soon));
        // And the next write here is refused as NOT_COORDINATOR (the client finds the new coordinator).
        Assert.Equal((short)ErrorCode.NotCoordinator, Commit(43));
    }
}
