namespace StreamPlatform.Broker.Transactions;

/// <summary>
/// The state of a transactional id (Kafka's TransactionState; the byte is the TransactionStatus
/// of __transaction_state values). Legal transitions, by target (<see cref="TransactionStates.ValidPrevious"/>):
/// <list type="bullet">
/// <item>Empty &lt;- Empty, CompleteCommit, CompleteAbort (InitProducerId: epoch bump or new producer id)</item>
/// <item>Ongoing &lt;- Ongoing, Empty, CompleteCommit, CompleteAbort (AddPartitionsToTxn, AddOffsetsToTxn, implicit add of transaction version 2)</item>
/// <item>PrepareCommit &lt;- Ongoing (EndTxn commit)</item>
/// <item>PrepareAbort &lt;- Ongoing, PrepareEpochFence (EndTxn abort, timeout, fencing by InitProducerId);
///   and, with transaction version 2 only, Empty, CompleteCommit, CompleteAbort (an abort with nothing to abort still bumps the epoch)</item>
/// <item>CompleteCommit &lt;- PrepareCommit; CompleteAbort &lt;- PrepareAbort (markers written)</item>
/// <item>Dead &lt;- Empty, CompleteCommit, CompleteAbort (transactional.id.expiration.ms)</item>
/// <item>PrepareEpochFence &lt;- Ongoing (in memory only: the abort that fences it is what is written)</item>
/// </list>
/// </summary>
public enum TransactionState : byte
{
    Empty = 0,
    Ongoing = 1,
    PrepareCommit = 2,
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
    Dead = 6,
    PrepareEpochFence = 7,
}

public static class TransactionStates
{
    /// <summary>The states a transition to <paramref name="target"/> may start from.</summary>
    public static bool ValidPrevious(TransactionState target, TransactionState from, bool transactionVersion2 = false) => target switch
    {
        TransactionState.Empty => from is TransactionState.Empty or TransactionState.CompleteCommit or TransactionState.CompleteAbort,
        TransactionState.Ongoing => from is TransactionState.Ongoing or TransactionState.Empty or TransactionState.CompleteCommit or TransactionState.CompleteAbort,
        TransactionState.PrepareCommit => from is TransactionState.Ongoing,
        TransactionState.PrepareAbort => from is TransactionState.Ongoing or TransactionState.PrepareEpochFence
            || (transactionVersion2 && from is TransactionState.Empty or TransactionState.CompleteCommit or TransactionState.CompleteAbort),
        TransactionState.CompleteCommit => from is TransactionState.PrepareCommit,
        TransactionState.CompleteAbort => from is TransactionState.PrepareAbort,
        TransactionState.Dead => from is TransactionState.Empty or TransactionState.CompleteCommit or TransactionState.CompleteAbort,
        TransactionState.PrepareEpochFence => from is TransactionState.Ongoing,
        _ => false,
    };

    /// <summary>An id in this state may expire after transactional.id.expiration.ms without use.</summary>
    public static bool ExpirationAllowed(TransactionState state)
        => state is TransactionState.Empty or TransactionState.CompleteCommit or TransactionState.CompleteAbort;

    /// <summary>The name DescribeTransactions and ListTransactions show (Kafka's).</summary>
    public static string Name(TransactionState state) => state.ToString();

    /// <summary>A state by its Kafka name (ListTransactions filters); false for an unknown name.</summary>
    public static bool TryParse(string name, out TransactionState state)
    {
        foreach (var s in Enum.GetValues<TransactionState>())
        {
            if (string.Equals(Name(s), name, StringComparison.Ordinal))
            {
                state = s;
                return true;
            }
        }
        state = default;
        return false;
    }

    /// <summary>A state from its log byte; false for a byte no state has (a record this version cannot read).</summary>
    public static bool TryFromId(sbyte id, out TransactionState state)
    {
        state = (TransactionState)(byte)id;
        return id is >= 0 and <= 7;
    }
}
