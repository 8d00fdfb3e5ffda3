using Microsoft.Extensions.Logging.Abstractions;
using StreamPlatform.Broker.Groups;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Broker.Transactions;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.UnitTests.Groups;

/// <summary>
/// TxnOffsetCommit on the real coordinator over a real __consumer_offsets log with fake time:
/// the offsets are written as the producer's transactional batch and stay pending until the
/// producer's COMMIT or ABORT marker is in the log and reported (as the broker's WriteTxnMarkers
/// does through <see cref="ITransactionMarkerObserver"/>); a load replays markers the same way.
/// </summary>
public sealed class TransactionalOffsetCommitTests : IDisposable
{
    private const long P1 = 1000, P2 = 2000, P3 = 3000;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private static readonly TopicPartition OffsetsTp = new("__consumer_offsets", 0);
    private readonly GroupTestHarness _h = new();

    public void Dispose() => _h.Dispose();

    private TxnOffsetCommitResponse TxnCommit(string group, long producerId, params (string Topic, int Partition, long Offset)[] offsets)
        => TxnCommit(new TxnOffsetCommitRequest { TransactionalId = "tx-" + producerId, GroupId = group, ProducerId = producerId, ProducerEpoch = 0 }, 4, offsets);

    private TxnOffsetCommitResponse TxnCommit(TxnOffsetCommitRequest request, short version, params (string Topic, int Partition, long Offset)[] offsets)
    {
        foreach (var byTopic in offsets.GroupBy(o => o.Topic))
        {
            var t = new TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic { Name = byTopic.Key };
            foreach (var (_, partition, offset) in byTopic)
                t.Partitions.Add(new TxnOffsetCommitRequest.TxnOffsetCommitRequestPartition { PartitionIndex = partition, CommittedOffset = offset, CommittedLeaderEpoch = 2, CommittedMetadata = "m" });
            request.Topics.Add(t);
        }
        return _h.Coordinator.TxnOffsetCommitAsync(request, version, CancellationToken.None).WaitAsync(Wait).GetAwaiter().GetResult();
    }

    private static ErrorCode[] Errors(TxnOffsetCommitResponse response) => response.Topics.SelectMany(t => t.Partitions).Select(p => (ErrorCode)p.ErrorCode).ToArray();

    /// <summary>The marker as the broker writes it (control batch of the producer), then reported to the coordinator.</summary>
    private long Marker(long producerId, bool commit, bool report = true, short epoch = 0)
    {
        var log = _h.OpenLog();
        using var writer = new PooledBufferWriter(128);
        RecordBatchBuilder.BuildControlBatch(writer, commit ? ControlRecordType.Commit : ControlRecordType.Abort, producerId, epoch, coordinatorEpoch: 0, GroupTestHarness.T0);
        var appended = log.Append(writer.WrittenMemory, origin: AppendOrigin.TransactionMarker);
        Assert.Equal(0, appended.ErrorCode);
        if (report) _h.Coordinator.OnTransactionCompleted(OffsetsTp, producerId, commit, appended.LastOffset);
        return appended.LastOffset;
    }

    /// <summary>OffsetFetch v7 with require_stable: (error, offset) of one partition.</summary>
    private (short Error, long Offset) FetchStable(string group, string topic, int partition)
    {
        var response = _h.Coordinator.OffsetFetch(new OffsetFetchRequest
        {
            GroupId = group, RequireStable = true, Topics = [new OffsetFetchRequest.OffsetFetchRequestTopic { Name = topic, PartitionIndexes = [partition] }],
        }, 7);
        Assert.Equal(0, response.ErrorCode);
        var p = response.Topics[0].Partitions[0];
        return (p.ErrorCode, p.CommittedOffset);
    }

