using StreamPlatform.Broker.Storage;
using StreamPlatform.Broker.Transactions;
using StreamPlatform.Protos.Records;
using static StreamPlatform.UnitTests.Storage.ProducerBatches;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Storage;

/// <summary>Transactions in one partition log: ongoing transactions, markers, the last stable offset and the aborted-transaction index.</summary>
public sealed class TransactionStateTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static LogAppendResult Ok(LogAppendResult r)
    {
        Assert.True(r.ErrorCode == ErrorCodes.None, $"{r.ErrorCode}: {r.ErrorMessage}");
        return r;
    }

    private static LogAppendResult Mark(PartitionLog log, long pid, short epoch, ControlRecordType type, int coordinatorEpoch = 0)
        => log.Append(Marker(pid, epoch, type, coordinatorEpoch), origin: AppendOrigin.TransactionMarker);

    [Fact]
    public void The_last_stable_offset_waits_for_the_oldest_open_transaction()
    {
        using var log = _dir.Open();
        Ok(log.Append(TestBatches.Build(T0, "plain"))); // 0
        Ok(log.Append(Data(1, 0, 0, records: 2, transactional: true))); // 1-2
        Ok(log.Append(Data(2, 0, 0, transactional: true))); // 3
        Ok(log.Append(Data(1, 0, 2, transactional: true))); // 4: same transaction, first offset stays 1
        Assert.Equal(5, log.HighWatermark);
        Assert.Equal(1, log.LastStableOffset);
        Assert.Equal(1, log.ProducerState.Get(1)!.CurrentTxnFirstOffset);
        Ok(Mark(log, 1, 0, ControlRecordType.Commit)); // 5
        Assert.Equal(3, log.LastStableOffset);
        Ok(Mark(log, 2, 0, ControlRecordType.Abort)); // 6
        Assert.Equal(7, log.LastStableOffset);
        Assert.Equal(new AbortedTxn(2, 3, 6, 7), Assert.Single(log.AbortedTransactions(0, 7)));
        Assert.False(log.ProducerState.HasOngoingTransaction(1));
    }

    [Fact]
    public void On_a_replicated_log_an_ended_transaction_holds_the_lso_until_its_marker_is_committed()
    {
        using var log = _dir.Open();
        log.ReplicatedHighWatermark = true;
        Ok(log.Append(Data(1, 0, 0, transactional: true))); // 0
        Ok(Mark(log, 1, 0, ControlRecordType.Commit)); // 1
        Assert.Equal(0, log.LastStableOffset); // HW 0
        log.UpdateHighWatermark(1);
        Assert.Equal(0, log.LastStableOffset); // marker not committed yet
        log.UpdateHighWatermark(2);
        Assert.Equal(2, log.LastStableOffset);
    }

    [Fact]
    public void Ended_transactions_are_forgotten_once_committed_even_when_nobody_asks_for_the_lso()
    {
        using var log = _dir.Open();
        log.ReplicatedHighWatermark = true;
        for (var i = 0; i < 100; i++)
        {
            Ok(log.Append(Data(1, 0, i, transactional: true)));
            Ok(Mark(log, 1, 0, ControlRecordType.Commit));
            log.UpdateHighWatermark(log.LogEndOffset);
        }
        // Only the last one may still be counted (its marker was committed after its append).
        Assert.True(log.ProducerState.UnstableTransactionCount <= 1, $"{log.ProducerState.UnstableTransactionCount}");
        Assert.Equal(log.HighWatermark, log.LastStableOffset);
        Assert.Equal(0, log.ProducerState.UnstableTransactionCount);
    }

    [Fact]
    public void The_aborted_index_spans_segments_and_survives_restarts_clean_or_not()
    {
        var config = new LogConfig { SegmentBytes = 200 };
        List<AbortedTxn> before;
        using (var log = _dir.Open(config))
        {
            Ok(log.Append(Data(1, 0, 0, transactional: true))); // 0: starts in the first segment
            for (var i = 0; i < 4; i++) Ok(log.Append(Data(9, 0, i))); // 1-4: rolls
            Ok(Mark(log, 1, 0, ControlRecordType.Abort)); // 5: in a later segment
            Ok(log.Append(Data(2, 0, 0, transactional: true))); // 6
            Ok(Mark(log, 2, 0, ControlRecordType.Abort)); // 7
            Ok(log.Append(Data(3, 0, 0, transactional: true))); // 8: still open
            Assert.True(log.SegmentCount >= 3);
            before = log.AbortedTransactions(0, log.LogEndOffset);
            Assert.Equal([new AbortedTxn(1, 0, 5, 6), new AbortedTxn(2, 6, 7, 8)], before);
            // Only the transactions overlapping the range: [6, 8) has the second, [1, 2) the first.
            Assert.Equal([before[1]], log.AbortedTransactions(6, 8));
            Assert.Equal([before[0]], log.AbortedTransactions(1, 2));
            Assert.Equal(8, log.LastStableOffset);
        }
        Assert.NotEmpty(Directory.GetFiles(_dir.PartitionDir(), "*.txnindex"));
        using (var log = _dir.Open(config))
        {
            Assert.Equal(before, log.AbortedTransactions(0, log.LogEndOffset));
            Assert.Equal(8, log.LastStableOffset);
            log.Close();
        }
        // Unclean: indexes and snapshots gone; everything is rebuilt from the batches.
        File.Delete(Path.Combine(_dir.PartitionDir(), PartitionLog.CleanShutdownFile));
        File.Delete(Path.Combine(_dir.PartitionDir(), PartitionLog.RecoveryPointFile));
        foreach (var f in Directory.GetFiles(_dir.PartitionDir(), "*.txnindex").Concat(Directory.GetFiles(_dir.PartitionDir(), "*.snapshot"))) File.Delete(f);
        using (var log = _dir.Open(config))
        {
            Assert.Equal(before, log.AbortedTransactions(0, log.LogEndOffset));
            Assert.Equal(8, log.LastStableOffset);
            Assert.True(log.ProducerState.HasOngoingTransaction(3));
        }
    }

    [Fact]
    public void Truncating_a_marker_reopens_its_transaction_and_drops_its_index_entry()
    {
        using var log = _dir.Open();
        log.ReplicatedHighWatermark = true;
        Ok(log.Append(Data(1, 0, 0, transactional: true))); // 0
        Ok(Mark(log, 1, 0, ControlRecordType.Abort)); // 1
        Assert.Single(log.AbortedTransactions(0, 2));
        log.TruncateTo(1);
        Assert.Empty(log.AbortedTransactions(0, 2));
        Assert.True(log.ProducerState.HasOngoingTransaction(1));
    }

    [Fact]
    public void Retention_drops_the_index_with_its_segment()
    {
        var config = new LogConfig { SegmentBytes = 200 };
        using var log = _dir.Open(config);
        Ok(log.Append(Data(1, 0, 0, transactional: true)));
        Ok(Mark(log, 1, 0, ControlRecordType.Abort));
        for (var i = 0; i < 6; i++) Ok(log.Append(Data(9, 0, i)));
        Assert.Single(log.AbortedTransactions(0, log.LogEndOffset));
        log.DeleteRecordsBefore(log.Segments[^1].BaseOffset);
        log.ApplyRetention();
        Assert.Empty(log.AbortedTransactions(log.LogStartOffset, log.LogEndOffset));
    }

    [Fact]
    public void Markers_with_a_stale_producer_or_coordinator_epoch_are_refused()
    {
        using var log = _dir.Open();
        Ok(log.Append(Data(1, 3, 0, transactional: true)));
        Assert.Equal(ErrorCodes.InvalidProducerEpoch, Mark(log, 1, 2, ControlRecordType.Commit, coordinatorEpoch: 5).ErrorCode);
        Ok(Mark(log, 1, 3, ControlRecordType.Commit, coordinatorEpoch: 5));
        Ok(log.Append(Data(1, 3, 1, transactional: true)));
        Assert.Equal(ErrorCodes.TransactionCoordinatorFenced, Mark(log, 1, 3, ControlRecordType.Abort, coordinatorEpoch: 4).ErrorCode);
        Assert.True(log.ProducerState.HasOngoingTransaction(1));
        Assert.Equal(3, log.LogEndOffset);
    }

    [Fact]
    public void A_marker_with_a_bumped_epoch_moves_the_producer_to_it_and_its_next_transaction_starts_at_sequence_zero()
    {
        using var log = _dir.Open();
        Ok(log.Append(Data(1, 3, 0, records: 2, transactional: true)));
        Ok(Mark(log, 1, 4, ControlRecordType.Commit)); // transaction version 2: the marker carries epoch + 1
        Assert.Equal((short)4, log.ProducerState.Get(1)!.Epoch);
        Assert.Equal(ErrorCodes.InvalidProducerEpoch, log.Append(Data(1, 3, 2, transactional: true)).ErrorCode);
        Assert.Equal(ErrorCodes.OutOfOrderSequenceNumber, log.Append(Data(1, 4, 2, transactional: true)).ErrorCode);
        Ok(log.Append(Data(1, 4, 0, transactional: true)));
    }

    [Fact]
    public void A_non_transactional_batch_during_an_open_transaction_is_invalid_txn_state()
    {
        using var log = _dir.Open();
        Ok(log.Append(Data(1, 0, 0, transactional: true)));
        Assert.Equal(ErrorCodes.InvalidTxnState, log.Append(Data(1, 0, 1)).ErrorCode);
        Assert.Equal(1, log.LogEndOffset);
    }

    [Fact]
    public void Coordinator_writes_open_transactions_without_sequence_checks()
    {
        using var log = _dir.Open();
        Ok(log.Append(Data(6, 2, 0, transactional: true), origin: AppendOrigin.Coordinator));
        Ok(log.Append(Data(6, 2, 40, transactional: true), origin: AppendOrigin.Coordinator)); // any sequence
        Assert.Equal(ErrorCodes.InvalidProducerEpoch, log.Append(Data(6, 1, 0, transactional: true), origin: AppendOrigin.Coordinator).ErrorCode);
        Assert.Equal(0, log.LastStableOffset);
        Ok(Mark(log, 6, 2, ControlRecordType.Commit));
        Assert.Equal(3, log.LastStableOffset);
    }

    [Fact]
    public void A_verified_transaction_starts_only_with_its_own_guard()
    {
        using var log = _dir.Open();
        var guard = log.StartTransactionVerification(1, 0);
        Assert.NotSame(TransactionVerificationGuard.Sentinel, guard);
        // Another guard (a stale verification) or the sentinel cannot start it.
        Assert.Equal(ErrorCodes.InvalidTxnState, log.Append(Data(1, 0, 0, transactional: true), verification: new TransactionVerificationGuard()).ErrorCode);
        Assert.Equal(ErrorCodes.InvalidTxnState, log.Append(Data(1, 0, 0, transactional: true), verification: TransactionVerificationGuard.Sentinel).ErrorCode);
        Ok(log.Append(Data(1, 0, 0, transactional: true), verification: guard));
        // Ongoing now: nothing to verify, the sentinel passes while it lasts.
        Assert.Same(TransactionVerificationGuard.Sentinel, log.StartTransactionVerification(1, 0));
        Ok(log.Append(Data(1, 0, 1, transactional: true), verification: TransactionVerificationGuard.Sentinel));
        // An open transaction of an older epoch does not spare a new epoch's batch its verification.
        Assert.NotSame(TransactionVerificationGuard.Sentinel, log.StartTransactionVerification(1, 1));
        Assert.Equal(ErrorCodes.InvalidTxnState, log.Append(Data(1, 1, 0, transactional: true), verification: TransactionVerificationGuard.Sentinel).ErrorCode);
        // A stale epoch is INVALID_PRODUCER_EPOCH (recoverable), even without a verification (KAFKA-19690).
        Assert.Equal(ErrorCodes.InvalidProducerEpoch, log.Append(Data(1, -1, 0, transactional: true), verification: new TransactionVerificationGuard()).ErrorCode);
        // A verification answered before an abort cannot start a transaction after it.
        Ok(Mark(log, 1, 0, ControlRecordType.Abort));
        var stale = log.StartTransactionVerification(1, 0);
        Ok(Mark(log, 1, 0, ControlRecordType.Abort)); // e.g. a timeout abort of the new, empty transaction
        Assert.Equal(ErrorCodes.InvalidTxnState, log.Append(Data(1, 0, 2, transactional: true), verification: stale).ErrorCode);
    }
}
