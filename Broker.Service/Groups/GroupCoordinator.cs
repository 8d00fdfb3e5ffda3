using System.Collections.Concurrent;
using System.Text;
using StreamPlatform.Protos.Groups;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.CoordinatorRecords;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.Broker.Groups;

/// <summary>
/// The classic group coordinator of one broker. It coordinates the groups that hash to the
/// partitions of __consumer_offsets this broker leads (<see cref="LoadAsync"/> when leadership
/// arrives, <see cref="Unload"/> when it leaves); every change of a group (assignment, members,
/// committed offsets, deletion) is written to that partition first and applied after the
/// write succeeded, so a restart or a new leader rebuilds exactly what clients were told.
/// <para>One lock per partition guards its groups: operations are short (an append of a few
/// records), and waits (JoinGroup, SyncGroup) are TaskCompletionSources completed later under
/// the same lock. Timers come from the injected <see cref="TimeProvider"/>.</para>
/// </summary>
public sealed partial class GroupCoordinator : IDisposable, ICoordinatorPartitions, Transactions.ITransactionMarkerObserver
{
    private readonly TimeProvider _time;
    private readonly Func<GroupConfig> _config;
    private readonly ILogger _logger;
    private readonly Func<string, int, bool> _partitionExists;
    private readonly ConcurrentDictionary<int, Shard> _shards = new();
    private readonly ITimer _expiryTimer;

    /// <summary>Most groups one DescribeGroups/DeleteGroups may name: bounds the work of one request.</summary>
    public const int GroupsPerRequestMax = 10_000;

    /// <summary>The groups of one __consumer_offsets partition this broker leads.</summary>
    public sealed class Shard(int partition, int leaderEpoch, OffsetsPartitionStore store)
    {
        public int Partition { get; } = partition;
        public int LeaderEpoch { get; } = leaderEpoch;
        public OffsetsPartitionStore Store { get; } = store;
        public object Gate { get; } = new();
        public volatile bool Loaded;
        public bool Unloaded;
        public Dictionary<string, ClassicGroup> Groups { get; } = new(StringComparer.Ordinal);
        /// <summary>Offsets of open transactions (TxnOffsetCommit) waiting for their producer's marker.</summary>
        public PendingTransactionalOffsets Pending { get; set; } = new();

        /// <summary>Most markers queued while the shard loads; past it the load starts over (it then reads them from the log).</summary>
        public const int DeferredMarkersMax = 100_000;
        /// <summary>Guards <see cref="Loaded"/> against <see cref="DeferredMarkers"/>: a marker reported during the load is queued, never lost.</summary>
        public object MarkerGate { get; } = new();
        public List<(long ProducerId, bool Committed, long MarkerOffset)> DeferredMarkers { get; } = [];
        public bool DeferredMarkersOverflowed;
        /// <summary>Cancelled when the shard is unloaded: ends its load and every wait for its writes to commit.</summary>
        public CancellationTokenSource LoadCancellation { get; } = new();
        /// <summary>
        /// The log offset after this shard's newest write (set under <see cref="Gate"/>; at load,
        /// the log end). The in-memory state includes every write below it; a response about it
        /// may leave only once the high watermark reached it (<see cref="WaitCommittedAsync"/>).
        /// </summary>
        public long WrittenEndOffset
        {
            get => Volatile.Read(ref _writtenEndOffset);
            set => Volatile.Write(ref _writtenEndOffset, value);
        }

        private long _writtenEndOffset;

        /// <summary>The replica layer's commit of the newest write (null without one): completes in offset order, with the commit's error code.</summary>
        public Task<short>? LastCommit
        {
            get => Volatile.Read(ref _lastCommit);
            set => Volatile.Write(ref _lastCommit, value);
        }

        private Task<short>? _lastCommit;
    }

