using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Broker.Groups;

// OffsetCommit, OffsetFetch, OffsetDelete, ListGroups, DescribeGroups, DeleteGroups, expiry.
public sealed partial class GroupCoordinator
{
    /// <summary>Most partitions one OffsetCommit may carry: one batch written to the log.</summary>
    public const int CommitPartitionsMax = 100_000;

    public OffsetCommitResponse OffsetCommit(OffsetCommitRequest request, short version)
    {
        var response = new OffsetCommitResponse();
        var slots = new List<(OffsetCommitResponse.OffsetCommitResponsePartition Result, string Topic, OffsetCommitRequest.OffsetCommitRequestPartition Partition)>();
        foreach (var t in request.Topics)
        {
            var rt = new OffsetCommitResponse.OffsetCommitResponseTopic { Name = t.Name };
            response.Topics.Add(rt);
            foreach (var p in t.Partitions)
            {
                var rp = new OffsetCommitResponse.OffsetCommitResponsePartition { PartitionIndex = p.PartitionIndex };
                rt.Partitions.Add(rp);
                slots.Add((rp, t.Name, p));
            }
        }
        void FailAll(ErrorCode e)
        {
            foreach (var s in slots) s.Result.ErrorCode = (short)e;
        }
        if (string.IsNullOrEmpty(request.GroupId)) { FailAll(ErrorCode.InvalidGroupId); return response; }
        if (slots.Count > CommitPartitionsMax) { FailAll(ErrorCode.InvalidRequest); return response; }
        var shard = ShardFor(request.GroupId, out var error);
        if (shard is null) { FailAll(error); return response; }
        var config = _config();
        lock (shard.Gate)
        {
            if (shard.Unloaded) { FailAll(ErrorCode.NotCoordinator); return response; }
            var generation = request.GenerationIdOrMemberEpoch;
            shard.Groups.TryGetValue(request.GroupId, out var group);
            var created = false;
            if (group is null)
            {
                // A commit without a generation: a "simple" consumer that assigns partitions itself.
                if (generation >= 0) { FailAll(ErrorCode.IllegalGeneration); return response; }
                group = new ClassicGroup(request.GroupId, NowMs);
                created = true;
            }
            else if (group.Is(GroupState.Dead)) { FailAll(ErrorCode.CoordinatorNotAvailable); return response; }
            else if (group.Consumer is { Members.Count: > 0 } consumerGroup)
            {
                // Consumer protocol: the field is the member epoch. Epoch -1 without a member id
                // is an admin or manually assigned consumer's commit, allowed as in Kafka.
                if (!(generation < 0 && request.MemberId.Length == 0))
                {
                    var check = ValidateConsumerMemberEpoch(consumerGroup, request.MemberId, generation, version);
                    if (check != ErrorCode.None) { FailAll(check); return response; }
                }
            }
            else if (generation < 0 && group.Is(GroupState.Empty))
            {
                // Simple commit into a group without members: allowed.
            }
            else
            {
                var check = ValidateMember(group, request.MemberId, request.GroupInstanceId);
                if (check == ErrorCode.None && generation != group.GenerationId) check = ErrorCode.IllegalGeneration;
                if (check == ErrorCode.None && group.Is(GroupState.CompletingRebalance)) check = ErrorCode.RebalanceInProgress;
                if (check != ErrorCode.None) { FailAll(check); return response; }
                ScheduleSession(shard, group, group.Members[request.MemberId]);
            }

            var now = NowMs;
            var records = new List<(byte[] Key, byte[]? Value)>();
            var accepted = new List<((string, int) Tp, CommittedOffset Offset)>();
            foreach (var (result, topic, p) in slots)
            {
                if (Utf8Length(p.CommittedMetadata) > config.OffsetMetadataMaxBytes) { result.ErrorCode = (short)ErrorCode.OffsetMetadataTooLarge; continue; }
                if (!_partitionExists(topic, p.PartitionIndex)) { result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition; continue; }
                // v1 carries a commit timestamp (-1: now); v2-4 a retention (-1: the broker's).
                var commitTs = version == 1 && p.CommitTimestamp >= 0 ? p.CommitTimestamp : now;
                var expireTs = version is >= 2 and <= 4 && request.RetentionTimeMs > 0 ? commitTs + request.RetentionTimeMs : -1;
                // A null metadata is stored as "" (Kafka's OffsetAndMetadata.NO_METADATA): fetches return "".
                var offset = new CommittedOffset(p.CommittedOffset, version >= 6 ? p.CommittedLeaderEpoch : -1, p.CommittedMetadata ?? "", commitTs, expireTs);
                records.Add((GroupRecords.EncodeOffsetKey(request.GroupId, topic, p.PartitionIndex), GroupRecords.EncodeOffsetValue(offset)));
                accepted.Add(((topic, p.PartitionIndex), offset));
            }
            var writeError = Append(shard, records, out var endOffset, offsetCommit: true);
            if (writeError != ErrorCode.None)
            {
                foreach (var (result, _, _) in slots.Where(s => s.Result.ErrorCode == 0)) result.ErrorCode = (short)writeError;
                return response;
            }
            if (created && accepted.Count > 0) shard.Groups[request.GroupId] = group;
            // Where each record went: a transaction committing later compares against it.
            for (var i = 0; i < accepted.Count; i++) group.Offsets[accepted[i].Tp] = accepted[i].Offset with { RecordOffset = endOffset - accepted.Count + i };
        }
        return response;
    }

