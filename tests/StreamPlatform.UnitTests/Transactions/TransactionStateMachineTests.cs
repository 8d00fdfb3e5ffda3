using System.Collections.Immutable;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Broker.Transactions;

namespace StreamPlatform.UnitTests.Transactions;

/// <summary>The states, their legal transitions, and the __transaction_state record format.</summary>
public class TransactionStateMachineTests
{
    private static readonly TransactionState[] All = Enum.GetValues<TransactionState>();

    public static TheoryData<TransactionState, TransactionState[]> Legal => new()
    {
        { TransactionState.Empty, [TransactionState.Empty, TransactionState.CompleteCommit, TransactionState.CompleteAbort] },
        { TransactionState.Ongoing, [TransactionState.Ongoing, TransactionState.Empty, TransactionState.CompleteCommit, TransactionState.CompleteAbort] },
        { TransactionState.PrepareCommit, [TransactionState.Ongoing] },
        { TransactionState.PrepareAbort, [TransactionState.Ongoing, TransactionState.PrepareEpochFence] },
        { TransactionState.CompleteCommit, [TransactionState.PrepareCommit] },
        { TransactionState.CompleteAbort, [TransactionState.PrepareAbort] },
        { TransactionState.Dead, [TransactionState.Empty, TransactionState.CompleteCommit, TransactionState.CompleteAbort] },
        { TransactionState.PrepareEpochFence, [TransactionState.Ongoing] },
    };

    [Theory]
    [MemberData(nameof(Legal))]
    public void Exactly_the_listed_transitions_are_legal(TransactionState target, TransactionState[] from)
    {
        foreach (var s in All) Assert.Equal(from.Contains(s), TransactionStates.ValidPrevious(target, s));
    }

    [Fact]
    public void Transaction_version_2_may_abort_with_nothing_open()
    {
        foreach (var s in new[] { TransactionState.Empty, TransactionState.CompleteCommit, TransactionState.CompleteAbort })
        {
            Assert.False(TransactionStates.ValidPrevious(TransactionState.PrepareAbort, s));
            Assert.True(TransactionStates.ValidPrevious(TransactionState.PrepareAbort, s, transactionVersion2: true));
            Assert.False(TransactionStates.ValidPrevious(TransactionState.PrepareCommit, s, transactionVersion2: true));
        }
    }

    private static TransactionMetadata Ongoing(params TopicPartition[] partitions)
    {
        var txn = TransactionMetadata.New("tx", 7, 60_000, 1000);
        txn.CompleteTransitionTo(txn.PrepareIncrementProducerEpoch(60_000, null, 1000, out _)!);
        txn.CompleteTransitionTo(txn.PrepareAddPartitions(partitions, 2000, 0));
        return txn;
    }

    [Fact]
    public void A_prepared_change_blocks_another_and_is_applied_only_by_its_completion()
    {
        var txn = Ongoing(new TopicPartition("t", 0));
        var commit = txn.PrepareAbortOrCommit(TransactionState.PrepareCommit, 0, TransactionMetadata.NoProducerId, 3000);
        Assert.Equal(TransactionState.Ongoing, txn.State);
        Assert.Throws<IllegalTransactionTransitionException>(() => txn.PrepareAddPartitions([new TopicPartition("t", 1)], 3000, 0));
        txn.CompleteTransitionTo(commit);
        Assert.Equal((TransactionState.PrepareCommit, (TransactionState?)null), (txn.State, txn.PendingState));
        // A completion that does not match the pending state is refused.
        var complete = txn.PrepareComplete(4000);
        Assert.Throws<IllegalTransactionTransitionException>(() => txn.CompleteTransitionTo(complete with { State = TransactionState.CompleteAbort }));
    }

    [Fact]
    public void Illegal_transitions_are_rejected()
    {
        var fresh = TransactionMetadata.New("tx", 7, 60_000, 1000);
        Assert.Throws<IllegalTransactionTransitionException>(() => fresh.PrepareAbortOrCommit(TransactionState.PrepareCommit, 0, -1, 1000));
        Assert.Throws<IllegalTransactionTransitionException>(() => fresh.PrepareFenceProducerEpoch());
        var ongoing = Ongoing(new TopicPartition("t", 0));
        Assert.Throws<IllegalTransactionTransitionException>(() => ongoing.PrepareDead());
        Assert.Throws<IllegalTransactionTransitionException>(() => ongoing.PrepareProducerIdRotation(9, 60_000, 3000, false));
        Assert.Throws<IllegalTransactionTransitionException>(() => ongoing.RemovePartition(new TopicPartition("t", 0)));
    }

    [Fact]
    public void Markers_remove_partitions_and_version_1_keeps_the_epoch()
    {
        var txn = Ongoing(new TopicPartition("t", 0), new TopicPartition("u", 3));
        txn.CompleteTransitionTo(txn.PrepareAbortOrCommit(TransactionState.PrepareAbort, 0, -1, 3000));
        txn.RemovePartition(new TopicPartition("t", 0));
        txn.RemovePartition(new TopicPartition("u", 3));
        txn.CompleteTransitionTo(txn.PrepareComplete(4000));
        Assert.Equal((TransactionState.CompleteAbort, (short)0, 0), (txn.State, txn.ProducerEpoch, txn.Partitions.Count));
    }

    [Fact]
    public void Records_round_trip_in_value_version_0_and_1()
    {
        var v1 = new TxnTransit(7, 3, 9, 4, 3, 60_000, TransactionState.PrepareCommit,
            ImmutableHashSet.Create(new TopicPartition("t", 1), new TopicPartition("t", 0), new TopicPartition("u", 2)), 1000, 2000, 2);
        var bytes = TransactionLogRecords.EncodeValue(v1);
        Assert.Equal(1, bytes[1]); // int16 version 1: transaction version 2 fields
        var read = TransactionLogRecords.DecodeValue("tx", bytes);
        Assert.Equal((7L, 3L, 9L, (short)4, TransactionState.PrepareCommit, 1000L, 2000L, (short)2),
            (read.ProducerId, read.PreviousProducerId, read.NextProducerId, read.ProducerEpoch, read.State, read.StartTimestampMs, read.LastUpdateTimestampMs, read.ClientTransactionVersion));
        Assert.Equal(v1.Partitions, read.Partitions.ToImmutableHashSet());

        var v0 = v1 with { ClientTransactionVersion = 0, NextProducerId = -1, State = TransactionState.Empty, Partitions = [] };
        var bytes0 = TransactionLogRecords.EncodeValue(v0);
        Assert.Equal(0, bytes0[1]);
        var read0 = TransactionLogRecords.DecodeValue("tx", bytes0);
        Assert.Equal((TransactionState.Empty, -1L, 0), (read0.State, read0.PreviousProducerId, read0.Partitions.Count));
        Assert.Equal("tx", TransactionLogRecords.DecodeKey(TransactionLogRecords.EncodeKey("tx")));
        Assert.Null(TransactionLogRecords.DecodeKey(new byte[] { 0, 9, 0, 0 }));
        Assert.Throws<Protos.Kafka.KafkaProtocolException>(() => TransactionLogRecords.DecodeValue("tx", new byte[] { 0, 7 }));
    }
}
