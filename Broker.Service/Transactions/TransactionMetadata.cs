using System.Collections.Immutable;
using StreamPlatform.Broker.Storage;

namespace StreamPlatform.Broker.Transactions;

/// <summary>
/// The target of one state change of a transactional id (Kafka's TxnTransitMetadata): prepared
/// under the id's lock, written to __transaction_state, and applied
/// (<see cref="TransactionMetadata.CompleteTransitionTo"/>) only once the write is committed.
/// </summary>
public sealed record TxnTransit(
    long ProducerId,
    long PreviousProducerId,
    long NextProducerId,
    short ProducerEpoch,
    short LastProducerEpoch,
    int TimeoutMs,
    TransactionState State,
    ImmutableHashSet<TopicPartition> Partitions,
    long StartTimestampMs,
    long LastUpdateTimestampMs,
    short ClientTransactionVersion)
{
    public bool TransactionVersion2 => ClientTransactionVersion >= 2;
}

/// <summary>A transition the state machine does not allow: a bug, never a client's error (clients get Kafka codes before this).</summary>
public sealed class IllegalTransactionTransitionException(string message) : InvalidOperationException(message);

/// <summary>
/// One transactional id's state on its coordinator (Kafka's TransactionMetadata). Mutable, and
/// guarded by <see cref="Gate"/>: every read and change happens under it. A change is two steps:
/// Prepare* checks the transition (<see cref="TransactionStates.ValidPrevious"/>), sets
/// <see cref="PendingState"/> (which blocks other changes: CONCURRENT_TRANSACTIONS) and returns
/// the <see cref="TxnTransit"/> to write; <see cref="CompleteTransitionTo"/> applies it after the
/// write committed, or the pending state is cleared when the write failed.
/// <para>Epochs: a producer epoch at or above <c>short.MaxValue - 1</c> is exhausted (the
/// coordinator keeps one epoch to fence with); the next InitProducerId, or with transaction
/// version 2 the next EndTxn, moves the id to a new producer id at epoch 0.</para>
/// </summary>
public sealed class TransactionMetadata(string transactionalId, long producerId, long previousProducerId, long nextProducerId, short producerEpoch,
    short lastProducerEpoch, int timeoutMs, TransactionState state, long startTimestampMs, long lastUpdateTimestampMs, short clientTransactionVersion)
{
    public const long NoProducerId = -1;
    public const short NoProducerEpoch = -1;

    public static bool IsEpochExhausted(short epoch) => epoch >= short.MaxValue - 1;

    public Lock Gate { get; } = new();
    public string TransactionalId { get; } = transactionalId;
    public long ProducerId { get; private set; } = producerId;
    /// <summary>The producer id before the last rotation (a retry of the InitProducerId that rotated it is recognised).</summary>
    public long PreviousProducerId { get; private set; } = previousProducerId;
    /// <summary>Transaction version 2: the producer id the id moves to once the ending transaction completes (its epoch was exhausted).</summary>
    public long NextProducerId { get; private set; } = nextProducerId;
    public short ProducerEpoch { get; internal set; } = producerEpoch;
    /// <summary>The epoch before the last bump (in memory only: a retried InitProducerId or EndTxn of that epoch is recognised).</summary>
    public short LastProducerEpoch { get; internal set; } = lastProducerEpoch;
    public int TimeoutMs { get; private set; } = timeoutMs;
    public TransactionState State { get; private set; } = state;
    public HashSet<TopicPartition> Partitions { get; } = [];
    /// <summary>When the ongoing transaction added its first partition (-1: none).</summary>
    public long StartTimestampMs { get; private set; } = startTimestampMs;
    public long LastUpdateTimestampMs { get; private set; } = lastUpdateTimestampMs;
    /// <summary>The transaction version of the client's last state change (2: the epoch is bumped at every EndTxn).</summary>
    public short ClientTransactionVersion { get; private set; } = clientTransactionVersion;
    /// <summary>The state a prepared, not yet committed change moves to; null when none is in flight.</summary>
    public TransactionState? PendingState { get; internal set; }
    /// <summary>An epoch fence was prepared but its write failed: the next fence does not bump again (the bumped epoch was never given out).</summary>
    public bool HasFailedEpochFence { get; set; }

    public bool TransactionVersion2 => ClientTransactionVersion >= 2;
    public bool PendingTransitionInProgress => PendingState is not null;
    public bool IsProducerEpochExhausted => IsEpochExhausted(ProducerEpoch);
    private bool HasPendingTransaction => State is TransactionState.Ongoing or TransactionState.PrepareAbort or TransactionState.PrepareCommit;

    /// <summary>A new id's metadata before its first InitProducerId is written (epoch -1: the first bump gives 0).</summary>
    public static TransactionMetadata New(string transactionalId, long producerId, int timeoutMs, long nowMs)
        => new(transactionalId, producerId, NoProducerId, NoProducerId, NoProducerEpoch, NoProducerEpoch, timeoutMs, TransactionState.Empty, -1, nowMs, 0);

    /// <summary>Ongoing -> PrepareEpochFence (in memory): the epoch that fences the current producer; the abort written next carries it.</summary>
    public TxnTransit PrepareFenceProducerEpoch()
    {
        if (ProducerEpoch == short.MaxValue) throw new IllegalTransactionTransitionException($"{TransactionalId}: cannot fence epoch {short.MaxValue}, it would overflow.");
        // A fence whose write failed already bumped the epoch in memory, never given out: not bumped again.
        var bumped = HasFailedEpochFence ? ProducerEpoch : (short)(ProducerEpoch + 1);
        return PrepareTransitionTo(TransactionState.PrepareEpochFence, ProducerId, NoProducerId, bumped, NoProducerEpoch, TimeoutMs,
            [.. Partitions], StartTimestampMs, LastUpdateTimestampMs, ClientTransactionVersion);
    }

    /// <summary>
    /// InitProducerId on Empty/CompleteCommit/CompleteAbort: the next epoch. With an expected epoch
    /// (KIP-360 recovery): the current one bumps; the last one is a retry of a bump that
    /// succeeded (answered again, unchanged); any other is PRODUCER_FENCED (returned as error).
    /// </summary>
    public TxnTransit? PrepareIncrementProducerEpoch(int newTimeoutMs, short? expectedEpoch, long nowMs, out short error)
    {
        if (IsProducerEpochExhausted) throw new IllegalTransactionTransitionException($"{TransactionalId}: producer {ProducerId} has no epoch left.");
        error = 0;
        var bumped = (short)(ProducerEpoch + 1);
        short next, last;
        if (expectedEpoch is not { } expected)
            (next, last) = (bumped, NoProducerEpoch);
        else if (ProducerEpoch == NoProducerEpoch || expected == ProducerEpoch)
            (next, last) = (bumped, ProducerEpoch);
        else if (expected == LastProducerEpoch)
            (next, last) = (ProducerEpoch, LastProducerEpoch);
        else
        {
            error = Protos.Kafka.Messages.ErrorCodes.ProducerFenced;
            return null;
        }
        return PrepareTransitionTo(TransactionState.Empty, ProducerId, NoProducerId, next, last, newTimeoutMs, [], -1, nowMs, ClientTransactionVersion);
    }

    /// <summary>InitProducerId with the epoch exhausted: a new producer id at epoch 0.</summary>
    public TxnTransit PrepareProducerIdRotation(long newProducerId, int newTimeoutMs, long nowMs, bool recordLastEpoch)
    {
        if (HasPendingTransaction) throw new IllegalTransactionTransitionException($"{TransactionalId}: cannot rotate producer ids while a transaction is pending.");
        return PrepareTransitionTo(TransactionState.Empty, newProducerId, NoProducerId, 0, recordLastEpoch ? ProducerEpoch : NoProducerEpoch, newTimeoutMs,
            [], -1, nowMs, ClientTransactionVersion);
    }

    /// <summary>AddPartitionsToTxn / AddOffsetsToTxn / implicit add: Ongoing with the union of partitions (a new transaction starts its clock).</summary>
    public TxnTransit PrepareAddPartitions(IEnumerable<TopicPartition> added, long nowMs, short clientTransactionVersion)
    {
        var start = State is TransactionState.Empty or TransactionState.CompleteAbort or TransactionState.CompleteCommit ? nowMs : StartTimestampMs;
        return PrepareTransitionTo(TransactionState.Ongoing, ProducerId, NoProducerId, ProducerEpoch, LastProducerEpoch, TimeoutMs,
            [.. Partitions, .. added], start, nowMs, clientTransactionVersion);
    }

    /// <summary>
    /// EndTxn: PrepareCommit or PrepareAbort. Transaction version 2 bumps the epoch here (the last
    /// one is kept to recognise a retry); <paramref name="nextProducerId"/> is the id to move to
    /// when the bump exhausts the epoch (-1 otherwise).
    /// </summary>
    public TxnTransit PrepareAbortOrCommit(TransactionState newState, short clientTransactionVersion, long nextProducerId, long nowMs)
    {
        var (epoch, last) = clientTransactionVersion >= 2 ? ((short)(ProducerEpoch + 1), ProducerEpoch) : (ProducerEpoch, LastProducerEpoch);
        // Version 2's abort with no transaction open (Empty, Complete*) starts and ends an empty one now.
        var start = State == TransactionState.Ongoing ? StartTimestampMs : nowMs;
        return PrepareTransitionTo(newState, ProducerId, nextProducerId, epoch, last, TimeoutMs, [.. Partitions], start, nowMs, clientTransactionVersion);
    }

    /// <summary>Markers written: CompleteCommit or CompleteAbort, without partitions (transaction version 2: onto the next producer id when there is one).</summary>
    public TxnTransit PrepareComplete(long nowMs)
    {
        var newState = State == TransactionState.PrepareCommit ? TransactionState.CompleteCommit : TransactionState.CompleteAbort;
        // The prepare was written: a fence before it is complete.
        HasFailedEpochFence = false;
        var (pid, epoch) = TransactionVersion2 && NextProducerId != NoProducerId ? (NextProducerId, (short)0) : (ProducerId, ProducerEpoch);
        return PrepareTransitionTo(newState, pid, NoProducerId, epoch, ProducerEpoch, TimeoutMs, [], StartTimestampMs, nowMs, ClientTransactionVersion);
    }

    /// <summary>transactional.id.expiration.ms passed: the id is removed (a tombstone is written).</summary>
    public TxnTransit PrepareDead()
        => PrepareTransitionTo(TransactionState.Dead, ProducerId, NoProducerId, ProducerEpoch, LastProducerEpoch, TimeoutMs, [], StartTimestampMs, LastUpdateTimestampMs, ClientTransactionVersion);

    private TxnTransit PrepareTransitionTo(TransactionState target, long producerId, long nextProducerId, short epoch, short lastEpoch, int timeoutMs,
        ImmutableHashSet<TopicPartition> partitions, long startMs, long nowMs, short clientTransactionVersion)
    {
        if (PendingState is { } pending)
            throw new IllegalTransactionTransitionException($"{TransactionalId}: preparing {target} while {pending} is pending.");
        if (producerId < 0) throw new IllegalTransactionTransitionException($"{TransactionalId}: illegal producer id {producerId}.");
        if (target != TransactionState.Dead && epoch < 0) throw new IllegalTransactionTransitionException($"{TransactionalId}: illegal producer epoch {epoch}.");
        if (!TransactionStates.ValidPrevious(target, State, clientTransactionVersion >= 2))
            throw new IllegalTransactionTransitionException($"{TransactionalId}: {State} -> {target} is not a legal transition.");
        PendingState = target;
        return new TxnTransit(producerId, ProducerId, nextProducerId, epoch, lastEpoch, timeoutMs, target, partitions, startMs, nowMs, clientTransactionVersion);
    }

    /// <summary>
    /// Applies a committed change. The checks pair with the prepares: the pending state is the
    /// target, the epoch moves only as the transition allows, partitions only grow while
    /// Ongoing, and a prepare carries exactly the partitions of the transaction.
    /// </summary>
    public void CompleteTransitionTo(TxnTransit t)
    {
        if (PendingState != t.State) Fail(t, $"pending state is {PendingState?.ToString() ?? "none"}");
        switch (t.State)
        {
            case TransactionState.Empty:
                if ((ProducerEpoch != t.ProducerEpoch && !ValidEpochBump(t)) || !t.Partitions.IsEmpty || t.StartTimestampMs != -1) Fail(t, "bad InitProducerId change");
                TimeoutMs = t.TimeoutMs;
                ProducerEpoch = t.ProducerEpoch;
                LastProducerEpoch = t.LastProducerEpoch;
                ProducerId = t.ProducerId;
                PreviousProducerId = t.PreviousProducerId;
                break;
            case TransactionState.Ongoing:
                if (!ValidEpoch(t) || !Partitions.IsSubsetOf(t.Partitions) || TimeoutMs != t.TimeoutMs) Fail(t, "bad add-partitions change");
                StartTimestampMs = t.StartTimestampMs;
                Partitions.UnionWith(t.Partitions);
                break;
            case TransactionState.PrepareCommit or TransactionState.PrepareAbort:
                if (!ValidEpoch(t) || !Partitions.SetEquals(t.Partitions) || TimeoutMs != t.TimeoutMs
                    || (StartTimestampMs != t.StartTimestampMs && State == TransactionState.Ongoing))
                    Fail(t, "bad prepare change");
                StartTimestampMs = t.StartTimestampMs;
                if (t.TransactionVersion2)
                {
                    ProducerEpoch = t.ProducerEpoch;
                    LastProducerEpoch = t.LastProducerEpoch;
                    NextProducerId = t.NextProducerId;
                }
                break;
            case TransactionState.CompleteCommit or TransactionState.CompleteAbort:
                if (!ValidEpoch(t) || TimeoutMs != t.TimeoutMs || t.StartTimestampMs == -1) Fail(t, "bad complete change");
                StartTimestampMs = t.StartTimestampMs;
                Partitions.Clear();
                if (t.TransactionVersion2)
                {
                    ProducerEpoch = t.ProducerEpoch;
                    LastProducerEpoch = t.LastProducerEpoch;
                    PreviousProducerId = t.PreviousProducerId;
                    ProducerId = t.ProducerId;
                    NextProducerId = t.NextProducerId;
                }
                break;
            default:
                // PrepareEpochFence is never written (the abort after it is); Dead ends in removal, not in a state.
                Fail(t, $"{t.State} is never completed");
                break;
        }
        ClientTransactionVersion = t.ClientTransactionVersion;
        LastUpdateTimestampMs = t.LastUpdateTimestampMs;
        PendingState = null;
        State = t.State;
    }

    /// <summary>A marker for <paramref name="partition"/> was written (only while a commit or abort completes).</summary>
    public void RemovePartition(TopicPartition partition)
    {
        if (State is not (TransactionState.PrepareCommit or TransactionState.PrepareAbort))
            throw new IllegalTransactionTransitionException($"{TransactionalId}: removing a partition in state {State}.");
        Partitions.Remove(partition);
    }

    /// <summary>The change keeps this producer: same id and epoch, or (version 2) the epoch the prepare or the overflow moved from.</summary>
    private bool ValidEpoch(TxnTransit t)
    {
        var overflowComplete = t.TransactionVersion2 && t.State is TransactionState.CompleteCommit or TransactionState.CompleteAbort && t.ProducerEpoch == 0;
        var epoch = overflowComplete || (t.TransactionVersion2 && t.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort) ? t.LastProducerEpoch : t.ProducerEpoch;
        var pid = overflowComplete ? t.PreviousProducerId : t.ProducerId;
        return epoch == ProducerEpoch && pid == ProducerId;
    }

    private bool ValidEpochBump(TxnTransit t) => t.ProducerEpoch == ProducerEpoch + 1 || (t.ProducerEpoch == 0 && t.ProducerId != ProducerId);

    private void Fail(TxnTransit t, string why)
        => throw new IllegalTransactionTransitionException($"{TransactionalId} ({State}, producer {ProducerId} epoch {ProducerEpoch}): transition to {t} failed: {why}.");
}