    /// <summary>
    /// TxnOffsetCommit v0-5 (Kafka's OffsetMetadataManager.commitTransactionalOffset): the offsets
    /// are written in ONE transactional batch of the request's producer (id and epoch; the log
    /// fences a stale epoch) and held pending for that producer until its COMMIT or ABORT marker
    /// reaches this partition (<see cref="OnTransactionCompleted"/>); until then OffsetFetch does
    /// not return them. Group checks as Kafka's validateOffsetCommit with isTransactional: a group
    /// that does not exist is created (simple group) only for generation -1 (else
    /// ILLEGAL_GENERATION); member, instance and generation are checked only when the request
    /// carries one of them (v3+: UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, ILLEGAL_GENERATION; a
    /// consumer-protocol member's stale epoch is ILLEGAL_GENERATION); no REBALANCE_IN_PROGRESS.
    /// The transaction is verified first (KIP-890) when a verifier is registered.
    /// </summary>
    public async Task<TxnOffsetCommitResponse> TxnOffsetCommitAsync(TxnOffsetCommitRequest request, short version, CancellationToken cancellationToken)
    {
        var (response, slots) = TxnResponseFor(request);
        if (string.IsNullOrEmpty(request.GroupId)) return TxnFailAll(response, ErrorCode.InvalidGroupId);
        if (slots.Count > CommitPartitionsMax) return TxnFailAll(response, ErrorCode.InvalidRequest);
        // A transactional batch needs a producer: with -1 its records would replay as plain commits.
        if (request.ProducerId < 0 || request.ProducerEpoch < 0) return TxnFailAll(response, ErrorCode.InvalidProducerIdMapping);
        if (ShardFor(request.GroupId, out var error) is not { } shard) return TxnFailAll(response, error);
        if (TransactionVerifier?.Invoke() is { } verifier)
        {
            var offsetsPartition = new Storage.TopicPartition(Protos.Groups.OffsetsTopic.Name, shard.Partition);
            var verified = await verifier.VerifyAsync(request.TransactionalId, request.ProducerId, request.ProducerEpoch, offsetsPartition,
                addPartition: version >= 5, cancellationToken).ConfigureAwait(false);
            if (verified != 0) return TxnFailAll(response, TxnError((ErrorCode)verified, version));
        }
        return TxnOffsetCommit(request, version, response, slots);
    }

    /// <summary>Most offsets one producer's open transaction may hold per partition (<see cref="PendingTransactionalOffsets.OffsetsPerProducerMax"/>; tests lower it).</summary>
    internal int PendingOffsetsPerProducerMax { get; set; } = PendingTransactionalOffsets.OffsetsPerProducerMax;

    /// <summary>Looks up the transaction verifier (KIP-890) at each TxnOffsetCommit; null: none registered, nothing verified.</summary>
    public Func<Transactions.ITransactionVerifier?>? TransactionVerifier { get; init; }