    [Fact]
    public async Task Pending_offsets_are_invisible_until_the_commit_marker_then_committed()
    {
        await _h.LoadAsync();
        Assert.Equal(0, GroupTestHarness.CommitError(_h.Commit("g", -1, "", "t", 0, 5)));
        Assert.Equal([ErrorCode.None, ErrorCode.None], Errors(TxnCommit("g", P1, ("t", 0, 10), ("t", 1, 20))));

        Assert.Equal(5, _h.Fetch("g", "t", 0));
        Assert.Equal(-1, _h.Fetch("g", "t", 1));
        Assert.Equal(((short)ErrorCode.UnstableOffsetCommit, -1L), FetchStable("g", "t", 0));
        Assert.Equal(((short)ErrorCode.UnstableOffsetCommit, -1L), FetchStable("g", "t", 1));
        Assert.Equal((0, -1L), FetchStable("g", "t", 2)); // no transaction holds it

        Marker(P1, commit: true);
        Assert.Equal(10, _h.Fetch("g", "t", 0));
        Assert.Equal(20, _h.Fetch("g", "t", 1));
        Assert.Equal((0, 10L), FetchStable("g", "t", 0));
        // The fetch-all form (v8, all partitions) sees them too, stable.
        var all = _h.Coordinator.OffsetFetch(new OffsetFetchRequest { Groups = [new() { GroupId = "g", Topics = null }], RequireStable = true }, 8);
        Assert.Equal([(0, 10L, (short)0), (1, 20L, (short)0)], all.Groups[0].Topics[0].Partitions.Select(p => (p.PartitionIndex, p.CommittedOffset, p.ErrorCode)).ToArray());
    }

    [Fact]
    public async Task The_offsets_are_one_transactional_batch_of_the_producer_without_sequence()
    {
        await _h.LoadAsync();
        var request = new TxnOffsetCommitRequest { TransactionalId = "tx", GroupId = "g", ProducerId = P1, ProducerEpoch = 7 };
        Assert.Equal([ErrorCode.None, ErrorCode.None, ErrorCode.None], Errors(TxnCommit(request, 3, ("a", 0, 1), ("a", 1, 2), ("b", 0, 3))));
        var log = _h.OpenLog();
        var read = log.Read(0, 1 << 20, minOneBatch: true, maxOffsetExclusive: log.LogEndOffset);
        var batches = RecordBatchReader.ReadAll(read.ToArray());
        var batch = Assert.Single(batches);
        using (batch)
        {
            Assert.True(batch.IsTransactional);
            Assert.False(batch.IsControl);
            Assert.Equal((P1, (short)7, -1), (batch.ProducerId, batch.ProducerEpoch, batch.BaseSequence));
            Assert.Equal(3, batch.Records.Count);
        }
    }

    [Fact]
    public async Task Abort_drops_the_pending_offsets_and_the_committed_ones_stay()
    {
        await _h.LoadAsync();
        Assert.Equal(0, GroupTestHarness.CommitError(_h.Commit("g", -1, "", "t", 0, 5)));
        TxnCommit("g", P1, ("t", 0, 10), ("t", 1, 20));
        Marker(P1, commit: false);
        Assert.Equal(5, _h.Fetch("g", "t", 0));
        Assert.Equal(-1, _h.Fetch("g", "t", 1));
        Assert.Equal((0, 5L), FetchStable("g", "t", 0));
        // A second marker for the same producer finds nothing.
        Marker(P1, commit: true);
        Assert.Equal(5, _h.Fetch("g", "t", 0));
    }

    [Fact]
    public async Task A_plain_commit_written_after_the_transactional_one_wins_and_one_written_before_loses()
    {
        await _h.LoadAsync();
        TxnCommit("g", P1, ("t", 0, 10));
        Assert.Equal(0, GroupTestHarness.CommitError(_h.Commit("g", -1, "", "t", 0, 7))); // later in the log
        Marker(P1, commit: true);
        Assert.Equal(7, _h.Fetch("g", "t", 0));

        Assert.Equal(0, GroupTestHarness.CommitError(_h.Commit("g", -1, "", "t", 1, 3))); // earlier in the log
        TxnCommit("g", P2, ("t", 1, 30));
        Marker(P2, commit: true);
        Assert.Equal(30, _h.Fetch("g", "t", 1));

        // The same holds after a load (record offsets come from the log).
        await _h.RestartAsync();
        Assert.Equal(7, _h.Fetch("g", "t", 0));
        Assert.Equal(30, _h.Fetch("g", "t", 1));
    }