    /// <param name="partitionExists">Whether a topic partition exists (commits to others get UNKNOWN_TOPIC_OR_PARTITION).</param>
    public GroupCoordinator(TimeProvider time, Func<GroupConfig> config, ILogger logger, Func<string, int, bool>? partitionExists = null)
    {
        _time = time;
        _config = config;
        _logger = logger;
        _partitionExists = partitionExists ?? ((_, _) => true);
        var interval = TimeSpan.FromMilliseconds(Math.Clamp(config().OffsetsRetentionCheckIntervalMs, 1, int.MaxValue));
        _expiryTimer = CreateTimer(time, logger, _ => ExpireOffsets(), null, interval, interval);
    }

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    public IReadOnlyCollection<int> Partitions => _shards.Keys.ToArray();

    public bool IsLoaded(int partition) => _shards.TryGetValue(partition, out var s) && s.Loaded;

    public int? LeaderEpochOf(int partition) => _shards.TryGetValue(partition, out var s) ? s.LeaderEpoch : null;

    void ICoordinatorPartitions.Load(int partition, int leaderEpoch, OffsetsPartitionStore store) => _ = LoadAsync(partition, leaderEpoch, store);

    // ---------------------------------------------------------------- loading

    /// <summary>
    /// Takes over a partition: until its log has been read, requests for its groups answer
    /// COORDINATOR_LOAD_IN_PROGRESS. A partition already held with another epoch is unloaded first.
    /// </summary>
    public Task LoadAsync(int partition, int leaderEpoch, OffsetsPartitionStore store)
    {
        var shard = new Shard(partition, leaderEpoch, store);
        if (_shards.TryGetValue(partition, out var existing))
        {
            if (existing.LeaderEpoch == leaderEpoch && ReferenceEquals(existing.Store.Log, store.Log)) return Task.CompletedTask;
            Unload(partition);
        }
        if (!_shards.TryAdd(partition, shard)) return Task.CompletedTask;
        return LoadRunner(() => LoadShard(shard));
    }

    /// <summary>Runs a partition's load off the caller's thread (tests take control of when it runs).</summary>
    internal Func<Action, Task> LoadRunner { get; init; } = action => Task.Run(action);

    private void LoadShard(Shard shard)
    {
        var started = NowMs;
        var replay = new GroupLogReplay();
        var restart = false;
        try
        {
            lock (shard.Gate)
            {
                // Kafka's loader reads to the log end too, not only to the high watermark: this
                // broker now leads, so its whole log becomes committed once followers catch up
                // (they truncate to it, never the reverse). Responses wait for that (WrittenEndOffset).
                shard.WrittenEndOffset = shard.Store.ReadAll(replay.Apply,
                    (producerId, type, offset) => replay.ApplyMarker(producerId, type == ControlRecordType.Commit, offset), shard.LoadCancellation.Token);
                if (shard.Unloaded) return;
                foreach (var (groupId, value) in replay.Classic)
                    shard.Groups[groupId] = Restore(shard, groupId, value);
                foreach (var (groupId, parts) in replay.Consumer)
                {
                    if (parts.GroupEpoch is null) continue;
                    if (!shard.Groups.TryGetValue(groupId, out var group))
                        shard.Groups[groupId] = group = new ClassicGroup(groupId, NowMs);
                    // A classic group with members wins: the two protocols never share a group.
                    if (group.Members.Count > 0) continue;
                    RestoreConsumer(shard, group, parts);
                }
                foreach (var (groupId, byPartition) in replay.Offsets)
                {
                    if (byPartition.Count == 0) continue;
                    if (!shard.Groups.TryGetValue(groupId, out var group))
                        shard.Groups[groupId] = group = new ClassicGroup(groupId, NowMs);
                    foreach (var (tp, o) in byPartition) group.Offsets[tp] = o;
                }
                // Transactions still open at the log end stay pending; their groups exist (Kafka
                // creates the simple group when it replays a transactional offset).
                shard.Pending = replay.Pending;
                foreach (var groupId in replay.Pending.Groups)
                    if (!shard.Groups.ContainsKey(groupId)) shard.Groups[groupId] = new ClassicGroup(groupId, NowMs);
                lock (shard.MarkerGate)
                {
                    restart = shard.DeferredMarkersOverflowed;
                    if (!restart)
                    {
                        // Markers reported while loading: the read may have ended before them
                        // (one it did read completes nothing the second time).
                        foreach (var (producerId, committed, markerOffset) in shard.DeferredMarkers) ApplyMarker(shard, producerId, committed, markerOffset);
                        shard.DeferredMarkers.Clear();
                        shard.Loaded = true;
                    }
                }
            }
            if (restart)
            {
                _logger.LogWarning("__consumer_offsets-{Partition}: more than {Max} transaction markers arrived while loading: loading again",
                    shard.Partition, Shard.DeferredMarkersMax);
                Unload(shard.Partition);
                _ = LoadAsync(shard.Partition, shard.LeaderEpoch, shard.Store);
                return;
            }
            _logger.LogInformation("Loaded __consumer_offsets-{Partition} (epoch {Epoch}): {Groups} groups in {Ms} ms",
                shard.Partition, shard.LeaderEpoch, shard.Groups.Count, NowMs - started);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex)
        {
            // The partition stays "loading": clients retry, and the next metadata change (or
            // restart) tries again. Never half-loaded state served as if complete.
            _logger.LogError(ex, "Loading __consumer_offsets-{Partition} failed", shard.Partition);
            _shards.TryRemove(new KeyValuePair<int, Shard>(shard.Partition, shard));
        }
    }