    private TxnOffsetCommitResponse TxnOffsetCommit(TxnOffsetCommitRequest request, short version, TxnOffsetCommitResponse response,
        List<(TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition Result, string Topic, TxnOffsetCommitRequest.TxnOffsetCommitRequestPartition Partition)> slots)
    {
        var shard = ShardFor(request.GroupId, out var error);
        if (shard is null) return TxnFailAll(response, error);
        var config = _config();
        lock (shard.Gate)
        {
            if (shard.Unloaded) return TxnFailAll(response, ErrorCode.NotCoordinator);
            shard.Groups.TryGetValue(request.GroupId, out var group);
            var check = group is null
                ? (request.GenerationId < 0 ? ErrorCode.None : ErrorCode.IllegalGeneration)
                : ValidateTransactionalCommit(group, request, version);
            if (check != ErrorCode.None) return TxnFailAll(response, check);
            group ??= new ClassicGroup(request.GroupId, NowMs);

            var now = NowMs;
            var records = new List<(byte[] Key, byte[]? Value)>();
            var accepted = new List<(string Topic, int Partition, CommittedOffset Offset)>();
            foreach (var (result, topic, p) in slots)
            {
                if (Utf8Length(p.CommittedMetadata) > config.OffsetMetadataMaxBytes) { result.ErrorCode = (short)ErrorCode.OffsetMetadataTooLarge; continue; }
                if (!_partitionExists(topic, p.PartitionIndex)) { result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition; continue; }
                var offset = new CommittedOffset(p.CommittedOffset, version >= 2 ? p.CommittedLeaderEpoch : -1, p.CommittedMetadata ?? "", now, -1);
                records.Add((GroupRecords.EncodeOffsetKey(request.GroupId, topic, p.PartitionIndex), GroupRecords.EncodeOffsetValue(offset)));
                accepted.Add((topic, p.PartitionIndex, offset));
            }
            if (records.Count == 0) return response;
            if (!shard.Pending.HasRoomFor(request.ProducerId, records.Count, PendingOffsetsPerProducerMax))
            {
                _logger.LogWarning("Group {Group}: producer {ProducerId} would hold more than {Max} pending transactional offsets in __consumer_offsets-{Partition}",
                    request.GroupId, request.ProducerId, PendingOffsetsPerProducerMax, shard.Partition);
                foreach (var (result, _, _) in slots.Where(s => s.Result.ErrorCode == 0)) result.ErrorCode = (short)ErrorCode.InvalidCommitOffsetSize;
                return response;
            }
            var written = Append(shard, records, out var endOffset, offsetCommit: true, new TransactionalProducer(request.ProducerId, request.ProducerEpoch));
            if (written != ErrorCode.None)
            {
                var mapped = TxnError(written, version);
                foreach (var (result, _, _) in slots.Where(s => s.Result.ErrorCode == 0)) result.ErrorCode = (short)mapped;
                return response;
            }
            shard.Groups.TryAdd(request.GroupId, group);
            // The batch's records sit at the offsets just below its end, in order.
            for (var i = 0; i < accepted.Count; i++)
            {
                var (topic, partition, offset) = accepted[i];
                shard.Pending.Add(request.ProducerId, request.GroupId, topic, partition, offset with { RecordOffset = endOffset - accepted.Count + i });
            }
        }
        return response;
    }

    /// <summary>Kafka's (Classic|Consumer)Group.validateOffsetCommit with isTransactional = true.</summary>
    private static ErrorCode ValidateTransactionalCommit(ClassicGroup group, TxnOffsetCommitRequest request, short version)
    {
        if (group.Is(GroupState.Dead)) return ErrorCode.CoordinatorNotAvailable;
        var generation = request.GenerationId;
        // The member fields came with v3; older requests (and v3+ ones without them) are not checked.
        var identified = generation >= 0 || request.MemberId.Length > 0 || request.GroupInstanceId is not null;
        if (group.Consumer is { Members.Count: > 0 } consumerGroup)
        {
            if (!identified) return ErrorCode.None;
            var check = ValidateConsumerMemberEpoch(consumerGroup, request.MemberId, generation, 9);
            // A stale epoch is ILLEGAL_GENERATION for TxnOffsetCommit (Kafka's validateTransactionalOffsetCommit).
            return check == ErrorCode.StaleMemberEpoch ? ErrorCode.IllegalGeneration : check;
        }
        if (generation < 0 && group.Is(GroupState.Empty)) return ErrorCode.None;
        if (!identified) return ErrorCode.None;
        var member = ValidateMember(group, request.MemberId, request.GroupInstanceId);
        if (member != ErrorCode.None) return member;
        return generation != group.GenerationId ? ErrorCode.IllegalGeneration : ErrorCode.None;
    }

