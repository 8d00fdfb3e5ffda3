using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Broker.Transactions;
using StreamPlatform.Protos.Records;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Replication;

/// <summary>
/// One hosted partition's replica state machine (Kafka's Partition): role, leader epoch,
/// partition epoch, replicas, ISR and, as leader, what each follower fetched; the high watermark
/// it computes lives in the <see cref="PartitionLog"/> (<see cref="PartitionLog.ReplicatedHighWatermark"/>).
/// <para>Legal transitions (driven by the leader epoch of metadata, <see cref="PartitionState"/>):
/// <list type="bullet">
/// <item>None -> Leader (<see cref="MakeLeader"/>) and None -> Follower (<see cref="MakeFollower"/>): any epoch.</item>
/// <item>Leader -> Follower, Follower -> Leader, Follower -> Follower (new leader or new epoch):
/// only with a higher leader epoch.</item>
/// <item>Leader -> Leader with a higher leader epoch (re-elected): followers' states reset.</item>
/// <item>Leader -> Leader / Follower -> Follower with the same leader epoch and a higher partition
/// epoch: replicas and ISR updated only (an ISR change committed by the controller).</item>
/// <item>Any -> None (<see cref="Stop"/>): the partition is no longer hosted here.</item>
/// </list>
/// Everything else is refused as <see cref="TransitionResult.Stale"/>: a lower leader epoch, a
/// lower partition epoch with the same leader epoch, or another role with the same leader epoch
/// (one epoch has one leader).</para>
/// <para>Leader: the high watermark is the minimum log end offset over the maximal ISR (committed
/// ISR united with a pending proposal, <see cref="IsrProposal"/>), and only moves forward; acks=-1
/// produce waiters (<see cref="Commits"/>) complete as it passes them. Follower: nothing is
/// truncated when the role changes; the fetch protocol does it (<see cref="ApplyFromLeader"/>).</para>
/// <para>Locking (Kafka's leaderIsrUpdateLock): role and ISR changes take the write lock;
/// appends, follower fetches and follower applies take the read lock, so an append never
/// interleaves with a role change. The lock is never held across an await.</para>
/// </summary>
public sealed class Partition
{
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    // Serializes the high-watermark computation and update (followers' fetches race each other).
    private readonly object _hwLock = new();
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    // Guarded by _lock (written under the write lock).
    private volatile ReplicaRole _role = ReplicaRole.None;
    private int _leaderId = -1;
    private int _leaderEpoch = -1;
    private int _partitionEpoch = -1;
    private int[] _replicas = [];
    private int[] _isr = [];
    private int[] _maximalIsr = [];
    private IsrProposal? _proposal;
    private Dictionary<int, FollowerReplica> _followers = [];
    private long _leaderEpochStartOffset = -1;

    public Partition(TopicPartition topicPartition, int localBrokerId, PartitionLog log, TimeProvider time, ILogger? logger = null)
    {
        TopicPartition = topicPartition;
        LocalBrokerId = localBrokerId;
        Log = log;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
    }

    public TopicPartition TopicPartition { get; }
    public int LocalBrokerId { get; }
    public PartitionLog Log { get; }
    public ReplicaRole Role => _role;
    public int LeaderId => Read(() => _leaderId);
    public int LeaderEpoch => Read(() => _leaderEpoch);
    public int PartitionEpoch => Read(() => _partitionEpoch);
    public IReadOnlyList<int> Replicas => Read(() => _replicas);
    /// <summary>The ISR the controller committed.</summary>
    public IReadOnlyList<int> Isr => Read(() => _isr);
    /// <summary>Committed ISR united with the pending proposal: the replicas the high watermark waits for.</summary>
    public IReadOnlyList<int> MaximalIsr => Read(() => _maximalIsr);
    /// <summary>The ISR change waiting for the controller's answer, if any.</summary>
    public IsrProposal? PendingIsrChange => Read(() => _proposal);
    /// <summary>The log end offset when this broker became leader of the current epoch (a follower below it cannot join the ISR).</summary>
    public long LeaderEpochStartOffset => Read(() => _leaderEpochStartOffset);
    public long HighWatermark => Log.HighWatermark;
    /// <summary>min.insync.replicas of the topic (resolved by the <see cref="ReplicaManager"/> from metadata).</summary>
    public int MinInSyncReplicas { get; set; } = 1;
    /// <summary>replica.lag.time.max.ms of the broker.</summary>
    public long ReplicaLagTimeMaxMs { get; set; } = 30000;
    public CommitPurgatory Commits { get; } = new();