    [Fact]
    public async Task One_marker_completes_the_producers_offsets_of_every_group_of_the_partition_and_no_other_producers()
    {
        await _h.LoadAsync();
        TxnCommit("g1", P1, ("t", 0, 11));
        TxnCommit("g2", P1, ("t", 0, 12));
        TxnCommit("g3", P2, ("t", 0, 13));
        Marker(P1, commit: true);
        Assert.Equal(11, _h.Fetch("g1", "t", 0));
        Assert.Equal(12, _h.Fetch("g2", "t", 0));
        Assert.Equal(-1, _h.Fetch("g3", "t", 0));
        Assert.Equal(((short)ErrorCode.UnstableOffsetCommit, -1L), FetchStable("g3", "t", 0));
    }

    [Fact]
    public async Task A_restart_replays_committed_aborted_and_open_transactions_and_control_batches_do_not_break_the_load()
    {
        await _h.LoadAsync();
        var (member, join) = await _h.JoinNewAsync("classic");
        Assert.Equal(0, (await join.WaitAsync(Wait)).ErrorCode);
        Assert.Equal(0, (await _h.SyncAsync("classic", member, 1, (member, [9])).WaitAsync(Wait)).ErrorCode);
        Assert.Equal(0, GroupTestHarness.CommitError(_h.Commit("g", -1, "", "t", 0, 5)));
        TxnCommit("g", P1, ("t", 0, 10));
        TxnCommit("g", P2, ("t", 1, 20));
        TxnCommit("g", P3, ("t", 2, 30));
        TxnCommit("other", P3, ("u", 0, 40));
        Marker(P1, commit: true);
        Marker(P2, commit: false);

        await _h.RestartAsync();
        Assert.Equal(10, _h.Fetch("g", "t", 0));
        Assert.Equal(-1, _h.Fetch("g", "t", 1));
        Assert.Equal(-1, _h.Fetch("g", "t", 2));
        Assert.Equal(((short)ErrorCode.UnstableOffsetCommit, -1L), FetchStable("g", "t", 2));
        Assert.Equal(((short)ErrorCode.UnstableOffsetCommit, -1L), FetchStable("other", "u", 0));
        Assert.Equal("Empty", _h.StateOf("other")); // the group of an open transaction exists
        Assert.Equal("Stable", _h.StateOf("classic")); // records around the markers still load

        // The still-open transaction commits after the restart.
        Marker(P3, commit: true);
        Assert.Equal(30, _h.Fetch("g", "t", 2));
        Assert.Equal(40, _h.Fetch("other", "u", 0));
        await _h.RestartAsync();
        Assert.Equal(30, _h.Fetch("g", "t", 2));
        Assert.Equal((0, 40L), FetchStable("other", "u", 0));
    }

    [Fact]
    public async Task Compaction_of_the_offsets_topic_never_lets_an_aborted_transaction_replace_a_committed_offset()
    {
        _h.LogConfig = LogConfig.Default with { Compacted = true, DeleteEnabled = false, SegmentMs = 3_600_000, FileDeleteDelayMs = 0 };
        await _h.LoadAsync();
        Assert.Equal(0, GroupTestHarness.CommitError(_h.Commit("g", -1, "", "t", 0, 5)));
        TxnCommit("g", P1, ("t", 0, 10));
        Marker(P1, commit: false);
        Assert.Equal(0, GroupTestHarness.CommitError(_h.Commit("g", -1, "", "t", 1, 3)));
        TxnCommit("g", P2, ("t", 1, 20));
        Marker(P2, commit: true);
        _h.Advance(2 * 3_600_000);
        Assert.Equal(0, GroupTestHarness.CommitError(_h.Commit("g", -1, "", "roll", 0, 1))); // rolls the segment: the rest is cleanable
        var cleaned = _h.OpenLog().Clean(offsetMapBytesMax: 1 << 20);
        Assert.Equal(2, cleaned.RecordsRemoved); // the aborted offset and the plain one the committed transaction replaced

        await _h.RestartAsync();
        Assert.Equal(5, _h.Fetch("g", "t", 0));
        Assert.Equal(20, _h.Fetch("g", "t", 1));
    }