    private ClassicGroup Restore(Shard shard, string groupId, GroupMetadataValue value)
    {
        var timestamp = value.CurrentStateTimestamp >= 0 ? value.CurrentStateTimestamp : NowMs;
        var group = new ClassicGroup(groupId, timestamp)
        {
            GenerationId = value.Generation,
            ProtocolType = value.ProtocolType.Length == 0 ? null : value.ProtocolType,
            ProtocolName = string.IsNullOrEmpty(value.Protocol) ? null : value.Protocol,
            LeaderId = string.IsNullOrEmpty(value.Leader) ? null : value.Leader,
        };
        foreach (var m in value.Members)
        {
            // Kafka's record keeps the chosen protocol's metadata only: that is what the member
            // offers after a load (as in Kafka's ClassicGroup loading).
            var member = new GroupMember
            {
                MemberId = m.MemberId,
                GroupInstanceId = m.GroupInstanceId,
                ClientId = m.ClientId,
                ClientHost = m.ClientHost,
                // Versions 0 had no rebalance timeout: Kafka takes the session timeout.
                RebalanceTimeoutMs = m.RebalanceTimeout >= 0 ? m.RebalanceTimeout : m.SessionTimeout,
                SessionTimeoutMs = m.SessionTimeout,
                ProtocolType = value.ProtocolType,
                Protocols = group.ProtocolName is { } protocol ? [(protocol, m.Subscription.ToArray())] : [],
                Assignment = m.Assignment.ToArray(),
            };
            group.Members[member.MemberId] = member;
            if (member.GroupInstanceId is { } instance) group.StaticMembers[instance] = member.MemberId;
        }
        // As Kafka: a group with members comes back Stable (they resume heartbeating, or their
        // sessions expire and the group rebalances); without members, Empty.
        group.RestoreState(group.Members.Count > 0 ? GroupState.Stable : GroupState.Empty, timestamp);
        foreach (var member in group.Members.Values) ScheduleSession(shard, group, member);
        return group;
    }

    /// <summary>Gives up a partition (leadership moved): its groups become Dead here and waiting requests get NOT_COORDINATOR.</summary>
    public void Unload(int partition)
    {
        if (!_shards.TryRemove(partition, out var shard)) return;
        shard.LoadCancellation.Cancel();
        lock (shard.Gate)
        {
            shard.Unloaded = true;
            foreach (var group in shard.Groups.Values)
            {
                CancelPhaseTimer(group);
                foreach (var pending in group.PendingMembers.Values) pending.Dispose();
                group.PendingMembers.Clear();
                foreach (var m in group.Members.Values)
                {
                    m.SessionTimer?.Dispose();
                    m.AwaitingJoin?.TrySetResult(JoinError(ErrorCode.NotCoordinator, m.MemberId));
                    m.AwaitingJoin = null;
                    m.AwaitingSync?.TrySetResult(new SyncGroupResponse { ErrorCode = (short)ErrorCode.NotCoordinator });
                    m.AwaitingSync = null;
                }
                if (group.Consumer is { } cg)
                    foreach (var m in cg.Members.Values)
                    {
                        m.SessionTimer?.Dispose();
                        m.RevocationTimer?.Dispose();
                        m.TimerEpoch++;
                    }
                group.TransitionTo(GroupState.Dead, NowMs);
            }
            shard.Groups.Clear();
        }
        _logger.LogInformation("Unloaded __consumer_offsets-{Partition}", partition);
    }

