namespace StreamPlatform.Protos.Kafka;

/// <summary>
/// Malformed or truncated Kafka protocol input (or a value that cannot be encoded). The codec
/// throws only this type for bad bytes, so a connection handler needs a single catch: the gateway
/// closes the offending connection, as a Kafka broker does.
/// </summary>
public sealed class KafkaProtocolException : Exception
{
    public KafkaProtocolException(string message) : base(message) { }

    public KafkaProtocolException(string message, Exception innerException) : base(message, innerException) { }
}