    [Fact]
    public async Task A_marker_reported_while_the_partition_loads_is_applied_when_the_load_ends()
    {
        await _h.LoadAsync();
        TxnCommit("g", P1, ("t", 0, 10));
        _h.Coordinator.Dispose();
        Action? load = null;
        using var coordinator = new GroupCoordinator(_h.Time, () => _h.Config, NullLogger.Instance)
        {
            LoadRunner = action => { load = action; return Task.CompletedTask; },
        };
        await coordinator.LoadAsync(0, 1, new OffsetsPartitionStore(_h.OpenLog()));
        // The marker lands after the load read the log (its offset is past what the load reads).
        var markerOffset = _h.OpenLog().LogEndOffset;
        coordinator.OnTransactionCompleted(OffsetsTp, P1, committed: true, markerOffset);
        coordinator.OnTransactionCompleted(new TopicPartition("orders", 0), P1, committed: false, markerOffset); // not ours: ignored
        load!();
        Assert.True(coordinator.IsLoaded(0));
        var fetched = coordinator.OffsetFetch(new OffsetFetchRequest { GroupId = "g", Topics = [new() { Name = "t", PartitionIndexes = [0] }] }, 7);
        Assert.Equal(10, fetched.Topics[0].Partitions[0].CommittedOffset);
    }

    [Fact]
    public async Task Group_checks_are_kafkas_for_transactional_commits()
    {
        await _h.LoadAsync();
        // No group: only generation -1 creates a simple group.
        var unknown = new TxnOffsetCommitRequest { TransactionalId = "tx", GroupId = "new", ProducerId = P1, GenerationId = 1, MemberId = "m" };
        Assert.Equal([ErrorCode.IllegalGeneration], Errors(TxnCommit(unknown, 3, ("t", 0, 1))));

        var (_, joinStatic) = await _h.JoinNewAsync("g", instance: "static-1");
        var joined = await joinStatic.WaitAsync(Wait);
        Assert.Equal(0, joined.ErrorCode);
        var member = joined.MemberId;
        TxnOffsetCommitRequest Req(int generation, string memberId, string? instance) => new()
        {
            TransactionalId = "tx", GroupId = "g", ProducerId = P1, GenerationId = generation, MemberId = memberId, GroupInstanceId = instance,
        };
        Assert.Equal([ErrorCode.IllegalGeneration], Errors(TxnCommit(Req(7, member, "static-1"), 3, ("t", 0, 1))));
        Assert.Equal([ErrorCode.UnknownMemberId], Errors(TxnCommit(Req(1, "stranger", null), 3, ("t", 0, 1))));
        Assert.Equal([ErrorCode.FencedInstanceId], Errors(TxnCommit(Req(1, "stranger", "static-1"), 3, ("t", 0, 1))));
        // While CompletingRebalance a member of the current generation may commit (no REBALANCE_IN_PROGRESS for transactions).
        Assert.Equal("CompletingRebalance", _h.StateOf("g"));
        Assert.Equal([ErrorCode.None], Errors(TxnCommit(Req(1, member, "static-1"), 3, ("t", 0, 1))));
        // Versions 0-2 carry no member fields: nothing to check.
        Assert.Equal([ErrorCode.None], Errors(TxnCommit(new TxnOffsetCommitRequest { TransactionalId = "tx", GroupId = "g", ProducerId = P1 }, 2, ("t", 1, 1))));
        // A transactional commit needs a producer id.
        Assert.Equal([ErrorCode.InvalidProducerIdMapping], Errors(TxnCommit(new TxnOffsetCommitRequest { GroupId = "g", ProducerId = -1 }, 3, ("t", 0, 1))));
        Assert.Equal([ErrorCode.InvalidGroupId], Errors(TxnCommit(new TxnOffsetCommitRequest { GroupId = "", ProducerId = P1 }, 3, ("t", 0, 1))));
    }

