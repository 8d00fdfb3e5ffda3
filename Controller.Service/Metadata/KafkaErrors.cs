namespace StreamPlatform.Controller.Metadata;

/// <summary>The Kafka error codes the controller returns (values from the Kafka protocol).</summary>
public static class KafkaErrors
{
    public const short UnknownServerError = -1;
    public const short None = 0;
    public const short UnknownTopicOrPartition = 3;
    public const short InvalidTopicException = 17;
    public const short TopicAlreadyExists = 36;
    public const short InvalidPartitions = 37;
    public const short InvalidReplicationFactor = 38;
    public const short InvalidReplicaAssignment = 39;
    public const short InvalidConfig = 40;
    public const short NotController = 41;
    public const short InvalidRequest = 42;
    public const short KafkaStorageError = 56;
    public const short TopicDeletionDisabled = 73;
    public const short StaleBrokerEpoch = 77;
    public const short ThrottlingQuotaExceeded = 89;
    public const short UnknownTopicId = 100;
    public const short BrokerIdNotRegistered = 102;
}

/// <summary>A record that is illegal in the current state; nothing was applied.</summary>
public sealed class MetadataStateException(short errorCode, string message) : Exception(message)
{
    public short ErrorCode { get; } = errorCode;
}