    /// <summary>
    /// What a TxnOffsetCommit client gets for a verification or append error, as Kafka's
    /// AddPartitionsToTxnManager maps it: PRODUCER_FENCED is INVALID_PRODUCER_EPOCH (what
    /// producers handle here), TRANSACTION_ABORTABLE exists from v4 (INVALID_TXN_STATE before).
    /// </summary>
    private static ErrorCode TxnError(ErrorCode error, short version) => error switch
    {
        ErrorCode.ProducerFenced => ErrorCode.InvalidProducerEpoch,
        ErrorCode.TransactionAbortable when version < 4 => ErrorCode.InvalidTxnState,
        _ => error,
    };

    private static (TxnOffsetCommitResponse, List<(TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition, string, TxnOffsetCommitRequest.TxnOffsetCommitRequestPartition)>) TxnResponseFor(TxnOffsetCommitRequest request)
    {
        var response = new TxnOffsetCommitResponse();
        var slots = new List<(TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition, string, TxnOffsetCommitRequest.TxnOffsetCommitRequestPartition)>();
        foreach (var t in request.Topics)
        {
            var rt = new TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic { Name = t.Name };
            response.Topics.Add(rt);
            foreach (var p in t.Partitions)
            {
                var rp = new TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition { PartitionIndex = p.PartitionIndex };
                rt.Partitions.Add(rp);
                slots.Add((rp, t.Name, p));
            }
        }
        return (response, slots);
    }

    /// <summary>Kafka's TxnOffsetCommitRequest.getErrorResponse: every partition carries the error.</summary>
    internal static TxnOffsetCommitResponse TxnFailAll(TxnOffsetCommitResponse response, ErrorCode error)
    {
        foreach (var p in response.Topics.SelectMany(t => t.Partitions)) p.ErrorCode = (short)error;
        return response;
    }

    /// <summary>
    /// <see cref="Transactions.ITransactionMarkerObserver"/> for __consumer_offsets: the producer's
    /// COMMIT (its pending offsets of every group of the partition become committed, unless a plain
    /// commit written later is there) or ABORT (dropped), at <paramref name="markerOffset"/>. A
    /// partition still loading queues the marker for the end of its load (the load may have read
    /// the log before the marker was appended); one not coordinated here is ignored (whoever loads
    /// it reads the marker from the log).
    /// </summary>
    public void OnTransactionCompleted(Storage.TopicPartition partition, long producerId, bool committed, long markerOffset)
    {
        if (partition.Topic != Protos.Groups.OffsetsTopic.Name || !_shards.TryGetValue(partition.Partition, out var shard)) return;
        lock (shard.MarkerGate)
        {
            if (!shard.Loaded)
            {
                if (shard.DeferredMarkers.Count < Shard.DeferredMarkersMax) shard.DeferredMarkers.Add((producerId, committed, markerOffset));
                else shard.DeferredMarkersOverflowed = true;
                return;
            }
        }
        lock (shard.Gate)
        {
            if (!shard.Unloaded) ApplyMarker(shard, producerId, committed, markerOffset);
        }
    }

    /// <summary>Applies a marker to a loaded shard (under its gate).</summary>
    private void ApplyMarker(Shard shard, long producerId, bool committed, long markerOffset)
    {
        var completed = shard.Pending.Complete(producerId, markerOffset);
        if (completed.Count == 0) return;
        foreach (var (groupId, tp, offset) in completed)
        {
            if (!committed) continue;
            if (!shard.Groups.TryGetValue(groupId, out var group)) shard.Groups[groupId] = group = new ClassicGroup(groupId, NowMs);
            if (!PendingTransactionalOffsets.Materialize(group.Offsets, tp, offset))
                _logger.LogInformation("Group {Group}: transactional offset of {Topic}-{Partition} from producer {ProducerId} skipped: a later commit is there",
                    groupId, tp.Topic, tp.Partition, producerId);
        }
        _logger.LogDebug("__consumer_offsets-{Partition}: {Result} of producer {ProducerId} at {Offset}: {Count} transactional offsets",
            shard.Partition, committed ? "COMMIT" : "ABORT", producerId, markerOffset, completed.Count);
    }

