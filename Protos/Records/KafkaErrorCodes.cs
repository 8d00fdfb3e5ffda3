namespace StreamPlatform.Protos.Records;

/// <summary>
/// The Kafka error codes the record-batch layer can produce, as Kafka names them. Plain shorts on
/// purpose: the generated ErrorCode enum lives elsewhere and the numbers are the wire contract.
/// </summary>
public static class KafkaErrorCodes
{
    public const short None = 0;
    /// <summary>CRC mismatch, torn batch, bad varint, sizes that do not add up.</summary>
    public const short CorruptMessage = 2;
    /// <summary>Batch larger than max.message.bytes (Java: RecordTooLargeException).</summary>
    public const short MessageTooLarge = 10;
    /// <summary>Timestamp outside message.timestamp.before/after.max.ms.</summary>
    public const short InvalidTimestamp = 32;
    /// <summary>Unknown codec id, or zstd on a produce request older than v7.</summary>
    public const short UnsupportedCompressionType = 76;
    /// <summary>Well-formed bytes breaking a rule: null key on a compacted topic, count mismatch, control batch from a client.</summary>
    public const short InvalidRecord = 87;
}
