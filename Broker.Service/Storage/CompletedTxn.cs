namespace StreamPlatform.Broker.Storage;

/// <summary>
/// A transaction a COMMIT/ABORT marker ended in a partition: its first data offset and the
/// marker's offset (Kafka's CompletedTxn). Until the high watermark passes the marker it still
/// holds the last stable offset back (its marker may yet be truncated).
/// </summary>
public readonly record struct CompletedTxn(long ProducerId, long FirstOffset, long LastOffset, bool IsAborted);

/// <summary>
/// One entry of the aborted-transaction index (Kafka's AbortedTxn): producer, first offset of
/// its aborted data, offset of the ABORT marker, and the last stable offset when it was written
/// (the first offset of the oldest other transaction then ongoing, else the marker offset + 1).
/// </summary>
public readonly record struct AbortedTxn(long ProducerId, long FirstOffset, long LastOffset, long LastStableOffset);