    public OffsetFetchResponse OffsetFetch(OffsetFetchRequest request, short version)
    {
        var response = new OffsetFetchResponse();
        if (version >= 8)
        {
            foreach (var g in request.Groups)
            {
                var rg = new OffsetFetchResponse.OffsetFetchResponseGroup { GroupId = g.GroupId };
                response.Groups.Add(rg);
                var requested = g.Topics?.Select(t => (t.Name, (IReadOnlyList<int>)t.PartitionIndexes)).ToList();
                var (error, offsets) = FetchGroupOffsets(g.GroupId, requested, request.RequireStable, version >= 9 ? g.MemberId : null, g.MemberEpoch, version);
                rg.ErrorCode = (short)error;
                if (error != ErrorCode.None) continue;
                foreach (var (topic, partitions) in offsets)
                {
                    var rt = new OffsetFetchResponse.OffsetFetchResponseTopics { Name = topic };
                    rg.Topics.Add(rt);
                    foreach (var (partition, o, unstable) in partitions)
                        rt.Partitions.Add(new OffsetFetchResponse.OffsetFetchResponsePartitions
                        {
                            PartitionIndex = partition, CommittedOffset = o?.Offset ?? -1, CommittedLeaderEpoch = o?.LeaderEpoch ?? -1, Metadata = o is null ? "" : o.Metadata,
                            ErrorCode = unstable ? (short)ErrorCode.UnstableOffsetCommit : (short)0,
                        });
                }
            }
            return response;
        }
        var topics = request.Topics?.Select(t => (t.Name, (IReadOnlyList<int>)t.PartitionIndexes)).ToList();
        var (err, result) = FetchGroupOffsets(request.GroupId, topics, version >= 7 && request.RequireStable);
        if (err != ErrorCode.None)
        {
            if (version >= 2)
            {
                response.ErrorCode = (short)err;
                return response;
            }
            // v0-1 have no top-level error: every requested partition carries it.
            foreach (var t in request.Topics ?? [])
            {
                var rt = new OffsetFetchResponse.OffsetFetchResponseTopic { Name = t.Name };
                response.Topics.Add(rt);
                foreach (var p in t.PartitionIndexes)
                    rt.Partitions.Add(new OffsetFetchResponse.OffsetFetchResponsePartition { PartitionIndex = p, CommittedOffset = -1, CommittedLeaderEpoch = -1, Metadata = "", ErrorCode = (short)err });
            }
            return response;
        }
        foreach (var (topic, partitions) in result)
        {
            var rt = new OffsetFetchResponse.OffsetFetchResponseTopic { Name = topic };
            response.Topics.Add(rt);
            foreach (var (partition, o, unstable) in partitions)
                rt.Partitions.Add(new OffsetFetchResponse.OffsetFetchResponsePartition
                {
                    PartitionIndex = partition, CommittedOffset = o?.Offset ?? -1, CommittedLeaderEpoch = o?.LeaderEpoch ?? -1, Metadata = o is null ? "" : o.Metadata,
                    ErrorCode = unstable ? (short)ErrorCode.UnstableOffsetCommit : (short)0,
                });
        }
        return response;
    }

    /// <summary>
    /// Committed offsets of the requested partitions (null: all the group has), -1 where none.
    /// With <paramref name="requireStable"/> (OffsetFetch v7+, read_committed consumers) a
    /// partition an open transaction holds an offset for is Unstable (UNSTABLE_OFFSET_COMMIT,
    /// offset -1: the client retries until the marker decided it), as Kafka's fetchOffsets.
    /// </summary>
    private (ErrorCode, List<(string Topic, List<(int Partition, CommittedOffset? Offset, bool Unstable)>)>) FetchGroupOffsets(string groupId,
        List<(string Name, IReadOnlyList<int> Partitions)>? topics, bool requireStable, string? memberId = null, int memberEpoch = -1, short version = 0)
    {
        var result = new List<(string, List<(int, CommittedOffset?, bool)>)>();
        if (string.IsNullOrEmpty(groupId)) return (ErrorCode.InvalidGroupId, result);
        var shard = ShardFor(groupId, out var error);
        if (shard is null) return (error, result);
        lock (shard.Gate)
        {
            if (shard.Unloaded) return (ErrorCode.NotCoordinator, result);
            shard.Groups.TryGetValue(groupId, out var group);
            if (group is not null && group.Is(GroupState.Dead)) group = null;
            bool Unstable(string topic, int partition) => requireStable && shard.Pending.Has(groupId, topic, partition);
            // v9: a consumer-protocol member fetching its offsets must be current (KIP-848).
            if (!string.IsNullOrEmpty(memberId) && memberEpoch >= 0)
            {
                if (group?.Consumer is not { } cg) return (ErrorCode.UnknownMemberId, result);
                var check = ValidateConsumerMemberEpoch(cg, memberId, memberEpoch, version);
                if (check != ErrorCode.None) return (check, result);
            }
            if (topics is null)
            {
                if (group is null) return (ErrorCode.None, result);
                // As Kafka's fetchAllOffsets: the partitions with a committed offset, each unstable while a transaction holds one.
                foreach (var byTopic in group.Offsets.GroupBy(kv => kv.Key.Topic).OrderBy(g => g.Key, StringComparer.Ordinal))
                    result.Add((byTopic.Key, byTopic.OrderBy(kv => kv.Key.Partition)
                        .Select(kv => Unstable(byTopic.Key, kv.Key.Partition) ? (kv.Key.Partition, null, true) : (kv.Key.Partition, (CommittedOffset?)kv.Value, false)).ToList()));
                return (ErrorCode.None, result);
            }
            foreach (var (name, partitions) in topics)
            {
                var list = new List<(int, CommittedOffset?, bool)>();
                foreach (var p in partitions)
                {
                    if (Unstable(name, p)) list.Add((p, null, true));
                    else list.Add((p, group is not null && group.Offsets.TryGetValue((name, p), out var o) ? o : null, false));
                }
                result.Add((name, list));
            }
            return (ErrorCode.None, result);
        }
    }

