namespace StreamPlatform.Controller.Metadata;

/// <summary>
/// Levels of the metadata version (Kafka's metadata.version feature): what the recorded state
/// means, so a controller reading an older log knows which one-time migrations it still owes.
/// </summary>
public static class MetadataVersions
{
    /// <summary>Logs written before replication (no SetMetadataVersion record): only the leader held data, ISRs were not maintained.</summary>
    public const int BeforeReplication = 0;

    /// <summary>Replication: the ISR is the replicas in sync, changed by AlterPartition, fencing and elections.</summary>
    public const int Replication = 1;

    /// <summary>The level this controller writes and understands.</summary>
    public const int Latest = Replication;
}