    /// <summary>The shard of a group, or the error a client must see (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS).</summary>
    private Shard? ShardFor(string groupId, out ErrorCode error)
    {
        // The id must fit a record key (int16 length); longer ids could never be stored.
        if (Utf8Length(groupId) > GroupRecords.KeyStringBytesMax)
        {
            error = ErrorCode.InvalidGroupId;
            return null;
        }
        var partition = OffsetsTopic.PartitionFor(groupId, _config().OffsetsTopicPartitions);
        if (!_shards.TryGetValue(partition, out var shard))
        {
            error = ErrorCode.NotCoordinator;
            return null;
        }
        if (!shard.Loaded)
        {
            error = ErrorCode.CoordinatorLoadInProgress;
            return null;
        }
        error = ErrorCode.None;
        return shard;
    }

    // ---------------------------------------------------------------- timers

    private void ScheduleSession(Shard shard, ClassicGroup group, GroupMember member)
    {
        member.SessionTimer?.Dispose();
        var epoch = ++member.SessionEpoch;
        var memberId = member.MemberId;
        member.SessionTimer = CreateTimer(_time, _logger, _ => OnSessionExpired(shard, group, memberId, epoch), null,
            TimeSpan.FromMilliseconds(Math.Max(1, member.SessionTimeoutMs)), Timeout.InfiniteTimeSpan);
    }

    private void OnSessionExpired(Shard shard, ClassicGroup group, string memberId, long epoch)
    {
        lock (shard.Gate)
        {
            if (shard.Unloaded || group.Is(GroupState.Dead) || !group.Members.TryGetValue(memberId, out var member) || member.SessionEpoch != epoch) return;
            // A member waiting in JoinGroup or SyncGroup is alive by definition (Kafka's shouldKeepAlive).
            if (member.AwaitingJoin is not null || member.AwaitingSync is not null)
            {
                ScheduleSession(shard, group, member);
                return;
            }
            _logger.LogInformation("Group {Group}: member {Member} session expired", group.GroupId, memberId);
            RemoveMemberAndUpdate(shard, group, member);
        }
    }

    private void SchedulePhase(Shard shard, ClassicGroup group, int delayMs, Action<Shard, ClassicGroup> onExpired)
    {
        group.PhaseTimer?.Dispose();
        var epoch = ++group.PhaseEpoch;
        group.PhaseTimer = CreateTimer(_time, _logger, _ =>
        {
            lock (shard.Gate)
            {
                if (shard.Unloaded || group.PhaseEpoch != epoch || group.Is(GroupState.Dead)) return;
                onExpired(shard, group);
            }
        }, null, TimeSpan.FromMilliseconds(Math.Max(0, delayMs)), Timeout.InfiniteTimeSpan);
    }

    private static void CancelPhaseTimer(ClassicGroup group)
    {
        group.PhaseTimer?.Dispose();
        group.PhaseTimer = null;
        group.PhaseEpoch++;
        group.InInitialDelay = false;
    }

    // ---------------------------------------------------------------- rebalance core