    public OffsetDeleteResponse OffsetDelete(OffsetDeleteRequest request, short version)
    {
        var response = new OffsetDeleteResponse();
        if (string.IsNullOrEmpty(request.GroupId)) { response.ErrorCode = (short)ErrorCode.InvalidGroupId; return response; }
        var shard = ShardFor(request.GroupId, out var error);
        if (shard is null) { response.ErrorCode = (short)error; return response; }
        lock (shard.Gate)
        {
            if (shard.Unloaded) { response.ErrorCode = (short)ErrorCode.NotCoordinator; return response; }
            if (!shard.Groups.TryGetValue(request.GroupId, out var group) || group.Is(GroupState.Dead))
            {
                response.ErrorCode = (short)ErrorCode.GroupIdNotFound;
                return response;
            }
            HashSet<string>? subscribed = null;
            if (group.Consumer is { Members.Count: > 0 } cgroup)
                subscribed = cgroup.Members.Values.SelectMany(m => m.SubscribedTopics).ToHashSet(StringComparer.Ordinal);
            else if (!group.Is(GroupState.Empty))
            {
                // Only a consumer group's subscriptions can be read; any other active group keeps its offsets.
                subscribed = group.SubscribedTopics();
                if (subscribed is null) { response.ErrorCode = (short)ErrorCode.NonEmptyGroup; return response; }
            }
            var records = new List<(byte[] Key, byte[]? Value)>();
            var removed = new List<(string, int)>();
            foreach (var t in request.Topics)
            {
                var rt = new OffsetDeleteResponse.OffsetDeleteResponseTopic { Name = t.Name };
                response.Topics.Add(rt);
                foreach (var p in t.Partitions)
                {
                    var rp = new OffsetDeleteResponse.OffsetDeleteResponsePartition { PartitionIndex = p.PartitionIndex };
                    rt.Partitions.Add(rp);
                    if (subscribed is not null && subscribed.Contains(t.Name)) { rp.ErrorCode = (short)ErrorCode.GroupSubscribedToTopic; continue; }
                    // As Kafka: a tombstone also for an offset only an open transaction holds (it drops it).
                    if (group.Offsets.ContainsKey((t.Name, p.PartitionIndex)) || shard.Pending.Has(group.GroupId, t.Name, p.PartitionIndex))
                    {
                        records.Add((GroupRecords.EncodeOffsetKey(group.GroupId, t.Name, p.PartitionIndex), null));
                        removed.Add((t.Name, p.PartitionIndex));
                    }
                }
            }
            var writeError = Append(shard, records);
            if (writeError != ErrorCode.None) { response.ErrorCode = (short)writeError; response.Topics.Clear(); return response; }
            foreach (var tp in removed)
            {
                group.Offsets.Remove(tp);
                shard.Pending.Remove(group.GroupId, tp.Item1, tp.Item2);
            }
        }
        return response;
    }

