namespace StreamPlatform.Gateway.Coordinators;

/// <summary>Kafka's coordinator types (FindCoordinator key_type): which internal topic places a key's coordinator.</summary>
public enum CoordinatorKind : sbyte
{
    /// <summary>Consumer groups, over __consumer_offsets.</summary>
    Group = 0,

    /// <summary>Transactional ids, over __transaction_state.</summary>
    Transaction = 1,
}
