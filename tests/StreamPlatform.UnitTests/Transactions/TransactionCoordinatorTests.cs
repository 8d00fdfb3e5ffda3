using StreamPlatform.Broker.Storage;
using StreamPlatform.Broker.Transactions;
using StreamPlatform.Protos.Groups;
using StreamPlatform.Protos.Kafka.Messages;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Transactions;

/// <summary>The coordinator's APIs over a real __transaction_state log, with fake time.</summary>
public sealed class TransactionCoordinatorTests : IDisposable
{
    private readonly TransactionHarness _h = new();

    public TransactionCoordinatorTests() => _h.Load();

    public void Dispose() => _h.Dispose();

    [Fact]
    public async Task A_new_transactional_id_gets_a_producer_id_at_epoch_0_and_each_init_bumps_the_epoch()
    {
        var first = await _h.InitAsync("tx");
        var second = await _h.InitAsync("tx");
        Assert.Equal((ErrorCodes.None, (short)0), (first.ErrorCode, first.ProducerEpoch));
        Assert.Equal((ErrorCodes.None, first.ProducerId, (short)1), (second.ErrorCode, second.ProducerId, second.ProducerEpoch));
        // Written: a new coordinator reads the same state.
        _h.FailOver(newEpoch: 1);
        var txn = _h.Txn("tx");
        Assert.Equal((first.ProducerId, (short)1, TransactionState.Empty), (txn.ProducerId, txn.ProducerEpoch, txn.State));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(900_001)]
    public async Task A_timeout_outside_1_to_transaction_max_timeout_ms_is_INVALID_TRANSACTION_TIMEOUT(int timeoutMs)
    {
        var r = await _h.InitAsync("tx", timeoutMs);
        Assert.Equal((ErrorCodes.InvalidTransactionTimeout, -1L, (short)-1), (r.ErrorCode, r.ProducerId, r.ProducerEpoch));
    }

    [Fact]
    public async Task An_empty_transactional_id_is_INVALID_REQUEST()
        => Assert.Equal(ErrorCodes.InvalidRequest, (await _h.InitAsync("")).ErrorCode);

    [Fact]
    public async Task Ids_answer_COORDINATOR_LOAD_IN_PROGRESS_while_loading_and_NOT_COORDINATOR_once_unloaded()
    {
        Assert.Equal(ErrorCodes.None, (await _h.InitAsync("tx")).ErrorCode);
        _h.States.Unload(0);
        Assert.Equal(ErrorCodes.NotCoordinator, (await _h.InitAsync("tx")).ErrorCode);
        Action? load = null;
        var deferred = new TransactionStateManager(_h.Time, () => _h.Config, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance)
        {
            LoadRunner = a => { load = a; return Task.CompletedTask; },
        };
        deferred.Load(0, 1, new StreamPlatform.Broker.Groups.OffsetsPartitionStore(_h.Log));
        Assert.Equal(ErrorCodes.CoordinatorLoadInProgress, deferred.TryGet("tx", out _, out _));
        load!();
        Assert.Equal(ErrorCodes.None, deferred.TryGet("tx", out _, out var txn));
        Assert.NotNull(txn);
    }

    [Fact]
    public async Task A_commit_writes_markers_to_every_partition_leader_then_CompleteCommit()
    {
        var p = await _h.InitAsync("tx");
        Assert.Equal(ErrorCodes.None, await _h.AddAsync("tx", p.ProducerId, p.ProducerEpoch, ("t", 0), ("t", 1)));
        Assert.Equal(TransactionState.Ongoing, _h.StateOf("tx"));
        var end = await _h.EndAsync("tx", p.ProducerId, p.ProducerEpoch, commit: true);
        Assert.Equal((ErrorCodes.None, p.ProducerId, p.ProducerEpoch), (end.ErrorCode, end.ProducerId, end.ProducerEpoch));
        await _h.SettleAsync();
        Assert.Equal(TransactionState.CompleteCommit, _h.StateOf("tx"));
        Assert.Equal([(1, new TopicPartition("t", 0)), (2, new TopicPartition("t", 1))],
            _h.Written.Select(w => (w.Broker, w.Partition)).Order());
        Assert.All(_h.Written, w => Assert.Equal((p.ProducerId, p.ProducerEpoch, true, 0), (w.ProducerId, w.Epoch, w.Commit, w.CoordinatorEpoch)));
        // A retried commit is answered again; an abort of it is not a legal transition.
        Assert.Equal(ErrorCodes.None, (await _h.EndAsync("tx", p.ProducerId, p.ProducerEpoch, commit: true)).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidTxnState, (await _h.EndAsync("tx", p.ProducerId, p.ProducerEpoch, commit: false)).ErrorCode);
        // The next transaction starts from CompleteCommit.
        Assert.Equal(ErrorCodes.None, await _h.AddAsync("tx", p.ProducerId, p.ProducerEpoch, ("u", 2)));
        Assert.Equal([new TopicPartition("u", 2)], _h.Txn("tx").Partitions);
    }