    public ListGroupsResponse ListGroups(ListGroupsRequest request, short version)
    {
        var response = new ListGroupsResponse();
        var states = version >= 4 ? request.StatesFilter.Select(s => s.ToLowerInvariant()).ToHashSet() : [];
        var types = version >= 5 ? request.TypesFilter.Select(s => s.ToLowerInvariant()).ToHashSet() : [];
        foreach (var shard in _shards.Values)
        {
            if (!shard.Loaded)
            {
                response.ErrorCode = (short)ErrorCode.CoordinatorLoadInProgress;
                continue;
            }
            lock (shard.Gate)
            {
                if (shard.Unloaded) continue;
                foreach (var group in shard.Groups.Values)
                {
                    if (group.Is(GroupState.Dead)) continue;
                    var isConsumer = group.Consumer is not null;
                    var state = group.Consumer?.StateName ?? GroupStates.Name(group.State);
                    var type = isConsumer ? "consumer" : "classic";
                    if (states.Count > 0 && !states.Contains(state.ToLowerInvariant())) continue;
                    if (types.Count > 0 && !types.Contains(type)) continue;
                    response.Groups.Add(new ListGroupsResponse.ListedGroup
                    {
                        GroupId = group.GroupId, ProtocolType = group.ProtocolType ?? "", GroupState = state, GroupType = type,
                    });
                }
            }
        }
        return response;
    }

    public DescribeGroupsResponse DescribeGroups(DescribeGroupsRequest request, short version)
    {
        var response = new DescribeGroupsResponse();
        foreach (var groupId in request.Groups.Take(GroupsPerRequestMax))
        {
            var described = new DescribeGroupsResponse.DescribedGroup
            {
                GroupId = groupId, GroupState = GroupStates.Name(GroupState.Dead), ProtocolType = "", ProtocolData = "",
                // No ACLs: a requester may do everything a group allows (Read 3, Describe 8, Delete 6).
                AuthorizedOperations = request.IncludeAuthorizedOperations ? (1 << 3) | (1 << 6) | (1 << 8) : int.MinValue,
            };
            response.Groups.Add(described);
            if (string.IsNullOrEmpty(groupId)) { described.ErrorCode = (short)ErrorCode.InvalidGroupId; continue; }
            var shard = ShardFor(groupId, out var error);
            if (shard is null) { described.ErrorCode = (short)error; continue; }
            lock (shard.Gate)
            {
                if (shard.Unloaded) { described.ErrorCode = (short)ErrorCode.NotCoordinator; continue; }
                if (!shard.Groups.TryGetValue(groupId, out var group) || group.Is(GroupState.Dead)) continue;
                described.GroupState = group.Consumer?.StateName ?? GroupStates.Name(group.State);
                described.ProtocolType = group.ProtocolType ?? "";
                var stable = group.Is(GroupState.Stable);
                // As Kafka: protocol, metadata and assignments only once the group is Stable.
                described.ProtocolData = stable ? group.ProtocolName ?? "" : "";
                foreach (var m in group.Members.Values)
                    described.Members.Add(new DescribeGroupsResponse.DescribedGroupMember
                    {
                        MemberId = m.MemberId, GroupInstanceId = m.GroupInstanceId, ClientId = m.ClientId, ClientHost = m.ClientHost,
                        MemberMetadata = stable ? m.MetadataFor(group.ProtocolName!) ?? [] : ReadOnlyMemory<byte>.Empty,
                        MemberAssignment = stable ? m.Assignment : ReadOnlyMemory<byte>.Empty,
                    });
            }
        }
        return response;
    }

    public DeleteGroupsResponse DeleteGroups(DeleteGroupsRequest request, short version)
    {
        var response = new DeleteGroupsResponse();
        foreach (var groupId in request.GroupsNames.Take(GroupsPerRequestMax))
        {
            var result = new DeleteGroupsResponse.DeletableGroupResult { GroupId = groupId };
            response.Results.Add(result);
            result.ErrorCode = (short)DeleteGroup(groupId);
        }
        return response;
    }

    private ErrorCode DeleteGroup(string groupId)
    {
        if (string.IsNullOrEmpty(groupId)) return ErrorCode.InvalidGroupId;
        var shard = ShardFor(groupId, out var error);
        if (shard is null) return error;
        lock (shard.Gate)
        {
            if (shard.Unloaded) return ErrorCode.NotCoordinator;
            if (!shard.Groups.TryGetValue(groupId, out var group) || group.Is(GroupState.Dead)) return ErrorCode.GroupIdNotFound;
            if (!group.IsEmptyOfMembers) return ErrorCode.NonEmptyGroup;
            // Kafka's deleteAllOffsets: the offsets open transactions hold get tombstones too, so
            // their COMMIT cannot bring them back (one tombstone per partition).
            var offsets = group.Offsets.Keys.ToHashSet();
            offsets.UnionWith(shard.Pending.PartitionsOf(groupId));
            return RemoveGroup(shard, group, offsets.ToList());
        }
    }