    private void PrepareRebalance(Shard shard, ClassicGroup group, string reason)
    {
        if (group.Is(GroupState.CompletingRebalance))
        {
            // The leader's assignment never came (or a member changed): everybody waiting in
            // SyncGroup learns the generation is over and rejoins.
            foreach (var m in group.Members.Values)
            {
                m.Assignment = [];
                m.AwaitingSync?.TrySetResult(new SyncGroupResponse { ErrorCode = (short)ErrorCode.RebalanceInProgress });
                m.AwaitingSync = null;
            }
        }
        var wasEmpty = group.Is(GroupState.Empty);
        group.TransitionTo(GroupState.PreparingRebalance, NowMs);
        CancelPhaseTimer(group);
        var config = _config();
        var rebalanceTimeoutMs = group.MaxRebalanceTimeoutMs;
        _logger.LogInformation("Group {Group}: preparing rebalance (generation {Generation}): {Reason}", group.GroupId, group.GenerationId, reason);
        if (wasEmpty && config.InitialRebalanceDelayMs > 0)
        {
            // group.initial.rebalance.delay.ms: the first members of a new group get a moment
            // for the others to arrive, so they do not rebalance once per member.
            group.InInitialDelay = true;
            group.NewMemberJoinedDuringDelay = false;
            var delay = Math.Min(config.InitialRebalanceDelayMs, Math.Max(rebalanceTimeoutMs, 1));
            group.InitialDelayRemainingMs = Math.Max(rebalanceTimeoutMs - delay, 0);
            SchedulePhase(shard, group, delay, OnInitialDelayExpired);
            group.InInitialDelay = true;
            return;
        }
        SchedulePhase(shard, group, rebalanceTimeoutMs, (s, g) => CompleteJoin(s, g));
        MaybeCompleteJoin(shard, group);
    }

    private void OnInitialDelayExpired(Shard shard, ClassicGroup group)
    {
        if (!group.Is(GroupState.PreparingRebalance)) return;
        if (group.NewMemberJoinedDuringDelay && group.InitialDelayRemainingMs > 0)
        {
            var delay = Math.Min(_config().InitialRebalanceDelayMs, group.InitialDelayRemainingMs);
            group.InitialDelayRemainingMs -= delay;
            group.NewMemberJoinedDuringDelay = false;
            SchedulePhase(shard, group, delay, OnInitialDelayExpired);
            group.InInitialDelay = true;
            return;
        }
        CompleteJoin(shard, group);
    }

    private void MaybeCompleteJoin(Shard shard, ClassicGroup group)
    {
        if (group.Is(GroupState.PreparingRebalance) && !group.InInitialDelay && group.AllMembersJoined) CompleteJoin(shard, group);
    }

    /// <summary>Ends the join phase: members that did not rejoin are removed, a new generation starts.</summary>
    private void CompleteJoin(Shard shard, ClassicGroup group)
    {
        if (!group.Is(GroupState.PreparingRebalance)) return;
        CancelPhaseTimer(group);
        foreach (var m in group.Members.Values.Where(m => m.AwaitingJoin is null).ToList())
        {
            _logger.LogInformation("Group {Group}: member {Member} did not rejoin in time", group.GroupId, m.MemberId);
            RemoveMember(group, m);
        }
        var now = NowMs;
        group.GenerationId++;
        if (group.Members.Count == 0)
        {
            group.ProtocolName = null;
            group.LeaderId = null;
            group.TransitionTo(GroupState.Empty, now);
            var error = PersistGroup(shard, group);
            if (error != ErrorCode.None)
                _logger.LogWarning("Group {Group}: writing the empty group failed with {Error}", group.GroupId, error);
            return;
        }
        group.ProtocolName = group.SelectProtocol();
        if (group.LeaderId is null || !group.HasMember(group.LeaderId)) group.LeaderId = group.Members.Keys.First();
        group.TransitionTo(GroupState.CompletingRebalance, now);
        _logger.LogInformation("Group {Group}: generation {Generation} with {Members} members, protocol {Protocol}, leader {Leader}",
            group.GroupId, group.GenerationId, group.Members.Count, group.ProtocolName, group.LeaderId);
        foreach (var m in group.Members.Values)
        {
            var response = CurrentJoinResponse(group, m, includeMembers: m.MemberId == group.LeaderId);
            m.AwaitingJoin?.TrySetResult(response);
            m.AwaitingJoin = null;
            ScheduleSession(shard, group, m);
        }
        // The leader has the rebalance timeout to send its assignment.
        SchedulePhase(shard, group, group.MaxRebalanceTimeoutMs, OnSyncTimeout);
    }

