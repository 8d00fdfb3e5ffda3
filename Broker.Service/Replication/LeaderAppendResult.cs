using StreamPlatform.Broker.Storage;

namespace StreamPlatform.Broker.Replication;

/// <summary>
/// A leader append (<see cref="Partition.AppendAsLeader"/>): <see cref="Append"/> is the log's
/// answer (or the refusal: NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS); <see cref="Commit"/> is
/// null unless acks=-1 and the records were appended: it completes with the error code of the
/// commit (0 once the high watermark passed the records; NOT_ENOUGH_REPLICAS_AFTER_APPEND;
/// REQUEST_TIMED_OUT; NOT_LEADER_OR_FOLLOWER).
/// </summary>
public readonly record struct LeaderAppendResult(LogAppendResult Append, Task<short>? Commit);
