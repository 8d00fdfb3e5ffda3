namespace StreamPlatform.Broker.Storage;

/// <summary>
/// Result of a read: the offsets the fetcher needs and a region of one segment file made of
/// whole batches. No bytes are copied until <see cref="CopyTo"/>/<see cref="ToArray"/>, which
/// read straight from the file into the caller's buffer.
/// </summary>
public sealed class LogReadResult
{
    private readonly LogSegment? _segment;
    private readonly long _position;
    private readonly PartitionLog? _log;
    private readonly long _truncations;

    internal LogReadResult(short errorCode, long highWatermark, long logStartOffset, long logEndOffset, LogSegment? segment = null, long position = 0, int length = 0,
        PartitionLog? log = null, long truncations = 0)
    {
        _log = log;
        _truncations = truncations;
        ErrorCode = errorCode;
        HighWatermark = highWatermark;
        LogStartOffset = logStartOffset;
        LogEndOffset = logEndOffset;
        _segment = segment;
        _position = position;
        Length = length;
    }

    public short ErrorCode { get; }
    public long HighWatermark { get; }
    public long LogStartOffset { get; }
    public long LogEndOffset { get; }
    /// <summary>Bytes of whole batches available (0: nothing to return).</summary>
    public int Length { get; }

    /// <exception cref="LogTruncatedException">The log was truncated (it is becoming a follower)
    /// between the read and this copy: the bytes may mix the old and the new log.</exception>
    public void CopyTo(Span<byte> destination)
    {
        if (Length == 0) return;
        // Odd: the read ran while a truncation was changing the files (a sequence count).
        if (_log is not null && (_truncations & 1) != 0) throw new LogTruncatedException(_log.TopicPartition);
        try
        {
            _segment!.ReadExactly(_position, destination[..Length]);
        }
        catch (EndOfStreamException) when (_log is not null && _log.Truncations != _truncations)
        {
            throw new LogTruncatedException(_log.TopicPartition);
        }
        // Checked after the copy: a truncation that began before it ended is seen here.
        if (_log is not null && _log.Truncations != _truncations) throw new LogTruncatedException(_log.TopicPartition);
    }

    public byte[] ToArray()
    {
        var bytes = new byte[Length];
        CopyTo(bytes);
        return bytes;
    }
}

/// <summary>
/// A read raced <see cref="PartitionLog.TruncateTo"/>: its bytes are no longer the log's. An
/// ObjectDisposedException, like a read of a log closed meanwhile, because only a log that stops
/// being leader truncates (fetch handlers answer NOT_LEADER_OR_FOLLOWER for both).
/// </summary>
public sealed class LogTruncatedException(TopicPartition tp)
    : ObjectDisposedException($"log {tp}", $"The log {tp} was truncated while being read.");