    private void OnSyncTimeout(Shard shard, ClassicGroup group)
    {
        if (!group.Is(GroupState.CompletingRebalance)) return;
        foreach (var m in group.Members.Values.Where(m => m.AwaitingSync is null).ToList())
        {
            _logger.LogInformation("Group {Group}: member {Member} did not sync in time", group.GroupId, m.MemberId);
            RemoveMember(group, m);
        }
        PrepareRebalance(shard, group, "SyncGroup timed out");
    }

    private static JoinGroupResponse CurrentJoinResponse(ClassicGroup group, GroupMember member, bool includeMembers, bool skipAssignment = false)
    {
        var response = new JoinGroupResponse
        {
            GenerationId = group.GenerationId,
            ProtocolType = group.ProtocolType,
            ProtocolName = group.ProtocolName,
            Leader = group.LeaderId ?? "",
            MemberId = member.MemberId,
            SkipAssignment = skipAssignment,
        };
        if (includeMembers)
        {
            foreach (var m in group.Members.Values)
                response.Members.Add(new JoinGroupResponse.JoinGroupResponseMember
                {
                    MemberId = m.MemberId, GroupInstanceId = m.GroupInstanceId, Metadata = m.MetadataFor(group.ProtocolName!) ?? [],
                });
        }
        return response;
    }

    private static JoinGroupResponse JoinError(ErrorCode error, string memberId) => new()
    {
        ErrorCode = (short)error, GenerationId = -1, MemberId = memberId, Leader = "", ProtocolName = null,
    };

    /// <summary>Removes a member without deciding what the group does next.</summary>
    private static void RemoveMember(ClassicGroup group, GroupMember member)
    {
        member.SessionTimer?.Dispose();
        member.SessionTimer = null;
        member.SessionEpoch++;
        group.Members.Remove(member.MemberId);
        if (member.GroupInstanceId is { } instance && group.StaticMembers.TryGetValue(instance, out var id) && id == member.MemberId)
            group.StaticMembers.Remove(instance);
        member.AwaitingJoin?.TrySetResult(JoinError(ErrorCode.UnknownMemberId, member.MemberId));
        member.AwaitingJoin = null;
        member.AwaitingSync?.TrySetResult(new SyncGroupResponse { ErrorCode = (short)ErrorCode.UnknownMemberId });
        member.AwaitingSync = null;
        if (group.LeaderId == member.MemberId) group.LeaderId = group.Members.Keys.FirstOrDefault();
    }

    private void RemoveMemberAndUpdate(Shard shard, ClassicGroup group, GroupMember member)
    {
        RemoveMember(group, member);
        switch (group.State)
        {
            case GroupState.Stable or GroupState.CompletingRebalance:
                PrepareRebalance(shard, group, $"member {member.MemberId} left");
                break;
            case GroupState.PreparingRebalance:
                MaybeCompleteJoin(shard, group);
                break;
        }
    }

    // ---------------------------------------------------------------- persistence

    private ErrorCode PersistGroup(Shard shard, ClassicGroup group)
    {
        var value = new GroupMetadataValue
        {
            ProtocolType = group.ProtocolType ?? "",
            Generation = group.GenerationId,
            Protocol = group.ProtocolName,
            Leader = group.LeaderId,
            CurrentStateTimestamp = group.CurrentStateTimestampMs,
        };
        foreach (var m in group.Members.Values)
            value.Members.Add(new GroupMetadataValue.MemberMetadata
            {
                MemberId = m.MemberId,
                GroupInstanceId = m.GroupInstanceId,
                ClientId = m.ClientId,
                ClientHost = m.ClientHost,
                RebalanceTimeout = m.RebalanceTimeoutMs,
                SessionTimeout = m.SessionTimeoutMs,
                Subscription = group.ProtocolName is { } p ? m.MetadataFor(p) ?? [] : [],
                Assignment = m.Assignment,
            });
        return Append(shard, [(GroupRecords.EncodeGroupKey(group.GroupId), GroupRecords.EncodeGroupValue(value))]);
    }