    [Fact]
    public async Task EndTxn_without_a_transaction_open_or_with_a_wrong_producer_is_refused_as_Kafka()
    {
        var p = await _h.InitAsync("tx");
        Assert.Equal(ErrorCodes.InvalidTxnState, (await _h.EndAsync("tx", p.ProducerId, p.ProducerEpoch, commit: true)).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidProducerIdMapping, (await _h.EndAsync("tx", p.ProducerId + 100, p.ProducerEpoch, commit: true)).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidProducerIdMapping, (await _h.EndAsync("other", p.ProducerId, p.ProducerEpoch, commit: true)).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidProducerIdMapping, await _h.AddAsync("other", p.ProducerId, p.ProducerEpoch, ("t", 0)));
    }

    [Fact]
    public async Task A_second_producer_fences_the_first_and_its_open_transaction_is_aborted_first()
    {
        var first = await _h.InitAsync("tx");
        Assert.Equal(ErrorCodes.None, await _h.AddAsync("tx", first.ProducerId, first.ProducerEpoch, ("t", 0)));
        var fencing = await _h.InitAsync("tx");
        Assert.Equal(ErrorCodes.ConcurrentTransactions, fencing.ErrorCode);
        await _h.SettleAsync();
        Assert.Equal(TransactionState.CompleteAbort, _h.StateOf("tx"));
        // The abort marker carries the fencing epoch: the old producer's late writes are refused at the partition.
        var marker = Assert.Single(_h.Written);
        Assert.Equal((new TopicPartition("t", 0), false, (short)1), (marker.Partition, marker.Commit, marker.Epoch));
        var second = await _h.InitRetryingAsync("tx");
        Assert.Equal((ErrorCodes.None, first.ProducerId, (short)2), (second.ErrorCode, second.ProducerId, second.ProducerEpoch));
        // The old producer is fenced everywhere.
        Assert.Equal(ErrorCodes.ProducerFenced, await _h.AddAsync("tx", first.ProducerId, first.ProducerEpoch, ("t", 1)));
        Assert.Equal(ErrorCodes.ProducerFenced, (await _h.EndAsync("tx", first.ProducerId, first.ProducerEpoch, commit: true)).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidProducerEpoch, (await _h.EndAsync("tx", first.ProducerId, first.ProducerEpoch, commit: true, version: 1)).ErrorCode);
        Assert.Equal(ErrorCodes.ProducerFenced, (await _h.InitAsync("tx", producerId: first.ProducerId, epoch: first.ProducerEpoch)).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidProducerEpoch, (await _h.InitAsync("tx", producerId: first.ProducerId, epoch: first.ProducerEpoch, version: 3)).ErrorCode);
    }

    [Fact]
    public async Task KIP_360_an_init_naming_the_current_epoch_bumps_it_and_its_retry_gets_the_same_answer()
    {
        var p = await _h.InitAsync("tx");
        var bumped = await _h.InitAsync("tx", producerId: p.ProducerId, epoch: p.ProducerEpoch);
        Assert.Equal((ErrorCodes.None, p.ProducerId, (short)1), (bumped.ErrorCode, bumped.ProducerId, bumped.ProducerEpoch));
        // The answer was lost and the producer retries with its old epoch: the same epoch, not another bump.
        var retry = await _h.InitAsync("tx", producerId: p.ProducerId, epoch: p.ProducerEpoch);
        Assert.Equal((ErrorCodes.None, (short)1), (retry.ErrorCode, retry.ProducerEpoch));
    }