    [Fact]
    public async Task Metadata_size_unknown_partitions_and_the_pending_limit_per_producer()
    {
        await _h.LoadAsync();
        _h.UnknownPartitions.Add(("gone", 0));
        var request = new TxnOffsetCommitRequest { TransactionalId = "tx", GroupId = "g", ProducerId = P1 };
        request.Topics.Add(new TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic
        {
            Name = "t",
            Partitions = [new() { PartitionIndex = 0, CommittedOffset = 1, CommittedMetadata = new string('x', _h.Config.OffsetMetadataMaxBytes + 1) },
                new() { PartitionIndex = 1, CommittedOffset = 2 }],
        });
        request.Topics.Add(new TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic { Name = "gone", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 3 }] });
        var response = await _h.Coordinator.TxnOffsetCommitAsync(request, 3, CancellationToken.None);
        Assert.Equal([ErrorCode.OffsetMetadataTooLarge, ErrorCode.None, ErrorCode.UnknownTopicOrPartition], Errors(response));
        Assert.Equal(((short)ErrorCode.UnstableOffsetCommit, -1L), FetchStable("g", "t", 1));
        Assert.Equal((0, -1L), FetchStable("g", "t", 0));

        _h.Coordinator.PendingOffsetsPerProducerMax = 3;
        Assert.Equal([ErrorCode.None, ErrorCode.None], Errors(TxnCommit("g", P1, ("t", 2, 1), ("t", 3, 1))));
        var endBefore = _h.OpenLog().LogEndOffset;
        Assert.Equal([ErrorCode.InvalidCommitOffsetSize], Errors(TxnCommit("g", P1, ("t", 4, 1))));
        Assert.Equal(endBefore, _h.OpenLog().LogEndOffset); // refused before anything was written
        Assert.Equal([ErrorCode.None], Errors(TxnCommit("g", P2, ("t", 4, 1)))); // another producer has its own room
        Marker(P1, commit: true);
        Assert.Equal([ErrorCode.None], Errors(TxnCommit("g", P1, ("t", 4, 1)))); // the next transaction starts empty
    }

    [Fact]
    public async Task Delete_groups_drops_pending_offsets_so_a_later_commit_does_not_bring_them_back()
    {
        await _h.LoadAsync();
        Assert.Equal(0, GroupTestHarness.CommitError(_h.Commit("g", -1, "", "t", 0, 5)));
        TxnCommit("g", P1, ("t", 0, 10), ("t", 1, 20));
        var deleted = _h.Coordinator.DeleteGroups(new DeleteGroupsRequest { GroupsNames = ["g"] }, 2);
        Assert.Equal(0, deleted.Results[0].ErrorCode);
        Marker(P1, commit: true);
        Assert.Equal(-1, _h.Fetch("g", "t", 0));
        Assert.Equal(-1, _h.Fetch("g", "t", 1));
        await _h.RestartAsync();
        Assert.Equal(-1, _h.Fetch("g", "t", 0));
        Assert.Equal(-1, _h.Fetch("g", "t", 1));
    }

    [Fact]
    public async Task Offset_delete_drops_a_pending_offset_too()
    {
        await _h.LoadAsync();
        TxnCommit("g", P1, ("t", 0, 10));
        var request = new OffsetDeleteRequest { GroupId = "g" };
        request.Topics.Add(new OffsetDeleteRequest.OffsetDeleteRequestTopic { Name = "t", Partitions = [new() { PartitionIndex = 0 }] });
        Assert.Equal(0, _h.Coordinator.OffsetDelete(request, 0).ErrorCode);
        Assert.Equal((0, -1L), FetchStable("g", "t", 0));
        Marker(P1, commit: true);
        Assert.Equal(-1, _h.Fetch("g", "t", 0));
    }

    [Fact]
    public async Task Expiry_keeps_offsets_and_groups_an_open_transaction_holds()
    {
        _h.Config = _h.Config with { OffsetsRetentionMs = 60_000 };
        await _h.LoadAsync();
        Assert.Equal(0, GroupTestHarness.CommitError(_h.Commit("g", -1, "", "t", 0, 5)));
        Assert.Equal(0, GroupTestHarness.CommitError(_h.Commit("g", -1, "", "t", 1, 6)));
        TxnCommit("g", P1, ("t", 0, 10));
        TxnCommit("only-pending", P1, ("t", 0, 11));
        _h.Advance(120_000);
        Assert.Equal(1, _h.Coordinator.ExpireOffsets()); // t-1 only
        Assert.Equal(5, _h.Fetch("g", "t", 0));
        Assert.Equal(-1, _h.Fetch("g", "t", 1));
        Assert.Equal("Empty", _h.StateOf("only-pending"));
        Marker(P1, commit: true);
        Assert.Equal(10, _h.Fetch("g", "t", 0));
        Assert.Equal(11, _h.Fetch("only-pending", "t", 0));
    }

    [Fact]
    public async Task A_stale_producer_epoch_is_fenced_by_the_log_and_nothing_becomes_pending()
    {
        await _h.LoadAsync();
        var current = new TxnOffsetCommitRequest { TransactionalId = "tx", GroupId = "g", ProducerId = P1, ProducerEpoch = 5 };
        Assert.Equal([ErrorCode.None], Errors(TxnCommit(current, 3, ("t", 0, 10))));
        Marker(P1, commit: true, epoch: 5);
        var zombie = new TxnOffsetCommitRequest { TransactionalId = "tx", GroupId = "g", ProducerId = P1, ProducerEpoch = 4 };
        // Kafka's checkProducerEpoch: INVALID_PRODUCER_EPOCH (what producers handle on TxnOffsetCommit).
        Assert.Equal([ErrorCode.InvalidProducerEpoch], Errors(TxnCommit(zombie, 3, ("t", 0, 99))));
        Assert.Equal((0, 10L), FetchStable("g", "t", 0));
    }

    [Fact]
    public async Task The_verifier_is_asked_with_the_offsets_partition_and_its_error_answers_every_partition()
    {
        var verifier = new RecordingVerifier { Answer = (short)ErrorCode.ProducerFenced };
        _h.Coordinator.Dispose();
        using var coordinator = new GroupCoordinator(_h.Time, () => _h.Config, NullLogger.Instance) { TransactionVerifier = () => verifier };
        await coordinator.LoadAsync(0, 0, new OffsetsPartitionStore(_h.OpenLog()));
        var request = new TxnOffsetCommitRequest { TransactionalId = "tx", GroupId = "g", ProducerId = P1, ProducerEpoch = 3 };
        request.Topics.Add(new TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic { Name = "t", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 1 }, new() { PartitionIndex = 1, CommittedOffset = 1 }] });
        var fenced = await coordinator.TxnOffsetCommitAsync(request, 5, CancellationToken.None);
        Assert.Equal([ErrorCode.InvalidProducerEpoch, ErrorCode.InvalidProducerEpoch], Errors(fenced));
        Assert.Equal(("tx", P1, (short)3, OffsetsTp, true), Assert.Single(verifier.Calls));
        Assert.Equal(0, _h.OpenLog().LogEndOffset); // nothing written

        verifier.Answer = (short)ErrorCode.TransactionAbortable;
        Assert.Equal(ErrorCode.InvalidTxnState, Errors(await coordinator.TxnOffsetCommitAsync(request, 3, CancellationToken.None))[0]);
        Assert.False(verifier.Calls[1].AddPartition); // before v5 the client added the offsets partition itself (AddOffsetsToTxn)
        verifier.Answer = 0;
        Assert.Equal([ErrorCode.None, ErrorCode.None], Errors(await coordinator.TxnOffsetCommitAsync(request, 4, CancellationToken.None)));
    }

    /// <summary>Stands in for the transaction coordinator's verifier (KIP-890), which lives on another branch: records the questions, answers what the test says.</summary>
    private sealed class RecordingVerifier : ITransactionVerifier
    {
        public short Answer { get; set; }
        public List<(string TransactionalId, long ProducerId, short Epoch, TopicPartition Partition, bool AddPartition)> Calls { get; } = [];

        public ValueTask<short> VerifyAsync(string transactionalId, long producerId, short producerEpoch, TopicPartition partition, bool addPartition, CancellationToken cancellationToken)
        {
            Calls.Add((transactionalId, producerId, producerEpoch, partition, addPartition));
            return ValueTask.FromResult(Answer);
        }
    }
}
