namespace StreamPlatform.Controller.Metadata;

/// <summary>A record that is illegal in the current state; nothing was applied.</summary>
/// <param name="errorCode">The Kafka error code to answer with (a <c>StreamPlatform.Protos.Kafka.Messages.ErrorCodes</c> value).</param>
public sealed class MetadataStateException(short errorCode, string message) : Exception(message)
{
    public short ErrorCode { get; } = errorCode;
}
