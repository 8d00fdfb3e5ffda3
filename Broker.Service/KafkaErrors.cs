namespace StreamPlatform.Broker;

/// <summary>
/// The Kafka error codes the broker answers with, by Kafka's names. A stand-in until the
/// generated ErrorCode enum lands; the numbers are Kafka's and never change.
/// </summary>
internal static class KafkaErrors
{
    public const short NONE = 0;
    public const short OFFSET_OUT_OF_RANGE = 1;
    public const short CORRUPT_MESSAGE = 2;
    public const short UNKNOWN_TOPIC_OR_PARTITION = 3;
    public const short NOT_LEADER_OR_FOLLOWER = 6;
    public const short REQUEST_TIMED_OUT = 7;
    public const short MESSAGE_TOO_LARGE = 10;
    public const short KAFKA_STORAGE_ERROR = 56;
    public const short INVALID_REQUEST = 42;
    public const short INVALID_TIMESTAMP = 32;
    public const short STALE_BROKER_EPOCH = 77;
    public const short FENCED_LEADER_EPOCH = 74;
    public const short UNKNOWN_LEADER_EPOCH = 75;
    public const short INVALID_RECORD = 87;
    public const short DUPLICATE_BROKER_REGISTRATION = 101;
}