    [Fact]
    public async Task An_exhausted_epoch_moves_the_id_to_a_new_producer_id_at_epoch_0()
    {
        var p = await _h.InitAsync("tx");
        var txn = _h.Txn("tx");
        lock (txn.Gate) txn.ProducerEpoch = short.MaxValue - 1;
        var rotated = await _h.InitAsync("tx");
        Assert.Equal(ErrorCodes.None, rotated.ErrorCode);
        Assert.NotEqual(p.ProducerId, rotated.ProducerId);
        Assert.Equal(0, rotated.ProducerEpoch);
        Assert.Equal(p.ProducerId, _h.Txn("tx").PreviousProducerId);
    }

    [Fact]
    public async Task A_transaction_open_past_its_timeout_is_aborted_with_a_bumped_epoch()
    {
        var p = await _h.InitAsync("tx", timeoutMs: 1000);
        Assert.Equal(ErrorCodes.None, await _h.AddAsync("tx", p.ProducerId, p.ProducerEpoch, ("t", 0), ("u", 1)));
        _h.Advance(1000);
        Assert.Empty(_h.States.TimedOutTransactions()); // open exactly its timeout: not yet
        _h.Advance(1);
        var (id, producerId, _) = Assert.Single(_h.States.TimedOutTransactions());
        Assert.Equal(ErrorCodes.None, await _h.Coordinator.AbortTimedOutAsync(id, producerId, CancellationToken.None));
        await _h.SettleAsync();
        var txn = _h.Txn("tx");
        Assert.Equal((TransactionState.CompleteAbort, (short)1), (txn.State, txn.ProducerEpoch));
        Assert.Equal(2, _h.Written.Count(w => !w.Commit && w.Epoch == 1));
        // The producer learns it was fenced when it tries to commit.
        Assert.Equal(ErrorCodes.ProducerFenced, (await _h.EndAsync("tx", p.ProducerId, p.ProducerEpoch, commit: true)).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidProducerEpoch, (await _h.EndAsync("tx", p.ProducerId, p.ProducerEpoch, commit: true, version: 0)).ErrorCode);
    }

    [Fact]
    public async Task Markers_refused_by_a_moved_leader_are_sent_to_the_new_leader_from_newer_metadata()
    {
        var p = await _h.InitAsync("tx");
        await _h.AddAsync("tx", p.ProducerId, p.ProducerEpoch, ("t", 0), ("t", 1));
        var moved = new TopicPartition("t", 1);
        _h.ActualLeaders[moved] = 3; // the metadata still names broker 2
        Assert.Equal(ErrorCodes.None, (await _h.EndAsync("tx", p.ProducerId, p.ProducerEpoch, commit: true)).ErrorCode);
        for (var i = 0; i < 5; i++)
        {
            await Task.Delay(5);
            _h.Advance(100);
        }
        Assert.Equal(TransactionState.PrepareCommit, _h.StateOf("tx"));
        Assert.Equal([moved], _h.Txn("tx").Partitions);
        _h.Metadata = TransactionHarness.BuildMetadata(new Dictionary<TopicPartition, int> { [moved] = 3 });
        await _h.SettleAsync();
        Assert.Equal(TransactionState.CompleteCommit, _h.StateOf("tx"));
        Assert.Contains(_h.Written, w => w.Partition == moved && w.Broker == 3);
    }

    [Fact]
    public async Task A_new_coordinator_loading_PrepareCommit_sends_the_markers_again_and_completes()
    {
        var p = await _h.InitAsync("tx");
        await _h.AddAsync("tx", p.ProducerId, p.ProducerEpoch, ("t", 0), ("u", 1));
        _h.LeaderError = ErrorCodes.NotEnoughReplicas; // no marker can be written before the failover
        Assert.Equal(ErrorCodes.None, (await _h.EndAsync("tx", p.ProducerId, p.ProducerEpoch, commit: true)).ErrorCode);
        await Task.Delay(10);
        Assert.Equal(TransactionState.PrepareCommit, _h.StateOf("tx"));
        _h.LeaderError = null;
        _h.FailOver(newEpoch: 5);
        await _h.SettleAsync();
        Assert.Equal(TransactionState.CompleteCommit, _h.StateOf("tx"));
        Assert.Equal(2, _h.Written.Count(w => w.Commit && w.CoordinatorEpoch == 5));
        Assert.DoesNotContain(_h.Written, w => w.CoordinatorEpoch != 5);
        // And it is CompleteCommit in the log too.
        _h.FailOver(newEpoch: 6);
        Assert.Equal(TransactionState.CompleteCommit, _h.StateOf("tx"));
    }