    /// <summary>
    /// Appends on the shard's partition (under its gate) and maps the log's error as Kafka's
    /// coordinator does (GroupMetadataManager's append callbacks, CoordinatorRuntime): the write is
    /// then applied in memory by the caller, and its response waits for the commit
    /// (<see cref="WaitCommittedAsync"/>).
    /// </summary>
    private ErrorCode Append(Shard shard, IReadOnlyList<(byte[] Key, byte[]? Value)> records, bool offsetCommit = false)
        => Append(shard, records, out _, offsetCommit);

    /// <param name="endOffset">The offset after the written batch (its records sit just below it).</param>
    /// <param name="transaction">A TxnOffsetCommit's producer: one transactional batch; its epoch
    /// errors (INVALID_PRODUCER_EPOCH, PRODUCER_FENCED...) reach the client as they are.</param>
    private ErrorCode Append(Shard shard, IReadOnlyList<(byte[] Key, byte[]? Value)> records, out long endOffset, bool offsetCommit = false,
        TransactionalProducer? transaction = null)
    {
        var outcome = shard.Store.Append(records, NowMs, TimeSpan.FromMilliseconds(_config().OffsetsCommitTimeoutMs), _time, transaction);
        endOffset = outcome.EndOffset;
        if (outcome.ErrorCode == 0)
        {
            shard.WrittenEndOffset = Math.Max(shard.WrittenEndOffset, outcome.EndOffset);
            if (outcome.Commit is not null) shard.LastCommit = outcome.Commit;
            return ErrorCode.None;
        }
        if (transaction is not null && IsTransactionError(outcome.ErrorCode)) return (ErrorCode)outcome.ErrorCode;
        return AppendErrorToCoordinatorError(outcome.ErrorCode, offsetCommit);
    }

    /// <summary>Errors of a transactional append the producer must see as they are (Kafka passes them through).</summary>
    private static bool IsTransactionError(short code) => (ErrorCode)code is ErrorCode.InvalidProducerEpoch or ErrorCode.ProducerFenced
        or ErrorCode.InvalidTxnState or ErrorCode.InvalidProducerIdMapping or ErrorCode.TransactionCoordinatorFenced
        or ErrorCode.ConcurrentTransactions or ErrorCode.TransactionAbortable or ErrorCode.UnknownProducerId;

    /// <summary>Kafka's mapping of a log append error to the error a group client sees.</summary>
    internal static ErrorCode AppendErrorToCoordinatorError(short code, bool offsetCommit) => code switch
    {
        // Leadership moved, or the log is unusable here: the client must find the coordinator again.
        ErrorCodes.NotLeaderOrFollower or ErrorCodes.KafkaStorageError => ErrorCode.NotCoordinator,
        // Retriable on the same coordinator once the partition is healthy again.
        ErrorCodes.UnknownTopicOrPartition or ErrorCodes.NotEnoughReplicas or ErrorCodes.NotEnoughReplicasAfterAppend
            or ErrorCodes.RequestTimedOut => ErrorCode.CoordinatorNotAvailable,
        ErrorCodes.MessageTooLarge or ErrorCodes.RecordListTooLarge or ErrorCodes.InvalidFetchSize
            => offsetCommit ? ErrorCode.InvalidCommitOffsetSize : ErrorCode.UnknownServerError,
        // Anything else (a bug, a corrupt batch): retriable, so clients look the coordinator up again.
        _ => ErrorCode.CoordinatorNotAvailable,
    };

