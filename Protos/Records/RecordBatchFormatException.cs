using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Protos.Records;

/// <summary>
/// Record batch bytes that cannot be decoded (or exceed a limit). The only exception type the
/// decoders throw for bad input, so callers catch one type and answer with <see cref="ErrorCode"/>.
/// </summary>
public sealed class RecordBatchFormatException : Exception
{
    public RecordBatchFormatException(string message, short errorCode = ErrorCodes.CorruptMessage, Exception? inner = null)
        : base(message, inner)
    {
        ErrorCode = errorCode;
    }

    /// <summary>
    /// The Kafka error code a broker answers with (an <see cref="ErrorCodes"/> value). The record layer
    /// uses: CorruptMessage for a CRC mismatch, torn batch, bad varint or sizes that do not add up;
    /// MessageTooLarge for a batch over max.message.bytes (Java: RecordTooLargeException);
    /// InvalidTimestamp for a timestamp outside message.timestamp.before/after.max.ms;
    /// UnsupportedCompressionType for an unknown codec id, or zstd on a produce request older than v7;
    /// InvalidRecord for well-formed bytes breaking a rule (null key on a compacted topic, count
    /// mismatch, control batch from a client).
    /// </summary>
    public short ErrorCode { get; }
}