    [Fact]
    public async Task Verify_only_answers_whether_each_partition_is_in_the_ongoing_transaction()
    {
        var p = await _h.InitAsync("tx");
        await _h.AddAsync("tx", p.ProducerId, p.ProducerEpoch, ("t", 0));
        var request = new AddPartitionsToTxnRequest();
        request.Transactions.Add(Batch("tx", p.ProducerId, p.ProducerEpoch, verifyOnly: true, ("t", 0), ("t", 1)));
        request.Transactions.Add(Batch("tx", p.ProducerId, (short)(p.ProducerEpoch + 1), verifyOnly: true, ("t", 0)));
        request.Transactions.Add(Batch("unknown", p.ProducerId, p.ProducerEpoch, verifyOnly: true, ("t", 0)));
        var response = await _h.Coordinator.AddPartitionsToTxnAsync(request, 5, CancellationToken.None);
        var errors = response.ResultsByTransaction.Select(t => t.TopicResults.SelectMany(r => r.ResultsByPartition.Select(x => (r.Name, x.PartitionIndex, x.PartitionErrorCode))).Order().ToList()).ToList();
        Assert.Equal([("t", 0, ErrorCodes.None), ("t", 1, ErrorCodes.TransactionAbortable)], errors[0]);
        Assert.Equal([("t", 0, ErrorCodes.ProducerFenced)], errors[1]);
        Assert.Equal([("t", 0, ErrorCodes.InvalidProducerIdMapping)], errors[2]);
        // Nothing was added by verifying.
        Assert.Equal([new TopicPartition("t", 0)], _h.Txn("tx").Partitions);
        // What a producer gets from the partition leader (Kafka's mapping).
        Assert.Equal(ErrorCodes.InvalidTxnState, TransactionVerifier.ProducerError(ErrorCodes.TransactionAbortable));
        Assert.Equal(ErrorCodes.InvalidProducerEpoch, TransactionVerifier.ProducerError(ErrorCodes.ProducerFenced));
        Assert.Equal(ErrorCodes.ConcurrentTransactions, TransactionVerifier.ProducerError(ErrorCodes.ConcurrentTransactions)); // the produce path maps the retriable ones
    }

