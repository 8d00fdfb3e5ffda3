using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Transactions;

/// <summary>The answer to an EndTxn: an error, and the producer id and epoch the producer goes on with (-1 on error).</summary>
public readonly record struct EndTxnResult(short ErrorCode, long ProducerId, short ProducerEpoch)
{
    public static EndTxnResult Error(short error) => new(error, TransactionMetadata.NoProducerId, TransactionMetadata.NoProducerEpoch);
}

/// <summary>
/// Ending a transaction (Kafka's TransactionCoordinator.endTransaction): from a client's EndTxn,
/// from a fencing InitProducerId and from the timeout check (both abort, not from the client).
/// Writes PrepareCommit/PrepareAbort, answers, then hands the transaction to the
/// <see cref="TransactionMarkerSender"/>, which writes the markers and CompleteCommit/CompleteAbort.
/// <para>Transaction version 2 (EndTxn v5): the prepare bumps the epoch (a new producer id when
/// it is exhausted) and the answer carries it, so anything the producer sent with the old epoch
/// (a delayed produce, a retried EndTxn) can no longer join a later transaction. A retry of an
/// EndTxn that succeeded is recognised by its old epoch and answered again.</para>
/// </summary>
public sealed class EndTransactionHandler(
    TransactionStateManager states,
    ProducerIdManager producerIds,
    TransactionMarkerSender markers,
    ILogger logger)
{
    /// <param name="fromClient">False for the coordinator's own aborts (fencing, timeout): the epoch may be above the client's.</param>
    /// <param name="clientTransactionVersion">2 for EndTxn v5+ (transaction version 2), else 0.</param>
    public async Task<EndTxnResult> EndAsync(string transactionalId, long producerId, short producerEpoch, bool commit, bool fromClient,
        short clientTransactionVersion, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(transactionalId)) return EndTxnResult.Error(ErrorCodes.InvalidRequest);
        var error = states.TryGet(transactionalId, out var shard, out var txn);
        if (error != ErrorCodes.None) return EndTxnResult.Error(error);
        if (txn is null) return EndTxnResult.Error(ErrorCodes.InvalidProducerIdMapping);
        var coordinatorEpoch = shard!.CoordinatorEpoch;

        // Version 2 needs a new producer id when the bump would exhaust the epoch: fetched
        // before the lock (it may wait for a block); unused when the decision differs.
        long nextProducerId = TransactionMetadata.NoProducerId;
        bool needsNewId;
        lock (txn.Gate)
            needsNewId = clientTransactionVersion >= 2 && txn.IsProducerEpochExhausted
                && (txn.State == TransactionState.Ongoing || (!commit && txn.State is TransactionState.Empty or TransactionState.CompleteCommit or TransactionState.CompleteAbort));
        if (needsNewId)
        {
            var (idError, id) = await producerIds.NextAsync(cancellationToken).ConfigureAwait(false);
            if (idError != ErrorCodes.None) return EndTxnResult.Error(idError);
            nextProducerId = id;
        }

        TxnTransit prepare;
        var isEpochFence = false;
        lock (txn.Gate)
        {
            var decision = Decide(txn, producerId, producerEpoch, commit, fromClient, clientTransactionVersion, nextProducerId, out isEpochFence);
            if (decision.Transit is null) return decision.Result;
            prepare = decision.Transit;
        }

        var appended = await states.AppendAsync(transactionalId, coordinatorEpoch, prepare).ConfigureAwait(false);
        if (appended != ErrorCodes.None)
        {
            logger.LogInformation("{Id}: writing {State} failed with error {Error}", transactionalId, prepare.State, appended);
            // A fence whose write failed bumped the epoch in memory only: the next fence must not bump again.
            if (isEpochFence && states.TryGet(transactionalId, out var s, out var current) == ErrorCodes.None && s!.CoordinatorEpoch == coordinatorEpoch && current is not null)
                lock (current.Gate) current.HasFailedEpochFence = true;
            return EndTxnResult.Error(appended);
        }

        // Written: check the id is still ours as prepared, then complete it in the background.
        error = states.TryGet(transactionalId, out shard, out var after);
        if (error != ErrorCodes.None) return EndTxnResult.Error(error);
        if (after is null || shard!.CoordinatorEpoch != coordinatorEpoch) return EndTxnResult.Error(ErrorCodes.NotCoordinator);
        TxnTransit complete;
        EndTxnResult answer;
        lock (after.Gate)
        {
            if (after.ProducerId != prepare.ProducerId) return EndTxnResult.Error(ErrorCodes.InvalidProducerIdMapping);
            if (after.ProducerEpoch != prepare.ProducerEpoch) return EndTxnResult.Error(ErrorCodes.ProducerFenced);
            if (after.PendingTransitionInProgress) return EndTxnResult.Error(ErrorCodes.ConcurrentTransactions);
            if (after.State != prepare.State) return EndTxnResult.Error(ErrorCodes.InvalidTxnState);
            // The producer goes on with the id and epoch it has once complete (version 2 overflow: the next id at epoch 0).
            answer = after.TransactionVersion2 && after.NextProducerId != TransactionMetadata.NoProducerId
                ? new EndTxnResult(ErrorCodes.None, after.NextProducerId, 0)
                : new EndTxnResult(ErrorCodes.None, after.ProducerId, after.ProducerEpoch);
            complete = after.PrepareComplete(states.NowMs);
        }
        _ = markers.SendAsync(coordinatorEpoch, after, complete);
        return answer;
    }

    private readonly record struct Decision(EndTxnResult Result, TxnTransit? Transit);

    private static Decision Answer(short error) => new(EndTxnResult.Error(error), null);

    /// <summary>Kafka's endTransaction checks and state switch, under the id's lock.</summary>
    private Decision Decide(TransactionMetadata txn, long producerId, short producerEpoch, bool commit, bool fromClient,
        short clientTransactionVersion, long nextProducerId, out bool isEpochFence)
    {
        isEpochFence = false;
        var fencing = txn.PendingState == TransactionState.PrepareEpochFence;
        var currentV2 = !fencing && txn.TransactionVersion2;
        // A version 2 retry: the epoch the client sent is the one the prepare moved from, or the
        // exhausted one of the producer id the transaction moved from.
        var retryOnEpochBump = currentV2 && txn.ProducerEpoch == producerEpoch + 1;
        var retryOnOverflow = currentV2 && txn.PreviousProducerId == producerId && producerEpoch == short.MaxValue - 1 && txn.ProducerEpoch == 0;
        var isRetry = retryOnEpochBump || retryOnOverflow;
        var validEpoch = currentV2
            ? txn.State switch
            {
                TransactionState.PrepareCommit or TransactionState.PrepareAbort => retryOnEpochBump,
                TransactionState.CompleteCommit or TransactionState.CompleteAbort => isRetry || producerEpoch == txn.ProducerEpoch,
                _ => producerEpoch == txn.ProducerEpoch,
            }
            : (!fromClient || producerEpoch == txn.ProducerEpoch) && producerEpoch >= txn.ProducerEpoch;

        if (txn.ProducerId != producerId && !retryOnOverflow) return Answer(ErrorCodes.InvalidProducerIdMapping);
        if (!validEpoch) return Answer(ErrorCodes.ProducerFenced);
        if (txn.PendingTransitionInProgress && !fencing) return Answer(ErrorCodes.ConcurrentTransactions);
        var current = new EndTxnResult(ErrorCodes.None, txn.ProducerId, txn.ProducerEpoch);
        var version2 = clientTransactionVersion >= 2;
        switch (txn.State)
        {
            case TransactionState.Ongoing:
                var next = commit ? TransactionState.PrepareCommit : TransactionState.PrepareAbort;
                if (fencing)
                {
                    if (commit) return Answer(ErrorCodes.InvalidTxnState);
                    // The fence's epoch becomes the producer's now; the abort carries it (no second bump).
                    isEpochFence = true;
                    txn.PendingState = null;
                    txn.ProducerEpoch = producerEpoch;
                    txn.LastProducerEpoch = TransactionMetadata.NoProducerEpoch;
                    return new Decision(current, txn.PrepareAbortOrCommit(TransactionState.PrepareAbort, 0, TransactionMetadata.NoProducerId, states.NowMs));
                }
                if (version2 && txn.IsProducerEpochExhausted && nextProducerId == TransactionMetadata.NoProducerId)
                    return Answer(ErrorCodes.ConcurrentTransactions); // became exhausted after the id was asked for: the client retries
                return new Decision(current, txn.PrepareAbortOrCommit(next, clientTransactionVersion,
                    version2 && txn.IsProducerEpochExhausted ? nextProducerId : TransactionMetadata.NoProducerId, states.NowMs));
            case TransactionState.CompleteCommit:
                if (commit) return isRetry || !currentV2 ? new Decision(current, null) : Answer(ErrorCodes.InvalidTxnState);
                return AbortWithNothingOpen(txn, isRetry, version2, nextProducerId);
            case TransactionState.CompleteAbort:
                if (!commit) return isRetry || !currentV2 ? new Decision(current, null) : AbortWithNothingOpen(txn, false, version2, nextProducerId);
                return Answer(ErrorCodes.InvalidTxnState);
            case TransactionState.PrepareCommit:
                return Answer(commit ? ErrorCodes.ConcurrentTransactions : ErrorCodes.InvalidTxnState);
            case TransactionState.PrepareAbort:
                return Answer(commit ? ErrorCodes.InvalidTxnState : ErrorCodes.ConcurrentTransactions);
            case TransactionState.Empty:
                return commit ? Answer(ErrorCodes.InvalidTxnState) : AbortWithNothingOpen(txn, false, version2, nextProducerId);
            default:
                throw new IllegalTransactionTransitionException($"{txn.TransactionalId} is {txn.State}: never a state EndTxn can find.");
        }
    }

    /// <summary>
    /// An abort with no transaction open: transaction version 2 still bumps the epoch (the client
    /// cannot know whether a produce added a partition; an exhausted epoch moves to
    /// <paramref name="nextProducerId"/>), written as PrepareAbort then CompleteAbort with no
    /// markers; version 1 answers INVALID_TXN_STATE as Kafka.
    /// </summary>
    private Decision AbortWithNothingOpen(TransactionMetadata txn, bool isRetry, bool version2, long nextProducerId)
    {
        if (isRetry || !version2) return Answer(ErrorCodes.InvalidTxnState);
        if (txn.IsProducerEpochExhausted && nextProducerId == TransactionMetadata.NoProducerId)
            return Answer(ErrorCodes.ConcurrentTransactions); // became exhausted after the id was asked for: the client retries
        return new Decision(new EndTxnResult(ErrorCodes.None, txn.ProducerId, txn.ProducerEpoch),
            txn.PrepareAbortOrCommit(TransactionState.PrepareAbort, 2, txn.IsProducerEpochExhausted ? nextProducerId : TransactionMetadata.NoProducerId, states.NowMs));
    }
}
