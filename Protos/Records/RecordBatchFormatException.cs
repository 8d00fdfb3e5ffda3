namespace StreamPlatform.Protos.Records;

/// <summary>
/// Record batch bytes that cannot be decoded (or exceed a limit). The only exception type the
/// decoders throw for bad input, so callers catch one type and answer with <see cref="ErrorCode"/>.
/// </summary>
public sealed class RecordBatchFormatException : Exception
{
    public RecordBatchFormatException(string message, short errorCode = KafkaErrorCodes.CorruptMessage, Exception? inner = null)
        : base(message, inner)
    {
        ErrorCode = errorCode;
    }

    /// <summary>The Kafka error code a broker answers with (see <see cref="KafkaErrorCodes"/>).</summary>
    public short ErrorCode { get; }
}
