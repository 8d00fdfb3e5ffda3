namespace StreamPlatform.Broker.Transactions;

/// <summary>
/// Who appends to a log as leader (Kafka's AppendOrigin), which decides the producer-state
/// checks: a client's idempotent or transactional batches are checked for sequence and epoch;
/// a coordinator's own writes (__consumer_offsets, __transaction_state, transactional offset
/// commits) and transaction markers carry producer ids but no client sequence.
/// </summary>
public enum AppendOrigin
{
    /// <summary>A producer's batches (Produce): sequence, epoch and de-duplication checks apply.</summary>
    Client,
    /// <summary>A coordinator's batches: producer epoch checked, no sequence checks.</summary>
    Coordinator,
    /// <summary>COMMIT/ABORT control batches from WriteTxnMarkers.</summary>
    TransactionMarker,
}
