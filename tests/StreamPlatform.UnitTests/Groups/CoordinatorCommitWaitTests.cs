using StreamPlatform.Broker.Groups;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Groups;

/// <summary>
/// A coordinator write is answered only once the partition's high watermark passed it. The wait
/// is written against the log's high watermark and its advance signal, so it is tested here by
/// waiting for an offset the high watermark has not reached yet (what a write on a replicated
/// partition looks like before its followers caught up), with fake time.
/// </summary>
public sealed class CoordinatorCommitWaitTests : IDisposable
{
    private readonly GroupTestHarness _h = new();

    public void Dispose() => _h.Dispose();

    private static readonly TimeSpan Timeout = TimeSpan.FromMilliseconds(5000);

    private static (byte[], byte[]?)[] Record(string key) => [(System.Text.Encoding.UTF8.GetBytes(key), [1])];

    [Fact]
    public async Task The_wait_ends_when_the_high_watermark_reaches_the_offset_and_not_before()
    {
        var store = new OffsetsPartitionStore(_h.OpenLog());
        var first = store.Append(Record("a"), GroupTestHarness.T0);
        Assert.Equal(0, first.ErrorCode);
        Assert.Equal(1, first.EndOffset);
        Assert.Equal(CommitWaitResult.Committed, await store.WaitCommittedAsync(first.EndOffset, Timeout, _h.Time, CancellationToken.None));

        // Two offsets further than the high watermark: one advance is not enough, the second is.
        var waiting = store.WaitCommittedAsync(3, Timeout, _h.Time, CancellationToken.None);
        await Task.Delay(50);
        Assert.False(waiting.IsCompleted);
        store.Append(Record("b"), GroupTestHarness.T0);
        await Task.Delay(50);
        Assert.False(waiting.IsCompleted);
        store.Append(Record("c"), GroupTestHarness.T0);
        Assert.Equal(CommitWaitResult.Committed, await waiting.WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task Without_an_advance_the_wait_times_out_after_the_commit_timeout()
    {
        var store = new OffsetsPartitionStore(_h.OpenLog());
        store.Append(Record("a"), GroupTestHarness.T0);
        var waiting = store.WaitCommittedAsync(2, Timeout, _h.Time, CancellationToken.None);
        _h.Advance(4999);
        await Task.Delay(50);
        Assert.False(waiting.IsCompleted);
        _h.Advance(1);
        Assert.Equal(CommitWaitResult.TimedOut, await waiting.WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task A_closed_log_or_a_cancelled_wait_ends_it_at_once()
    {
        var store = new OffsetsPartitionStore(_h.OpenLog());
        store.Append(Record("a"), GroupTestHarness.T0);
        using var cancel = new CancellationTokenSource();
        var cancelled = store.WaitCommittedAsync(2, Timeout, _h.Time, cancel.Token);
        await cancel.CancelAsync();
        Assert.Equal(CommitWaitResult.Cancelled, await cancelled.WaitAsync(TimeSpan.FromSeconds(5)));

        var closing = store.WaitCommittedAsync(2, Timeout, _h.Time, CancellationToken.None);
        store.Log.Close();
        Assert.Equal(CommitWaitResult.LogClosed, await closing.WaitAsync(TimeSpan.FromSeconds(5)));
        // And a wait that starts on the closed log does not spin or hang.
        Assert.Equal(CommitWaitResult.LogClosed, await store.WaitCommittedAsync(2, Timeout, _h.Time, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public void Append_errors_map_to_the_coordinator_errors_kafka_answers()
    {
        // GroupMetadataManager / CoordinatorRuntime: a moved leader or a broken log sends the
        // client to look the coordinator up again; replication trouble is retriable in place.
        Assert.Equal(ErrorCode.NotCoordinator, GroupCoordinator.AppendErrorToCoordinatorError(ErrorCodes.NotLeaderOrFollower, false));
        Assert.Equal(ErrorCode.NotCoordinator, GroupCoordinator.AppendErrorToCoordinatorError(ErrorCodes.KafkaStorageError, false));
        Assert.Equal(ErrorCode.CoordinatorNotAvailable, GroupCoordinator.AppendErrorToCoordinatorError(ErrorCodes.NotEnoughReplicas, false));
        Assert.Equal(ErrorCode.CoordinatorNotAvailable, GroupCoordinator.AppendErrorToCoordinatorError(ErrorCodes.NotEnoughReplicasAfterAppend, true));
        Assert.Equal(ErrorCode.CoordinatorNotAvailable, GroupCoordinator.AppendErrorToCoordinatorError(ErrorCodes.RequestTimedOut, true));
        Assert.Equal(ErrorCode.InvalidCommitOffsetSize, GroupCoordinator.AppendErrorToCoordinatorError(ErrorCodes.MessageTooLarge, true));
        Assert.Equal(ErrorCode.UnknownServerError, GroupCoordinator.AppendErrorToCoordinatorError(ErrorCodes.MessageTooLarge, false));
    }

    [Fact]
    public async Task A_commit_is_answered_after_its_write_and_survives_a_reload()
    {
        await _h.LoadAsync();
        var commit = new OffsetCommitRequest { GroupId = "g", GenerationIdOrMemberEpoch = -1, MemberId = "" };
        commit.Topics.Add(new OffsetCommitRequest.OffsetCommitRequestTopic
        {
            Name = "t", Partitions = { new OffsetCommitRequest.OffsetCommitRequestPartition { PartitionIndex = 0, CommittedOffset = 42 } },
        });
        var response = _h.Coordinator.OffsetCommit(commit, 8);
        Assert.Equal(0, response.Topics[0].Partitions[0].ErrorCode);
        var log = _h.OpenLog();
        // The response may leave once the high watermark covers the whole log written so far.
        Assert.Equal(ErrorCode.None, await _h.Coordinator.WaitCommittedAsync(["g"], CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(log.LogEndOffset, log.HighWatermark);
        await _h.RestartAsync();
        Assert.Equal(42, _h.Fetch("g", "t", 0));
    }
}
