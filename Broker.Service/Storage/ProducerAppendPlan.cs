using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Storage;

/// <summary>
/// The producer-state outcome of one append, worked out before anything is written (Kafka's
/// ProducerAppendInfo per producer): an error (nothing is appended), a duplicate (nothing is
/// appended, the original batch's offsets are answered), or the updated entries and the
/// transactions the append ends, applied by <see cref="ProducerStateManager.Apply"/> once the
/// batches are on disk and before the new log end offset is published.
/// </summary>
public sealed class ProducerAppendPlan
{
    internal Dictionary<long, ProducerStateEntry>? Updated;
    internal List<CompletedTxn>? Completed;

    public short ErrorCode { get; private set; }
    public string? ErrorMessage { get; private set; }
    /// <summary>The retained batch a client's retry duplicates: answered with its offsets, not appended.</summary>
    public ProducerBatchMetadata? Duplicate { get; internal set; }
    public bool Failed => ErrorCode != ErrorCodes.None;
    public bool IsEmpty => Updated is null;

    internal bool Fail(short code, string message)
    {
        ErrorCode = code;
        ErrorMessage = message;
        return false;
    }

    internal ProducerStateEntry? Pending(long producerId) => Updated?.GetValueOrDefault(producerId);

    internal void Set(ProducerStateEntry entry) => (Updated ??= [])[entry.ProducerId] = entry;

    internal void Complete(CompletedTxn txn) => (Completed ??= []).Add(txn);
}
