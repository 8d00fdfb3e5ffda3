using StreamPlatform.Broker.Groups;
using StreamPlatform.Broker.Replication;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Broker.Transactions;
using StreamPlatform.UnitTests.Storage;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Transactions;

/// <summary>
/// The coordinator over a replicated __transaction_state partition: three replica-layer
/// <see cref="Partition"/>s on real logs, driven in-process with fake time. A state change is
/// answered only once the ISR has it; too small an ISR is COORDINATOR_NOT_AVAILABLE with nothing
/// changed; a follower that becomes leader loads the state and completes a decided commit.
/// </summary>
public sealed class ReplicatedTransactionStateTests : IDisposable
{
    private static readonly TopicPartition Tp = new("__transaction_state", 0);
    private readonly TransactionHarness _h = new();
    private readonly Dictionary<int, (TempDir Dir, Partition Partition)> _brokers = [];

    public ReplicatedTransactionStateTests()
    {
        foreach (var id in new[] { 1, 2, 3 })
        {
            var dir = new TempDir();
            _brokers[id] = (dir, new Partition(Tp, id, dir.Open(time: _h.Time, topic: Tp.Topic), _h.Time) { ReplicaLagTimeMaxMs = 10_000, MinInSyncReplicas = 2 });
        }
        var state = new PartitionState(1, 0, 0, [1, 2, 3], [1, 2, 3]);
        foreach (var (id, (_, p)) in _brokers)
            Assert.Equal(TransitionResult.Changed, id == 1 ? p.MakeLeader(state) : p.MakeFollower(state));
        _h.LoadNew(new OffsetsPartitionStore(B(1).Log, () => B(1)), coordinatorEpoch: 0);
    }

    public void Dispose()
    {
        foreach (var (dir, partition) in _brokers.Values)
        {
            partition.Log.Close();
            dir.Dispose();
        }
        _h.Dispose();
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

    private void Replicate()
    {
        for (var i = 0; i < 2; i++)
        {
            Fetch(2);
            Fetch(3);
        }
    }

    [Fact]
    public async Task A_state_change_is_answered_once_the_isr_has_it_and_a_new_leader_completes_a_decided_commit()
    {
        Fetch(2);
        Fetch(3);
        var init = _h.InitAsync("tx");
        await Task.Delay(50);
        Assert.False(init.IsCompleted); // the followers in the ISR do not have it yet
        Replicate();
        var p = await init.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal((ErrorCodes.None, (short)0), (p.ErrorCode, p.ProducerEpoch));

        var add = _h.AddAsync("tx", p.ProducerId, p.ProducerEpoch, ("t", 0), ("t", 1));
        await Task.Delay(20);
        Replicate();
        Assert.Equal(ErrorCodes.None, await add.WaitAsync(TimeSpan.FromSeconds(5)));
        _h.LeaderError = ErrorCodes.NotEnoughReplicas; // the markers cannot be written before the leader dies
        var end = _h.EndAsync("tx", p.ProducerId, p.ProducerEpoch, commit: true);
        await Task.Delay(20);
        Replicate();
        Assert.Equal(ErrorCodes.None, (await end.WaitAsync(TimeSpan.FromSeconds(5))).ErrorCode);
        Assert.Equal(TransactionState.PrepareCommit, _h.StateOf("tx"));

        // Broker 1 dies; broker 2 leads (epoch 1) and loads what was replicated to it.
        var moved = new PartitionState(2, 1, 1, [1, 2, 3], [2, 3]);
        Assert.Equal(TransitionResult.Changed, B(2).MakeLeader(moved));
        Assert.Equal(TransitionResult.Changed, B(3).MakeFollower(moved));
        _h.LeaderError = null;
        _h.LoadNew(new OffsetsPartitionStore(B(2).Log, () => B(2)), coordinatorEpoch: 1);
        Assert.Equal(TransactionState.PrepareCommit, _h.StateOf("tx"));
        for (var i = 0; i < 20 && _h.StateOf("tx") != TransactionState.CompleteCommit; i++)
        {
            await Task.Delay(20);
            Fetch(3, leader: 2);
            _h.Advance(100);
        }
        Assert.Equal(TransactionState.CompleteCommit, _h.StateOf("tx"));
        Assert.Equal(2, _h.Written.Count(w => w.Commit && w.CoordinatorEpoch == 1));
    }

    [Fact]
    public async Task Too_small_an_isr_is_COORDINATOR_NOT_AVAILABLE_and_changes_nothing()
    {
        var p = _h.InitAsync("tx");
        await Task.Delay(20);
        Replicate();
        var first = await p.WaitAsync(TimeSpan.FromSeconds(5));
        // The followers fall out of the ISR: below min.insync.replicas (2), nothing is written.
        Assert.Equal(TransitionResult.Updated, B(1).MakeLeader(new PartitionState(1, 0, 1, [1, 2, 3], [1])));
        var end = B(1).Log.LogEndOffset;
        var refused = await _h.InitAsync("tx");
        Assert.Equal(ErrorCodes.CoordinatorNotAvailable, refused.ErrorCode);
        Assert.Equal(end, B(1).Log.LogEndOffset);
        var txn = _h.Txn("tx");
        Assert.Equal((first.ProducerEpoch, (TransactionState?)null), (txn.ProducerEpoch, txn.PendingState));
    }
}
