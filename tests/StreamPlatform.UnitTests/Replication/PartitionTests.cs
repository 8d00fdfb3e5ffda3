using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Broker.Replication;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Broker.Transactions;
using StreamPlatform.Protos.Records;
using StreamPlatform.UnitTests.Storage;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Replication;

/// <summary>
/// The replica state machine with real logs in temp directories and deterministic time: leader
/// and follower <see cref="Partition"/>s driven against each other in-process (the leader's
/// <see cref="Partition.ReadForFollower"/> answer handed to the follower's
/// <see cref="Partition.ApplyFromLeader"/>, as the replication stream does).
/// </summary>
public sealed class PartitionTests : IDisposable
{
    private const long T0 = 1_700_000_000_000;
    private static readonly TopicPartition Tp = new("t", 0);
    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(T0));
    private readonly Dictionary<int, (TempDir Dir, Partition Partition)> _brokers = [];

    public PartitionTests()
    {
        foreach (var id in new[] { 1, 2, 3 })
        {
            var dir = new TempDir();
            _brokers[id] = (dir, new Partition(Tp, id, dir.Open(time: _time), _time) { ReplicaLagTimeMaxMs = 10_000 });
        }
    }

    public void Dispose()
    {
        foreach (var (dir, partition) in _brokers.Values)
        {
            partition.Log.Close();
            dir.Dispose();
        }
    }

    private Partition B(int id) => _brokers[id].Partition;

    private static PartitionState State(int leader, int leaderEpoch, int partitionEpoch, params int[] isr) => new(leader, leaderEpoch, partitionEpoch, [1, 2, 3], isr);

    /// <summary>Makes <paramref name="leader"/> lead and the others follow it.</summary>
    private void Elect(int leader, int leaderEpoch, int partitionEpoch, params int[] isr)
    {
        var state = State(leader, leaderEpoch, partitionEpoch, isr);
        foreach (var (id, (_, partition)) in _brokers)
            Assert.Equal(TransitionResult.Changed, id == leader ? partition.MakeLeader(state) : partition.MakeFollower(state));
    }

    /// <summary>One fetch round trip of <paramref name="follower"/> from <paramref name="leader"/>; returns the follower's outcome.</summary>
    private short Fetch(int follower, int leader)
    {
        var f = B(follower);
        var (offset, lastEpoch) = f.FetchPosition();
        var answer = B(leader).ReadForFollower(follower, 1, offset, lastEpoch, f.LeaderEpoch, 1 << 20, minOneBatch: true);
        var data = new LeaderFetchData(answer.ErrorCode, answer.HighWatermark, answer.LogStartOffset, answer.LogEndOffset,
            answer.DivergingEpoch, answer.DivergingEndOffset, answer.Read is { Length: > 0 } read ? read.ToArray() : ReadOnlyMemory<byte>.Empty);
        return f.ApplyFromLeader(f.LeaderEpoch, data);
    }

    private static LeaderAppendResult Append(Partition p, int acks, CancellationToken timeout = default, params string[] values)
        => p.AppendAsLeader(TestBatches.Build(T0, values.Length == 0 ? ["v"] : values), acks, timeout, crcVerified: false);

    private static byte[] WholeLog(Partition p) => p.Log.Read(p.Log.LogStartOffset, int.MaxValue, maxOffsetExclusive: long.MaxValue).ToArray();

    [Fact]
    public async Task A_leader_alone_in_the_isr_commits_at_once()
    {
        Elect(1, 0, 0, 1);
        Assert.Equal(ReplicaRole.Leader, B(1).Role);
        Assert.True(B(1).Log.ReplicatedHighWatermark);
        var appended = Append(B(1), -1, default, "a", "b");
        Assert.Equal(ErrorCodes.None, appended.Append.ErrorCode);
        Assert.Equal(ErrorCodes.None, await appended.Commit!.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(2, B(1).HighWatermark);
    }

    [Fact]
    public void The_high_watermark_is_the_minimum_over_the_isr_and_never_goes_back()
    {
        Elect(1, 0, 0, 1, 2, 3);
        Append(B(1), 1, default, "a", "b", "c");
        Assert.Equal(0, B(1).HighWatermark);
        Assert.Equal(ErrorCodes.None, Fetch(2, 1)); // 2 gets the records
        Assert.Equal(ErrorCodes.None, Fetch(2, 1)); // and tells the leader it has them
        Assert.Equal(0, B(1).HighWatermark); // 3 has not fetched yet: its offset is unknown
        Assert.Equal(ErrorCodes.None, Fetch(3, 1));
        Assert.Equal(0, B(1).HighWatermark);
        Assert.Equal(ErrorCodes.None, Fetch(3, 1));
        Assert.Equal(3, B(1).HighWatermark);
        // The followers learn it with their next answer.
        Fetch(2, 1);
        Assert.Equal(3, B(2).HighWatermark);
        // A fetch from an older offset (a follower restarted from an older state) does not lower it.
        var stale = B(1).ReadForFollower(3, 1, 1, B(3).Log.LatestEpoch, 0, 1 << 20, true);
        Assert.Equal(ErrorCodes.None, stale.ErrorCode);
        Assert.Equal(3, B(1).HighWatermark);
    }

    [Fact]
    public async Task Acks_all_completes_when_the_isr_has_the_records_or_times_out()
    {
        Elect(1, 0, 0, 1, 2);
        B(1).MinInSyncReplicas = 2;
        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(1000), _time);
        var first = Append(B(1), -1, timeout.Token, "a");
        Assert.False(first.Commit!.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(1001));
        Assert.Equal(ErrorCodes.RequestTimedOut, await first.Commit.WaitAsync(TimeSpan.FromSeconds(5)));

        var second = Append(B(1), -1, CancellationToken.None, "b");
        Assert.False(second.Commit!.IsCompleted);
        Fetch(2, 1); // records to the follower
        Assert.False(second.Commit.IsCompleted);
        Fetch(2, 1); // its next fetch says it has them
        Assert.Equal(ErrorCodes.None, await second.Commit.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(2, B(1).HighWatermark);
    }

    [Fact]
    public async Task Acks_all_is_refused_before_appending_below_min_insync_replicas_and_fails_when_the_isr_shrank_meanwhile()
    {
        Elect(1, 0, 0, 1);
        B(1).MinInSyncReplicas = 2;
        var refused = Append(B(1), -1);
        Assert.Equal(ErrorCodes.NotEnoughReplicas, refused.Append.ErrorCode);
        Assert.Null(refused.Commit);
        Assert.Equal(0, B(1).Log.LogEndOffset);
        // acks=1 does not care.
        Assert.Equal(ErrorCodes.None, Append(B(1), 1).Append.ErrorCode);

        // ISR {1,2}: accepted, then 2 leaves the ISR before it fetched: committed by the leader alone, too few.
        Assert.Equal(TransitionResult.Updated, B(1).MakeLeader(State(1, 0, 1, 1, 2)));
        var waiting = Append(B(1), -1);
        Assert.Equal(ErrorCodes.None, waiting.Append.ErrorCode);
        Assert.False(waiting.Commit!.IsCompleted);
        Assert.Equal(TransitionResult.Updated, B(1).MakeLeader(State(1, 0, 2, 1)));
        Assert.Equal(ErrorCodes.NotEnoughReplicasAfterAppend, await waiting.Commit.WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task A_leader_that_steps_down_answers_its_waiters_not_leader()
    {
        Elect(1, 0, 0, 1, 2);
        var waiting = Append(B(1), -1);
        Assert.False(waiting.Commit!.IsCompleted);
        Assert.Equal(TransitionResult.Changed, B(1).MakeFollower(State(2, 1, 1, 2)));
        Assert.Equal(ErrorCodes.NotLeaderOrFollower, await waiting.Commit.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(ErrorCodes.NotLeaderOrFollower, Append(B(1), 1).Append.ErrorCode);
    }

    [Fact]
    public void Stale_leader_epochs_are_refused_and_fenced()
    {
        Assert.Equal(TransitionResult.Changed, B(1).MakeLeader(State(1, 5, 7, 1, 2, 3)));
        Assert.Equal(TransitionResult.Stale, B(1).MakeFollower(State(2, 4, 8, 2)));
        Assert.Equal(TransitionResult.Stale, B(1).MakeLeader(State(1, 5, 6, 1)));
        Assert.Equal(TransitionResult.Unchanged, B(1).MakeLeader(State(1, 5, 7, 1, 2, 3)));
        // Same epoch, another leader: inconsistent, refused.
        Assert.Equal(TransitionResult.Stale, B(1).MakeFollower(State(2, 5, 8, 2)));
        Assert.Equal(ReplicaRole.Leader, B(1).Role);
        Assert.Equal(5, B(1).LeaderEpoch);
        Assert.Equal(ErrorCodes.FencedLeaderEpoch, B(1).CheckLeader(4));
        Assert.Equal(ErrorCodes.UnknownLeaderEpoch, B(1).CheckLeader(6));
        Assert.Equal(ErrorCodes.None, B(1).CheckLeader(5));
        Assert.Equal(ErrorCodes.None, B(1).CheckLeader(-1));
        // A follower's fetch in an old epoch is fenced and changes nothing.
        Assert.Equal(ErrorCodes.FencedLeaderEpoch, B(1).ReadForFollower(2, 1, 0, -1, 4, 1 << 20, true).ErrorCode);
        Assert.Equal(-1, B(1).Follower(2)!.LogEndOffset);
        // A broker that is not a replica gets no data.
        Assert.Equal(ErrorCodes.NotLeaderOrFollower, B(1).ReadForFollower(9, 1, 0, -1, 5, 1 << 20, true).ErrorCode);
        // Followers: an answer for an old epoch is dropped.
        Assert.Equal(TransitionResult.Changed, B(2).MakeFollower(State(1, 5, 7, 1, 2, 3)));
        Assert.Equal(ErrorCodes.NotLeaderOrFollower, B(2).ApplyFromLeader(4, new LeaderFetchData(0, 0, 0, 0, -1, -1, TestBatches.Build(T0, "x"))));
        Assert.Equal(0, B(2).Log.LogEndOffset);
    }

    [Fact]
    public void A_follower_that_stops_catching_up_is_proposed_out_of_the_isr_after_the_lag_time()
    {
        Elect(1, 0, 0, 1, 2, 3);
        var proposed = 0;
        B(1).IsrChangeProposed = _ => proposed++;
        Append(B(1), 1, default, "a");
        Fetch(2, 1);
        Fetch(3, 1);
        Fetch(2, 1);
        Fetch(3, 1);
        Assert.Equal(1, B(1).HighWatermark);
        Append(B(1), 1, default, "b");
        // 2 keeps fetching, 3 is gone: it was last caught up at T0, so it is out once 10 s passed.
        int? proposedAtSeconds = null;
        for (var s = 1; s <= 12; s++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            Fetch(2, 1);
            if (B(1).MaybeChangeIsr(_time.GetUtcNow().ToUnixTimeMilliseconds())) proposedAtSeconds ??= s;
        }
        Assert.Equal(11, proposedAtSeconds);
        var proposal = B(1).PendingIsrChange;
        Assert.NotNull(proposal);
        Assert.Equal([1, 2], proposal.NewIsr);
        Assert.Equal(1, proposed);
        // Until the controller commits it, 3 still holds the high watermark back (maximal ISR).
        Assert.Equal([1, 2, 3], B(1).MaximalIsr.Order());
        Assert.Equal(1, B(1).HighWatermark);
        B(1).CompleteIsrChange(proposal, ErrorCodes.None, State(1, 0, 1, 1, 2));
        Assert.Equal([1, 2], B(1).Isr);
        Assert.Null(B(1).PendingIsrChange);
        Assert.Equal(2, B(1).HighWatermark);
    }

    [Fact]
    public void A_follower_that_caught_up_is_proposed_into_the_isr_and_counts_at_once()
    {
        Elect(1, 0, 0, 1, 2);
        IsrProposal? proposal = null;
        B(1).IsrChangeProposed = p => proposal = p.PendingIsrChange;
        Append(B(1), 1, default, "a", "b");
        Fetch(2, 1);
        Fetch(2, 1);
        Assert.Equal(2, B(1).HighWatermark);
        Append(B(1), 1, default, "c");
        Fetch(3, 1); // 3 fetches from 0: below the high watermark, not in sync yet
        Assert.Null(proposal);
        Fetch(3, 1); // now at 3 >= high watermark 2
        Assert.NotNull(proposal);
        Assert.Equal([1, 2, 3], proposal.NewIsr.Order());
        // Pending expansion: 3 counts for the high watermark already (Kafka's maximal ISR).
        Assert.Equal([1, 2, 3], B(1).MaximalIsr.Order());
        Assert.Equal([1, 2], B(1).Isr.Order());
        // A refused change (here: stale partition epoch) leaves the committed ISR; a later check proposes again.
        B(1).CompleteIsrChange(proposal, ErrorCodes.InvalidUpdateVersion, null);
        Assert.Equal([1, 2], B(1).MaximalIsr.Order());
        Assert.True(B(1).MaybeChangeIsr(_time.GetUtcNow().ToUnixTimeMilliseconds()));
        B(1).CompleteIsrChange(B(1).PendingIsrChange!, ErrorCodes.None, State(1, 0, 1, 1, 2, 3));
        Assert.Equal([1, 2, 3], B(1).Isr.Order());
    }

    [Fact]
    public void Logs_that_diverged_across_a_leader_change_end_identical()
    {
        // Epoch 0: 1 leads, everyone gets offsets 0-2.
        Elect(1, 0, 0, 1, 2, 3);
        Append(B(1), 1, default, "a", "b", "c");
        Fetch(2, 1);
        Fetch(3, 1);
        // 1 appends 3-4 that nobody fetches, then loses leadership to 2 (epoch 1), which appends 3-5 of its own.
        Append(B(1), 1, default, "lost-1");
        Append(B(1), 1, default, "lost-2");
        Assert.Equal(5, B(1).Log.LogEndOffset);
        Elect(2, 1, 1, 2, 3);
        Append(B(2), 1, default, "x", "y", "z");
        Assert.Equal(6, B(2).Log.LogEndOffset);
        // 1 fetches at 5 with last epoch 0: the leader's epoch 0 ends at 3 -> diverging, truncate to 3.
        var (offset, lastEpoch) = B(1).FetchPosition();
        Assert.Equal((5L, 0), (offset, lastEpoch));
        var answer = B(2).ReadForFollower(1, 1, offset, lastEpoch, 1, 1 << 20, true);
        Assert.True(answer.Diverging);
        Assert.Equal((0, 3L), (answer.DivergingEpoch, answer.DivergingEndOffset));
        Assert.Equal(ErrorCodes.None, Fetch(1, 2));
        Assert.Equal(3, B(1).Log.LogEndOffset);
        // Then it fetches 3-5 of epoch 1; 3 catches up too.
        Assert.Equal(ErrorCodes.None, Fetch(1, 2));
        Assert.Equal(ErrorCodes.None, Fetch(3, 2));
        Assert.Equal(6, B(1).Log.LogEndOffset);
        Assert.Equal(WholeLog(B(2)), WholeLog(B(1)));
        Assert.Equal(WholeLog(B(2)), WholeLog(B(3)));
        Assert.Equal(1, B(1).Log.LatestEpoch);
    }

    [Fact]
    public void A_follower_behind_the_leaders_log_start_starts_over_there()
    {
        // The leader deleted the records below 2: an empty follower starts its log over at 2.
        Elect(2, 0, 0, 2);
        Append(B(2), 1, default, "a", "b");
        Append(B(2), 1, default, "c", "d");
        Assert.Equal(ErrorCodes.None, B(2).Log.DeleteRecordsBefore(2).ErrorCode);
        Assert.Equal(ErrorCodes.None, Fetch(3, 2)); // OFFSET_OUT_OF_RANGE -> start over at 2
        Assert.Equal(2, B(3).Log.LogStartOffset);
        Assert.Equal(ErrorCodes.None, Fetch(3, 2));
        Assert.Equal(4, B(3).Log.LogEndOffset);
        // Later deletions on the leader move the follower's log start too.
        Assert.Equal(ErrorCodes.None, B(2).Log.DeleteRecordsBefore(3).ErrorCode);
        Assert.Equal(ErrorCodes.None, Fetch(3, 2));
        Assert.Equal((3L, 4L), (B(3).Log.LogStartOffset, B(3).Log.HighWatermark));
    }

    private static string ProducerStateOf(Partition p) => string.Join(";", p.Log.ProducerState.ActiveProducers().OrderBy(e => e.ProducerId)
        .Select(e => $"{e}/{string.Join(",", e.Batches)}"));

    [Fact]
    public void Followers_build_the_leaders_producer_state_and_a_new_leader_deduplicates_a_retry()
    {
        Elect(1, 0, 0, 1, 2, 3);
        var first = ProducerBatches.Data(10, 0, 0, records: 2);
        Assert.Equal(0, B(1).AppendAsLeader(first, 1, default).Append.FirstOffset);
        Assert.Equal(2, B(1).AppendAsLeader(ProducerBatches.Data(11, 0, 0, transactional: true), 1, default).Append.FirstOffset);
        Assert.Equal(ErrorCodes.None, B(1).AppendAsLeader(ProducerBatches.Marker(11, 0, ControlRecordType.Abort), 1, default, origin: AppendOrigin.TransactionMarker).Append.ErrorCode);
        foreach (var f in new[] { 2, 3 }) { Fetch(f, 1); Fetch(f, 1); }
        Assert.Equal(ProducerStateOf(B(1)), ProducerStateOf(B(2)));
        Assert.Equal(ProducerStateOf(B(1)), ProducerStateOf(B(3)));
        Assert.Equal(B(1).Log.AbortedTransactions(0, 4), B(2).Log.AbortedTransactions(0, 4));

        // Leadership moves; the producer retries its unanswered batch there: same offsets, nothing appended.
        Elect(2, 1, 1, 1, 2, 3);
        var retried = B(2).AppendAsLeader(first, 1, default).Append;
        Assert.Equal((ErrorCodes.None, 0L, 1L), (retried.ErrorCode, retried.FirstOffset, retried.LastOffset));
        Assert.Equal(4, B(2).Log.LogEndOffset);
        Assert.Equal(ErrorCodes.OutOfOrderSequenceNumber, B(2).AppendAsLeader(ProducerBatches.Data(10, 0, 5), 1, default).Append.ErrorCode);
        Assert.Equal(4, B(2).AppendAsLeader(ProducerBatches.Data(10, 0, 2), 1, default).Append.FirstOffset);
    }

    [Fact]
    public void A_follower_truncating_a_diverged_transactional_batch_forgets_that_transaction()
    {
        Elect(1, 0, 0, 1, 2, 3);
        B(1).AppendAsLeader(ProducerBatches.Data(10, 0, 0), 1, default);
        foreach (var f in new[] { 2, 3 }) { Fetch(f, 1); Fetch(f, 1); }
        // Only broker 2 gets the uncommitted start of a transaction before broker 1 dies.
        B(1).AppendAsLeader(ProducerBatches.Data(11, 0, 0, transactional: true), 1, default);
        Fetch(2, 1);
        Assert.True(B(2).Log.ProducerState.HasOngoingTransaction(11));
        Elect(3, 1, 1, 2, 3);
        B(3).AppendAsLeader(ProducerBatches.Data(10, 0, 1), 1, default);
        for (var i = 0; i < 3; i++) Fetch(2, 3);
        Assert.Equal(WholeLog(B(3)), WholeLog(B(2)));
        Assert.False(B(2).Log.ProducerState.HasOngoingTransaction(11));
        Assert.Equal(ProducerStateOf(B(3)), ProducerStateOf(B(2)));
        Assert.Equal(B(2).Log.HighWatermark, B(2).Log.LastStableOffset);
    }
}