    /// <summary>Raised (outside the lock) when this leader made an ISR proposal for the controller.</summary>
    public Action<Partition>? IsrChangeProposed { get; set; }

    /// <summary>What the leader knows of one follower (null: not a follower of this leader).</summary>
    public FollowerReplica? Follower(int brokerId) => Read(() => _followers.GetValueOrDefault(brokerId));

    /// <summary>The followers this leader tracks (empty unless leader).</summary>
    public IReadOnlyList<FollowerReplica> Followers => Read(() => _followers.Values.ToArray());

    private T Read<T>(Func<T> read)
    {
        _lock.EnterReadLock();
        try
        {
            return read();
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>
    /// Becomes (or stays) leader in <paramref name="state"/>'s epoch. A new leader epoch starts at
    /// the log end offset; the high watermark becomes the leader's own log end offset at once
    /// when the ISR is only this broker, else it waits for the followers' fetches.
    /// </summary>
    public TransitionResult MakeLeader(PartitionState state)
    {
        if (state.LeaderId != LocalBrokerId) throw new ArgumentException($"Broker {LocalBrokerId} cannot lead with leader {state.LeaderId}.", nameof(state));
        TransitionResult result;
        _lock.EnterWriteLock();
        try
        {
            result = Classify(state, ReplicaRole.Leader);
            if (result == TransitionResult.Changed)
            {
                // First, as it may fail (it writes the epoch checkpoint): nothing changed then.
                // Stamps later appends and records the epoch's start offset at once, so followers'
                // divergence checks get this epoch's answer before its first append.
                Log.AssignLeaderEpoch(state.LeaderEpoch);
                var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
                var leo = Log.LogEndOffset;
                _role = ReplicaRole.Leader;
                _leaderId = LocalBrokerId;
                _leaderEpoch = state.LeaderEpoch;
                _leaderEpochStartOffset = leo;
                SetCommittedLocked(state);
                Log.ReplicatedHighWatermark = ReplicatedHighWatermarkFor(_replicas);
                var followers = new Dictionary<int, FollowerReplica>();
                foreach (var id in _replicas)
                {
                    if (id == LocalBrokerId) continue;
                    var f = new FollowerReplica(id);
                    f.Reset(nowMs, leo, _isr.Contains(id));
                    followers[id] = f;
                }
                _followers = followers;
            }
            else if (result == TransitionResult.Updated)
            {
                SetCommittedLocked(state);
                Log.ReplicatedHighWatermark = ReplicatedHighWatermarkFor(_replicas);
                var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
                var followers = new Dictionary<int, FollowerReplica>();
                foreach (var id in _replicas)
                {
                    if (id == LocalBrokerId) continue;
                    if (!_followers.TryGetValue(id, out var f))
                    {
                        f = new FollowerReplica(id);
                        f.Reset(nowMs, Log.LogEndOffset, inSync: false);
                    }
                    followers[id] = f;
                }
                _followers = followers;
            }
        }
        finally
        {
            _lock.ExitWriteLock();
        }
        if (result is TransitionResult.Changed or TransitionResult.Updated)
        {
            _logger.LogInformation("{Partition}: leader in epoch {Epoch} (partition epoch {PartitionEpoch}), ISR [{Isr}]",
                TopicPartition, state.LeaderEpoch, state.PartitionEpoch, string.Join(",", state.Isr));
            MaybeIncrementHighWatermark();
            TryCompleteCommits();
        }
        else if (result == TransitionResult.Stale)
        {
            _logger.LogWarning("{Partition}: ignored leadership in stale epoch {Epoch}/{PartitionEpoch} (current {Current}/{CurrentPartition})",
                TopicPartition, state.LeaderEpoch, state.PartitionEpoch, _leaderEpoch, _partitionEpoch);
        }
        return result;
    }

    /// <summary>
    /// Becomes (or stays) a follower of <paramref name="state"/>'s leader (-1: none now). Nothing
    /// is truncated here: the first fetch from the new leader finds out where the logs diverge.
    /// A leader that steps down answers its acks=-1 waiters NOT_LEADER_OR_FOLLOWER.
    /// </summary>
    public TransitionResult MakeFollower(PartitionState state)
    {
        if (state.LeaderId == LocalBrokerId) throw new ArgumentException($"Broker {LocalBrokerId} cannot follow itself.", nameof(state));
        TransitionResult result;
        bool wasLeader;
        _lock.EnterWriteLock();
        try
        {
            wasLeader = _role == ReplicaRole.Leader;
            result = Classify(state, ReplicaRole.Follower);
            if (result == TransitionResult.Changed)
            {
                _role = ReplicaRole.Follower;
                _leaderId = state.LeaderId;
                _leaderEpoch = state.LeaderEpoch;
                _leaderEpochStartOffset = -1;
                _followers = [];
                // The follower's high watermark comes from the leader only (SetFollowerHighWatermark).
                Log.ReplicatedHighWatermark = true;
                SetCommittedLocked(state);
            }
            else if (result == TransitionResult.Updated)
            {
                SetCommittedLocked(state);
            }
        }
        finally
        {
            _lock.ExitWriteLock();
        }
        if (result == TransitionResult.Changed)
        {
            _logger.LogInformation("{Partition}: follower of {Leader} in epoch {Epoch}", TopicPartition, state.LeaderId, state.LeaderEpoch);
            if (wasLeader) Commits.CompleteAll(ErrorCodes.NotLeaderOrFollower);
        }
        return result;
    }

    /// <summary>No longer hosted here (topic deleted, replica moved away, broker stopping): waiters get NOT_LEADER_OR_FOLLOWER.</summary>
    public void Stop()
    {
        _lock.EnterWriteLock();
        try
        {
            _role = ReplicaRole.None;
            _followers = [];
            _proposal = null;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
        Commits.CompleteAll(ErrorCodes.NotLeaderOrFollower);
    }

    /// <summary>
    /// A leader with followers moves its high watermark itself (min over the ISR). A partition
    /// whose only replica is this broker has no follower to wait for: its log keeps the
    /// unreplicated mode, high watermark = log end offset, so every append is committed at once
    /// whoever makes it (the same value the ISR rule gives, without the per-append update).
    /// </summary>
    private bool ReplicatedHighWatermarkFor(int[] replicas) => replicas.Length != 1 || replicas[0] != LocalBrokerId;

    private TransitionResult Classify(PartitionState state, ReplicaRole role)
    {
        if (_role == ReplicaRole.None) return state.LeaderEpoch >= _leaderEpoch ? TransitionResult.Changed : TransitionResult.Stale;
        if (state.LeaderEpoch > _leaderEpoch) return TransitionResult.Changed;
        if (state.LeaderEpoch < _leaderEpoch) return TransitionResult.Stale;
        // Same leader epoch: same leader, or the state is inconsistent with ours.
        if (role != _role || state.LeaderId != _leaderId) return TransitionResult.Stale;
        if (state.PartitionEpoch > _partitionEpoch) return TransitionResult.Updated;
        return state.PartitionEpoch == _partitionEpoch ? TransitionResult.Unchanged : TransitionResult.Stale;
    }

    private void SetCommittedLocked(PartitionState state)
    {
        _partitionEpoch = state.PartitionEpoch;
        _replicas = [.. state.Replicas];
        _isr = [.. state.Isr];
        // A committed state replaces whatever was pending (Kafka: a LeaderAndIsr resets the ISR state).
        _proposal = null;
        _maximalIsr = _isr;
    }

    /// <summary>
    /// The leadership check of produce and fetch requests: 0 when this broker leads in the epoch
    /// the caller believes in (-1: any), else FENCED_LEADER_EPOCH (caller's is older),
    /// UNKNOWN_LEADER_EPOCH (newer than ours) or NOT_LEADER_OR_FOLLOWER.
    /// </summary>
    public short CheckLeader(int currentLeaderEpoch)
    {
        _lock.EnterReadLock();
        try
        {
            return CheckLeaderLocked(currentLeaderEpoch);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    private short CheckLeaderLocked(int currentLeaderEpoch)
    {
        if (currentLeaderEpoch != -1 && currentLeaderEpoch < _leaderEpoch) return ErrorCodes.FencedLeaderEpoch;
        if (currentLeaderEpoch != -1 && currentLeaderEpoch > _leaderEpoch) return ErrorCodes.UnknownLeaderEpoch;
        return _role == ReplicaRole.Leader ? ErrorCodes.None : ErrorCodes.NotLeaderOrFollower;
    }

    /// <summary>
    /// Appends validated batches as leader (stamped with the leader epoch). acks=-1 is refused
    /// with NOT_ENOUGH_REPLICAS before anything is written when the committed ISR is smaller
    /// than min.insync.replicas; otherwise its <see cref="LeaderAppendResult.Commit"/> completes
    /// once the high watermark passed the records, or with REQUEST_TIMED_OUT when
    /// <paramref name="commitTimeout"/> fires first. <paramref name="origin"/> decides the
    /// producer-state checks (see <see cref="AppendOrigin"/>); <paramref name="verification"/> is
    /// the KIP-890 guard the produce path verified with (null: no verification in use).
    /// </summary>
    public LeaderAppendResult AppendAsLeader(ReadOnlyMemory<byte> records, int requiredAcks, CancellationToken commitTimeout, bool crcVerified = true,
        AppendOrigin origin = AppendOrigin.Client, TransactionVerificationGuard? verification = null)
    {
        LogAppendResult appended;
        CommitPurgatory.Waiter? commit = null;
        _lock.EnterReadLock();
        try
        {
            if (_role != ReplicaRole.Leader)
                return new LeaderAppendResult(LogAppendResult.Error(ErrorCodes.NotLeaderOrFollower, $"Broker {LocalBrokerId} does not lead {TopicPartition}."), null);
            if (requiredAcks == -1 && _isr.Length < MinInSyncReplicas)
                return new LeaderAppendResult(LogAppendResult.Error(ErrorCodes.NotEnoughReplicas,
                    $"The ISR of {TopicPartition} has {_isr.Length} replicas, below min.insync.replicas {MinInSyncReplicas}.", Log.LogStartOffset), null);
            appended = Log.Append(records, crcVerified, origin, verification);
            // Registered under the read lock: a step-down (write lock) comes after and fails it.
            if (requiredAcks == -1 && appended.ErrorCode == ErrorCodes.None) commit = Commits.Add(appended.LastOffset + 1);
        }
        finally
        {
            _lock.ExitReadLock();
        }
        if (appended.ErrorCode == ErrorCodes.None)
        {
            // With the ISR = {leader} this is what moves the high watermark.
            MaybeIncrementHighWatermark();
            if (commit is not null) TryCompleteCommits();
        }
        commit?.ArmTimeout(commitTimeout);
        return new LeaderAppendResult(appended, commit?.Task);
    }

    /// <summary>
    /// Completes the acks=-1 waiters the high watermark passed (NOT_ENOUGH_REPLICAS_AFTER_APPEND
    /// when the committed ISR is below min.insync.replicas then, as Kafka's DelayedProduce).
    /// </summary>
    public void TryCompleteCommits()
    {
        var hw = Log.HighWatermark;
        short error;
        _lock.EnterReadLock();
        try
        {
            if (_role != ReplicaRole.Leader) return;
            error = _isr.Length < MinInSyncReplicas ? ErrorCodes.NotEnoughReplicasAfterAppend : ErrorCodes.None;
        }
        finally
        {
            _lock.ExitReadLock();
        }
        Commits.CompleteUpTo(hw, error);
    }

    /// <summary>
    /// Leader: the high watermark becomes the minimum log end offset over the maximal ISR when
    /// that is higher than it is (never lower). A follower whose offset is unknown yet (no
    /// fetch since this broker became leader) holds it where it is.
    /// </summary>
    public bool MaybeIncrementHighWatermark()
    {
        bool advanced = false;
        _lock.EnterReadLock();
        try
        {
            if (_role != ReplicaRole.Leader) return false;
            lock (_hwLock)
            {
                var candidate = Log.LogEndOffset;
                foreach (var id in _maximalIsr)
                {
                    if (id == LocalBrokerId) continue;
                    if (!_followers.TryGetValue(id, out var f)) continue;
                    var leo = f.LogEndOffset;
                    if (leo < 0) return false;
                    candidate = Math.Min(candidate, leo);
                }
                if (candidate > Log.HighWatermark)
                {
                    Log.UpdateHighWatermark(candidate);
                    advanced = true;
                }
            }
        }
        finally
        {
            _lock.ExitReadLock();
        }
        if (advanced) TryCompleteCommits();
        return advanced;
    }

    /// <summary>
    /// Leader side of a follower's fetch for this partition: leadership and epoch checks, the
    /// divergence check on the follower's last fetched epoch (KIP-320/595), then records the
    /// follower's log end offset (= <paramref name="fetchOffset"/>), which may move the high
    /// watermark and start an ISR expansion, and reads from there up to the log end.
    /// </summary>
    public FollowerFetchResult ReadForFollower(int replicaId, long brokerEpoch, long fetchOffset, int lastFetchedEpoch, int currentLeaderEpoch, int maxBytes, bool minOneBatch)
    {
        FollowerReplica follower;
        _lock.EnterReadLock();
        try
        {
            var error = CheckLeaderLocked(currentLeaderEpoch);
            if (error != ErrorCodes.None) return FollowerFetchResult.Error(error);
            if (!_followers.TryGetValue(replicaId, out follower!)) return FollowerFetchResult.Error(ErrorCodes.NotLeaderOrFollower);
            var leo = Log.LogEndOffset;
            var start = Log.LogStartOffset;
            if (lastFetchedEpoch >= 0)
            {
                var (epoch, endOffset) = Log.EndOffsetForEpoch(lastFetchedEpoch);
                if (epoch != lastFetchedEpoch || endOffset < fetchOffset)
                    return new FollowerFetchResult(ErrorCodes.None, Log.HighWatermark, start, leo, epoch, endOffset, null);
            }
            // Ahead of the leader (and not caught by the epoch check: an empty epoch history):
            // the follower truncates to our end. Behind our start: it starts over at our start.
            if (fetchOffset > leo || fetchOffset < start)
                return FollowerFetchResult.Error(ErrorCodes.OffsetOutOfRange, Log.HighWatermark, start, leo);
            lock (follower.Sync) follower.UpdateFetchState(fetchOffset, _time.GetUtcNow().ToUnixTimeMilliseconds(), leo, brokerEpoch);
        }
        finally
        {
            _lock.ExitReadLock();
        }
        MaybeExpandIsr(follower);
        MaybeIncrementHighWatermark();
        var read = Log.Read(fetchOffset, maxBytes, minOneBatch, maxOffsetExclusive: long.MaxValue);
        return new FollowerFetchResult(read.ErrorCode, Log.HighWatermark, read.LogStartOffset, read.LogEndOffset, -1, -1, read.ErrorCode == ErrorCodes.None ? read : null);
    }

    /// <summary>
    /// Follower side: applies the leader's answer for this partition. OFFSET_OUT_OF_RANGE: cut to
    /// the leader's end when ahead of it, else start over at the leader's log start. Diverging:
    /// truncate where Kafka's AbstractFetcherThread would (the end of the last epoch both logs
    /// share). Records: appended as they are. Then the high watermark follows the leader's.
    /// Returns the error to act on (0: fetch again at once).
    /// </summary>
    public short ApplyFromLeader(int leaderEpoch, in LeaderFetchData data)
    {
        _lock.EnterReadLock();
        try
        {
            // An answer to a request made under another epoch or role is stale: drop it.
            if (_role != ReplicaRole.Follower || _leaderEpoch != leaderEpoch) return ErrorCodes.NotLeaderOrFollower;
            if (data.ErrorCode == ErrorCodes.OffsetOutOfRange)
            {
                var leo = Log.LogEndOffset;
                if (data.LogEndOffset >= 0 && data.LogEndOffset < leo)
                {
                    _logger.LogWarning("{Partition}: log end {Leo} is past the leader's {LeaderLeo}; truncating", TopicPartition, leo, data.LogEndOffset);
                    Log.TruncateTo(data.LogEndOffset);
                }
                else if (data.LogStartOffset > leo)
                {
                    _logger.LogInformation("{Partition}: log end {Leo} is below the leader's log start {Start}; starting over there", TopicPartition, leo, data.LogStartOffset);
                    Log.TruncateFullyAndStartAt(data.LogStartOffset);
                }
                return ErrorCodes.None;
            }
            if (data.ErrorCode != ErrorCodes.None) return data.ErrorCode;
            if (data.Diverging)
            {
                var target = TruncationOffset(data.DivergingEpoch, data.DivergingEndOffset);
                _logger.LogInformation("{Partition}: diverges from the leader at epoch {Epoch} end {End}; truncating to {Target}",
                    TopicPartition, data.DivergingEpoch, data.DivergingEndOffset, target);
                Log.TruncateTo(target);
                return ErrorCodes.None;
            }
            if (!data.Records.IsEmpty)
            {
                // A log started over mid-batch (the leader's log start inside a batch) gets that
                // whole batch: start the empty log at its base instead of refusing it.
                var baseOffset = BinaryPrimitives.ReadInt64BigEndian(data.Records.Span);
                if (baseOffset < Log.LogEndOffset && Log.LogEndOffset == Log.LogStartOffset && Log.SizeBytes == 0)
                    Log.TruncateFullyAndStartAt(baseOffset);
                var appended = Log.AppendAsFollower(data.Records);
                if (appended.ErrorCode != ErrorCodes.None)
                {
                    _logger.LogWarning("{Partition}: follower append failed: {Code} {Message}", TopicPartition, appended.ErrorCode, appended.ErrorMessage);
                    return appended.ErrorCode;
                }
            }
            if (data.HighWatermark >= 0) Log.SetFollowerHighWatermark(data.HighWatermark);
            // The leader's log start moved (retention, DeleteRecords): follow it, as far as our
            // committed part goes (Kafka's maybeIncrementLogStartOffset on the follower).
            var start = Math.Min(data.LogStartOffset, Log.HighWatermark);
            if (start > Log.LogStartOffset) Log.DeleteRecordsBefore(start);
            return ErrorCodes.None;
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>Kafka's AbstractFetcherThread.getOffsetTruncationState for a diverging epoch the leader answered.</summary>
    private long TruncationOffset(int leaderEpoch, long leaderEndOffset)
    {
        var leo = Log.LogEndOffset;
        // The leader knows no epoch at or below ours: only the committed part is certainly shared.
        if (leaderEndOffset < 0) return Math.Min(Log.HighWatermark, leo);
        if (leaderEpoch < 0) return Math.Min(leaderEndOffset, leo);
        var (followerEpoch, followerEndOffset) = Log.EndOffsetForEpoch(leaderEpoch);
        if (followerEpoch < 0 || followerEndOffset < 0) return Math.Min(leaderEndOffset, leo);
        // We do not have the leader's epoch: cut to where our own older epoch ends and ask again.
        if (followerEpoch != leaderEpoch) return Math.Min(followerEndOffset, leo);
        return Math.Min(leaderEndOffset, leo);
    }

    /// <summary>The fetch offset and last fetched epoch of this follower's next request.</summary>
    public (long FetchOffset, int LastFetchedEpoch) FetchPosition()
    {
        _lock.EnterReadLock();
        try
        {
            return (Log.LogEndOffset, Log.LatestEpoch);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>
    /// Leader: proposes adding <paramref name="follower"/> to the ISR when it is not in the maximal
    /// ISR, no change is pending, and its log end reached both the high watermark and the start of
    /// the current leader epoch (Kafka's isFollowerInSync).
    /// </summary>
    public bool MaybeExpandIsr(FollowerReplica follower)
    {
        IsrProposal? proposal = null;
        if (!NeedsExpansion(follower, readLocked: false)) return false;
        _lock.EnterWriteLock();
        try
        {
            if (NeedsExpansion(follower, readLocked: true))
            {
                proposal = new IsrProposal(_leaderEpoch, _partitionEpoch, [.. _isr, follower.BrokerId]);
                SetProposalLocked(proposal);
            }
        }
        finally
        {
            _lock.ExitWriteLock();
        }
        if (proposal is null) return false;
        _logger.LogInformation("{Partition}: follower {Follower} caught up (log end {Leo}); proposing ISR [{Isr}]",
            TopicPartition, follower.BrokerId, follower.LogEndOffset, string.Join(",", proposal.NewIsr));
        IsrChangeProposed?.Invoke(this);
        return true;
    }

    private bool NeedsExpansion(FollowerReplica follower, bool readLocked)
    {
        if (!readLocked) _lock.EnterReadLock();
        try
        {
            if (_role != ReplicaRole.Leader || _proposal is not null || _maximalIsr.Contains(follower.BrokerId)) return false;
            if (!_followers.TryGetValue(follower.BrokerId, out var current) || !ReferenceEquals(current, follower)) return false;
            var leo = follower.LogEndOffset;
            return leo >= 0 && leo >= Log.HighWatermark && leo >= _leaderEpochStartOffset;
        }
        finally
        {
            if (!readLocked) _lock.ExitReadLock();
        }
    }

    /// <summary>
    /// Leader, the periodic check: proposes removing the ISR followers that have not caught up to
    /// the leader's log end within replica.lag.time.max.ms (Kafka's getOutOfSyncReplicas), and
    /// adding followers that caught up (in case an earlier proposal was refused).
    /// </summary>
    public bool MaybeChangeIsr(long nowMs)
    {
        if (_role != ReplicaRole.Leader) return false;
        IsrProposal? proposal = null;
        int[] removed = [];
        _lock.EnterWriteLock();
        try
        {
            if (_role == ReplicaRole.Leader && _proposal is null)
            {
                var leo = Log.LogEndOffset;
                removed = _isr.Where(id => id != LocalBrokerId && _followers.TryGetValue(id, out var f) && !f.IsCaughtUp(leo, nowMs, ReplicaLagTimeMaxMs)).ToArray();
                if (removed.Length > 0)
                {
                    proposal = new IsrProposal(_leaderEpoch, _partitionEpoch, _isr.Except(removed).ToArray());
                    SetProposalLocked(proposal);
                }
            }
        }
        finally
        {
            _lock.ExitWriteLock();
        }
        if (proposal is not null)
        {
            _logger.LogInformation("{Partition}: followers [{Removed}] lag more than {LagMs} ms; proposing ISR [{Isr}]",
                TopicPartition, string.Join(",", removed), ReplicaLagTimeMaxMs, string.Join(",", proposal.NewIsr));
            IsrChangeProposed?.Invoke(this);
            return true;
        }
        foreach (var f in Followers)
            if (MaybeExpandIsr(f)) return true;
        return false;
    }

    private void SetProposalLocked(IsrProposal proposal)
    {
        _proposal = proposal;
        _maximalIsr = _isr.Union(proposal.NewIsr).ToArray();
    }

    /// <summary>
    /// The controller's answer to <paramref name="proposal"/>. Accepted (error 0, the state after
    /// it): the state becomes committed when it is newer than ours. Refused with an item error:
    /// the change was not made, the committed ISR stands (a new proposal may follow at the next
    /// check). Other failures (the request's outcome unknown) leave the proposal pending: it is
    /// sent again, since the maximal ISR must keep counting a member the controller may have added.
    /// </summary>
    public void CompleteIsrChange(IsrProposal proposal, short errorCode, PartitionState? answer)
    {
        bool changed = false;
        _lock.EnterWriteLock();
        try
        {
            if (!ReferenceEquals(_proposal, proposal)) return;
            if (errorCode == ErrorCodes.None && answer is not null)
            {
                if (answer.LeaderEpoch == _leaderEpoch && answer.PartitionEpoch > _partitionEpoch && answer.LeaderId == LocalBrokerId)
                {
                    SetCommittedLocked(answer);
                    changed = true;
                }
                else
                {
                    // Older than what metadata already told us: the committed state stands.
                    _proposal = null;
                    _maximalIsr = _isr;
                }
            }
            else
            {
                _proposal = null;
                _maximalIsr = _isr;
            }
        }
        finally
        {
            _lock.ExitWriteLock();
        }
        if (changed)
        {
            _logger.LogInformation("{Partition}: ISR now [{Isr}] (partition epoch {PartitionEpoch})", TopicPartition, string.Join(",", answer!.Isr), answer.PartitionEpoch);
            MaybeIncrementHighWatermark();
            TryCompleteCommits();
        }
        else if (errorCode != ErrorCodes.None)
        {
            _logger.LogWarning("{Partition}: the controller refused ISR [{Isr}] with error {Code}", TopicPartition, string.Join(",", proposal.NewIsr), errorCode);
        }
    }

    /// <summary>The proposal to send, marked sent; null when none is waiting to go.</summary>
    internal IsrProposal? TakeUnsentProposal()
    {
        _lock.EnterWriteLock();
        try
        {
            if (_proposal is null || _proposal.Sent || _role != ReplicaRole.Leader) return null;
            _proposal.Sent = true;
            return _proposal;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>After a failed send (outcome unknown): the same proposal goes again at the next check.</summary>
    internal void ResendLater(IsrProposal proposal)
    {
        _lock.EnterWriteLock();
        try
        {
            if (ReferenceEquals(_proposal, proposal)) proposal.Sent = false;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    public override string ToString() => $"{TopicPartition} {Role} epoch {_leaderEpoch}";
}
