using StreamPlatform.Broker.Storage;
using StreamPlatform.Broker.Transactions;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Transactions;

/// <summary>
/// Transaction version 2 (KIP-890 part 2): partitions added by the partition leader (the broker
/// form of AddPartitionsToTxn, verify_only false), and EndTxn v5 bumps the epoch of every
/// transaction, so a delayed EndTxn or produce of an earlier transaction is fenced.
/// </summary>
public sealed class TransactionVersion2Tests : IDisposable
{
    private readonly TransactionHarness _h = new();

    public TransactionVersion2Tests() => _h.Load();

    public void Dispose() => _h.Dispose();

    private async Task<short> ImplicitAddAsync(string id, long producerId, short epoch, params (string, int)[] partitions)
    {
        var response = await _h.Coordinator.AddPartitionsToTxnAsync(TransactionCoordinatorTests.ImplicitAdd(id, producerId, epoch, partitions), 5, CancellationToken.None);
        return response.ResultsByTransaction.Single().TopicResults.SelectMany(t => t.ResultsByPartition).Select(p => p.PartitionErrorCode).Distinct().Single();
    }

    [Fact]
    public async Task Every_EndTxn_bumps_the_epoch_and_a_delayed_request_of_the_old_epoch_is_fenced()
    {
        var p = await _h.InitAsync("tx");
        Assert.Equal(ErrorCodes.None, await ImplicitAddAsync("tx", p.ProducerId, p.ProducerEpoch, ("t", 0)));
        Assert.Equal(2, _h.Txn("tx").ClientTransactionVersion);
        var end = await _h.EndAsync("tx", p.ProducerId, p.ProducerEpoch, commit: true, version: 5);
        Assert.Equal((ErrorCodes.None, p.ProducerId, (short)1), (end.ErrorCode, end.ProducerId, end.ProducerEpoch));
        await _h.SettleAsync();
        // The marker carries the new epoch: the partition fences the old one from then on.
        var marker = Assert.Single(_h.Written);
        Assert.Equal((true, (short)1), (marker.Commit, marker.Epoch));
        var txn = _h.Txn("tx");
        Assert.Equal((TransactionState.CompleteCommit, (short)1), (txn.State, txn.ProducerEpoch));

        // A retry of the EndTxn (its answer lost) gets the same answer.
        var retry = await _h.EndAsync("tx", p.ProducerId, p.ProducerEpoch, commit: true, version: 5);
        Assert.Equal((ErrorCodes.None, p.ProducerId, (short)1), (retry.ErrorCode, retry.ProducerId, retry.ProducerEpoch));
        // A delayed produce of the finished transaction cannot start a new one.
        Assert.Equal(ErrorCodes.ProducerFenced, await ImplicitAddAsync("tx", p.ProducerId, p.ProducerEpoch, ("t", 1)));
        // A delayed abort of the old epoch cannot touch the next transaction.
        Assert.Equal(ErrorCodes.None, await ImplicitAddAsync("tx", p.ProducerId, 1, ("t", 1)));
        Assert.Equal(ErrorCodes.ProducerFenced, (await _h.EndAsync("tx", p.ProducerId, p.ProducerEpoch, commit: false, version: 5)).ErrorCode);
        Assert.Equal(TransactionState.Ongoing, _h.StateOf("tx"));
        var second = await _h.EndAsync("tx", p.ProducerId, 1, commit: false, version: 5);
        Assert.Equal((ErrorCodes.None, (short)2), (second.ErrorCode, second.ProducerEpoch));
        await _h.SettleAsync();
        Assert.Equal(TransactionState.CompleteAbort, _h.StateOf("tx"));
    }

    [Fact]
    public async Task An_abort_with_nothing_added_still_bumps_the_epoch()
    {
        var p = await _h.InitAsync("tx");
        var end = await _h.EndAsync("tx", p.ProducerId, p.ProducerEpoch, commit: false, version: 5);
        Assert.Equal((ErrorCodes.None, (short)1), (end.ErrorCode, end.ProducerEpoch));
        await _h.SettleAsync();
        Assert.Equal((TransactionState.CompleteAbort, (short)1), (_h.StateOf("tx"), _h.Txn("tx").ProducerEpoch));
        Assert.Empty(_h.Written);
        // Version 1 keeps Kafka's answer for it.
        Assert.Equal(ErrorCodes.InvalidTxnState, (await _h.EndAsync("tx", p.ProducerId, 1, commit: true, version: 4)).ErrorCode);
    }

    [Fact]
    public async Task An_exhausted_epoch_moves_to_the_next_producer_id_when_the_transaction_ends()
    {
        var p = await _h.InitAsync("tx");
        Assert.Equal(ErrorCodes.None, await ImplicitAddAsync("tx", p.ProducerId, p.ProducerEpoch, ("t", 0)));
        var txn = _h.Txn("tx");
        const short last = short.MaxValue - 1;
        lock (txn.Gate) txn.ProducerEpoch = last;
        var end = await _h.EndAsync("tx", p.ProducerId, last, commit: true, version: 5);
        Assert.Equal(ErrorCodes.None, end.ErrorCode);
        Assert.NotEqual(p.ProducerId, end.ProducerId);
        Assert.Equal(0, end.ProducerEpoch);
        await _h.SettleAsync();
        // The markers close the old producer id's transaction with its final epoch; then the id moves.
        Assert.Equal((p.ProducerId, short.MaxValue), (Assert.Single(_h.Written).ProducerId, _h.Written.Single().Epoch));
        Assert.Equal((end.ProducerId, (short)0, p.ProducerId), (txn.ProducerId, txn.ProducerEpoch, txn.PreviousProducerId));
        // The retry of the overflowing EndTxn is recognised.
        var retry = await _h.EndAsync("tx", p.ProducerId, last, commit: true, version: 5);
        Assert.Equal((ErrorCodes.None, end.ProducerId, (short)0), (retry.ErrorCode, retry.ProducerId, retry.ProducerEpoch));
        // And the state is read back as written (value version 1 with the transaction version 2 fields).
        _h.FailOver(newEpoch: 1);
        var loaded = _h.Txn("tx");
        Assert.Equal((end.ProducerId, (short)0, TransactionState.CompleteCommit, (short)2), (loaded.ProducerId, loaded.ProducerEpoch, loaded.State, loaded.ClientTransactionVersion));
        Assert.Equal(new TopicPartition("t", 0), _h.Written.Single().Partition);
    }

    [Fact]
    public async Task An_abort_with_nothing_open_and_the_epoch_exhausted_moves_to_the_next_producer_id()
    {
        var p = await _h.InitAsync("tx");
        var txn = _h.Txn("tx");
        const short last = short.MaxValue - 1;
        lock (txn.Gate) txn.ProducerEpoch = last;
        var end = await _h.EndAsync("tx", p.ProducerId, last, commit: false, version: 5);
        Assert.Equal(ErrorCodes.None, end.ErrorCode);
        Assert.NotEqual(p.ProducerId, end.ProducerId);
        Assert.Equal(0, end.ProducerEpoch);
        await _h.SettleAsync();
        Assert.Equal((TransactionState.CompleteAbort, end.ProducerId, (short)0), (txn.State, txn.ProducerId, txn.ProducerEpoch));
        Assert.Empty(_h.Written);
    }
}