    [Fact]
    public async Task A_partition_that_does_not_exist_fails_the_request_and_adds_nothing()
    {
        var p = await _h.InitAsync("tx");
        var request = new AddPartitionsToTxnRequest { V3AndBelowTransactionalId = "tx", V3AndBelowProducerId = p.ProducerId, V3AndBelowProducerEpoch = p.ProducerEpoch };
        request.V3AndBelowTopics.Add(new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = "t", Partitions = [0, 7] });
        var response = await _h.Coordinator.AddPartitionsToTxnAsync(request, 3, CancellationToken.None);
        var errors = response.ResultsByTopicV3AndBelow.Single().ResultsByPartition.OrderBy(x => x.PartitionIndex).Select(x => x.PartitionErrorCode).ToList();
        Assert.Equal([ErrorCodes.OperationNotAttempted, ErrorCodes.UnknownTopicOrPartition], errors);
        Assert.Equal(TransactionState.Empty, _h.StateOf("tx"));
    }

    [Fact]
    public async Task AddOffsetsToTxn_adds_the_groups_consumer_offsets_partition()
    {
        var p = await _h.InitAsync("tx");
        var r = await _h.Coordinator.AddOffsetsToTxnAsync(new AddOffsetsToTxnRequest { TransactionalId = "tx", ProducerId = p.ProducerId, ProducerEpoch = p.ProducerEpoch, GroupId = "g" }, 3);
        Assert.Equal(ErrorCodes.None, r.ErrorCode);
        Assert.Equal([new TopicPartition(OffsetsTopic.Name, OffsetsTopic.PartitionFor("g", 50))], _h.Txn("tx").Partitions);
    }

    [Fact]
    public async Task Describe_and_list_show_the_coordinated_transactions_with_Kafkas_filters()
    {
        var a = await _h.InitAsync("a");
        await _h.InitAsync("b");
        await _h.AddAsync("a", a.ProducerId, a.ProducerEpoch, ("t", 2), ("t", 0), ("u", 1));
        _h.Advance(5000);
        var described = _h.Coordinator.DescribeTransactions(new DescribeTransactionsRequest { TransactionalIds = ["a", "missing", ""] }).TransactionStates;
        Assert.Equal((ErrorCodes.None, "Ongoing", a.ProducerId, 60_000), (described[0].ErrorCode, described[0].TransactionStateValue, described[0].ProducerId, described[0].TransactionTimeoutMs));
        Assert.Equal([("t", "0,2"), ("u", "1")], described[0].Topics.Select(t => (t.Topic, string.Join(",", t.Partitions))));
        Assert.Equal(ErrorCodes.TransactionalIdNotFound, described[1].ErrorCode);
        Assert.Equal(ErrorCodes.InvalidRequest, described[2].ErrorCode);

        string Ids(ListTransactionsRequest r) => string.Join(",", _h.Coordinator.ListTransactions(r).TransactionStates.Select(s => s.TransactionalId + ":" + s.TransactionStateValue).Order());
        Assert.Equal("a:Ongoing,b:Empty", Ids(new ListTransactionsRequest()));
        Assert.Equal("a:Ongoing", Ids(new ListTransactionsRequest { StateFilters = ["Ongoing"] }));
        Assert.Equal("b:Empty", Ids(new ListTransactionsRequest { ProducerIdFilters = [a.ProducerId + 1] }));
        // As Kafka: the duration is counted from the transaction's start, which an Empty id does not have (-1): it always passes.
        Assert.Equal("a:Ongoing,b:Empty", Ids(new ListTransactionsRequest { DurationFilter = 4000 }));
        Assert.Equal("b:Empty", Ids(new ListTransactionsRequest { DurationFilter = 5000 }));
        Assert.Equal(["Nope"], _h.Coordinator.ListTransactions(new ListTransactionsRequest { StateFilters = ["Nope"] }).UnknownStateFilters);
    }

    [Fact]
    public async Task An_idle_transactional_id_expires_and_its_tombstone_survives_a_failover()
    {
        _h.Config = _h.Config with { IdExpirationMs = 10_000 };
        await _h.InitAsync("idle");
        var busy = await _h.InitAsync("busy");
        await _h.AddAsync("busy", busy.ProducerId, busy.ProducerEpoch, ("t", 0)); // an open transaction never expires
        _h.Advance(10_000);
        await _h.States.RemoveExpiredAsync();
        Assert.Equal(ErrorCodes.None, _h.States.TryGet("idle", out _, out var gone));
        Assert.Null(gone);
        Assert.Equal(TransactionState.Ongoing, _h.StateOf("busy"));
        _h.FailOver(newEpoch: 1);
        Assert.Equal(ErrorCodes.None, _h.States.TryGet("idle", out _, out gone));
        Assert.Null(gone);
        // A new producer with the id starts over.
        var again = await _h.InitAsync("idle");
        Assert.Equal((ErrorCodes.None, (short)0), (again.ErrorCode, again.ProducerEpoch));
    }

    private static AddPartitionsToTxnRequest.AddPartitionsToTxnTransaction Batch(string id, long producerId, short epoch, bool verifyOnly, params (string Topic, int Partition)[] partitions)
    {
        var t = new AddPartitionsToTxnRequest.AddPartitionsToTxnTransaction { TransactionalId = id, ProducerId = producerId, ProducerEpoch = epoch, VerifyOnly = verifyOnly };
        foreach (var g in partitions.GroupBy(p => p.Topic))
            t.Topics.Add(new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = g.Key, Partitions = [.. g.Select(p => p.Partition)] });
        return t;
    }

    internal static AddPartitionsToTxnRequest ImplicitAdd(string id, long producerId, short epoch, params (string Topic, int Partition)[] partitions)
    {
        var request = new AddPartitionsToTxnRequest();
        request.Transactions.Add(Batch(id, producerId, epoch, verifyOnly: false, partitions));
        return request;
    }
}
