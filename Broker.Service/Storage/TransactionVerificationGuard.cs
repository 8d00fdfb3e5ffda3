namespace StreamPlatform.Broker.Storage;

/// <summary>
/// KIP-890 part 1 (Kafka's VerificationGuard): created by a partition leader before it asks the
/// transaction coordinator whether a producer's transaction may write to the partition, and
/// checked when the verified batch is appended. Any append or marker of the producer in
/// between removes it, so a verification answered before an ABORT can never start a new,
/// unknown (hanging) transaction after it: the append then fails INVALID_TXN_STATE and the
/// producer's retry verifies again. <see cref="Sentinel"/>: no verification was started because
/// the producer had a transaction ongoing; it only passes while that is still true.
/// </summary>
public sealed class TransactionVerificationGuard
{
    public static readonly TransactionVerificationGuard Sentinel = new();

    public override string ToString() => ReferenceEquals(this, Sentinel) ? "sentinel" : $"guard {GetHashCode()}";
}