    /// <summary>
    /// Waits until every write this coordinator made so far for the partitions of
    /// <paramref name="groupIds"/> is committed (the high watermark passed it), as Kafka's
    /// CoordinatorRuntime defers a write's response until then. Returns NONE, or the error the
    /// response must carry instead: COORDINATOR_NOT_AVAILABLE after offsets.commit.timeout.ms
    /// (Kafka's timeout mapping), NOT_COORDINATOR when the partition was unloaded or its log
    /// closed meanwhile (leadership moved: the write may be truncated by the new leader).
    /// Groups not coordinated here need no wait (their response already says NOT_COORDINATOR).
    /// </summary>
    public async Task<ErrorCode> WaitCommittedAsync(IEnumerable<string> groupIds, CancellationToken cancellationToken)
    {
        var config = _config();
        var shards = new List<(Shard Shard, long EndOffset, Task<short>? Commit)>();
        foreach (var groupId in groupIds)
        {
            if (Utf8Length(groupId) > GroupRecords.KeyStringBytesMax) continue;
            var partition = OffsetsTopic.PartitionFor(groupId, config.OffsetsTopicPartitions);
            if (_shards.TryGetValue(partition, out var shard) && shard.Loaded && !shards.Exists(s => ReferenceEquals(s.Shard, shard)))
                shards.Add((shard, shard.WrittenEndOffset, shard.LastCommit));
        }
        var timeout = TimeSpan.FromMilliseconds(config.OffsetsCommitTimeoutMs);
        foreach (var (shard, endOffset, commit) in shards)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, shard.LoadCancellation.Token);
            if (commit is { IsCompleted: false })
            {
                // The replica layer's commit of the newest write: it knows what the high
                // watermark alone does not (the ISR shrank below min.insync.replicas meanwhile:
                // NOT_ENOUGH_REPLICAS_AFTER_APPEND; leadership lost), and times out after
                // offsets.commit.timeout.ms (REQUEST_TIMED_OUT). Earlier writes commit before it.
                short code;
                try
                {
                    code = await commit.WaitAsync(linked.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (linked.IsCancellationRequested)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    return ErrorCode.NotCoordinator; // unloaded: leadership moved
                }
                if (code != 0)
                {
                    _logger.LogWarning("__consumer_offsets-{Partition}: a write up to offset {Offset} did not commit: error {Code}", shard.Partition, endOffset, code);
                    return AppendErrorToCoordinatorError(code, offsetCommit: false);
                }
            }
            // Without a pending commit (a bare log, or an earlier commit already finished, maybe
            // failed): the high watermark decides, within offsets.commit.timeout.ms.
            var result = await shard.Store.WaitCommittedAsync(endOffset, timeout, _time, linked.Token).ConfigureAwait(false);
            switch (result)
            {
                case CommitWaitResult.Committed:
                    continue;
                case CommitWaitResult.TimedOut:
                    _logger.LogWarning("__consumer_offsets-{Partition}: writes up to offset {Offset} not committed within offsets.commit.timeout.ms {TimeoutMs} (high watermark {Hw})",
                        shard.Partition, endOffset, config.OffsetsCommitTimeoutMs, shard.Store.Log.HighWatermark);
                    return ErrorCode.CoordinatorNotAvailable;
                case CommitWaitResult.Cancelled when cancellationToken.IsCancellationRequested:
                    cancellationToken.ThrowIfCancellationRequested();
                    return ErrorCode.CoordinatorNotAvailable;
                default:
                    return ErrorCode.NotCoordinator;
            }
        }
        return ErrorCode.None;
    }

    public void Dispose()
    {
        _expiryTimer.Dispose();
        foreach (var partition in _shards.Keys.ToArray()) Unload(partition);
    }

    /// <summary>
    /// A timer whose callback can never take the broker down: an exception escaping a timer
    /// callback would end the process, so it is logged instead (it would be a coordinator bug).
    /// </summary>
    private static ITimer CreateTimer(TimeProvider time, ILogger logger, TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        => time.CreateTimer(s =>
        {
            try
            {
                callback(s);
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Group coordinator timer failed");
            }
        }, state, dueTime, period);

    internal static string ClientMemberId(string prefix) => $"{prefix}-{Guid.NewGuid():D}";

    internal static int Utf8Length(string? s) => s is null ? 0 : Encoding.UTF8.GetByteCount(s);
}