    /// <summary>
    /// Tombstones for the offsets, committed or pending (and, when none of either remain, the
    /// group), then the in-memory removal.
    /// </summary>
    private ErrorCode RemoveGroup(Shard shard, ClassicGroup group, List<(string Topic, int Partition)> offsets)
    {
        var records = offsets.Select(tp => (GroupRecords.EncodeOffsetKey(group.GroupId, tp.Topic, tp.Partition), (byte[]?)null)).ToList();
        var pendingLeft = shard.Pending.PartitionsOf(group.GroupId);
        pendingLeft.ExceptWith(offsets);
        // A group an open transaction still holds offsets of stays (Kafka's cleanupExpiredOffsets).
        var removeGroup = group.Offsets.Keys.All(offsets.Contains) && pendingLeft.Count == 0;
        if (removeGroup) records.Add((GroupRecords.EncodeGroupKey(group.GroupId), null));
        if (removeGroup) records.AddRange(ConsumerTombstones(group));
        var error = Append(shard, records);
        if (error != ErrorCode.None) return error;
        foreach (var tp in offsets)
        {
            group.Offsets.Remove(tp);
            shard.Pending.Remove(group.GroupId, tp.Topic, tp.Partition);
        }
        if (removeGroup)
        {
            CancelPhaseTimer(group);
            group.TransitionTo(GroupState.Dead, NowMs);
            shard.Groups.Remove(group.GroupId);
        }
        return ErrorCode.None;
    }

    /// <summary>
    /// offsets.retention.minutes: an Empty group's offsets expire that long after it became
    /// empty; a group that never had members (simple commits) expires offset by offset from its
    /// commit time; an explicit v2-4 retention sets its own expiry. A group left without
    /// offsets or members is deleted.
    /// </summary>
    public int ExpireOffsets()
    {
        var now = NowMs;
        var retention = _config().OffsetsRetentionMs;
        var expiredCount = 0;
        foreach (var shard in _shards.Values)
        {
            if (!shard.Loaded) continue;
            lock (shard.Gate)
            {
                if (shard.Unloaded) continue;
                foreach (var group in shard.Groups.Values.ToList())
                {
                    if (!group.IsEmptyOfMembers) continue;
                    var simple = string.IsNullOrEmpty(group.ProtocolType);
                    // An offset an open transaction holds a newer one for does not expire yet, and
                    // a group with open transactions is not deleted (Kafka's cleanupExpiredOffsets).
                    var expired = group.Offsets.Where(kv =>
                            (kv.Value.ExpireTimestampMs >= 0 ? kv.Value.ExpireTimestampMs <= now
                            : simple ? kv.Value.CommitTimestampMs + retention <= now
                            : group.CurrentStateTimestampMs + retention <= now)
                            && !shard.Pending.Has(group.GroupId, kv.Key.Topic, kv.Key.Partition))
                        .Select(kv => kv.Key).ToList();
                    if (expired.Count == 0 && (group.Offsets.Count > 0 || shard.Pending.HasOpenTransactions(group.GroupId))) continue;
                    if (expired.Count == 0 && group.CurrentStateTimestampMs + retention > now) continue;
                    if (RemoveGroup(shard, group, expired) == ErrorCode.None) expiredCount += expired.Count;
                }
            }
        }
        return expiredCount;
    }

    /// <summary>
    /// Every committed offset of the groups coordinated here (group, topic, partition, offset),
    /// copied under each loaded shard's lock: what the consumer lag gauge compares with the logs.
    /// </summary>
    public List<(string GroupId, string Topic, int Partition, long Offset)> CommittedOffsetsSnapshot()
    {
        var snapshot = new List<(string, string, int, long)>();
        foreach (var shard in _shards.Values)
        {
            if (!shard.Loaded) continue;
            lock (shard.Gate)
                foreach (var (groupId, group) in shard.Groups)
                    foreach (var ((topic, partition), offset) in group.Offsets)
                        snapshot.Add((groupId, topic, partition, offset.Offset));
        }
        return snapshot;
    }
}
