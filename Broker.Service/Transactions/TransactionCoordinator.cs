using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Groups;
using StreamPlatform.Protos.Kafka.Messages;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Transactions;

/// <summary>
/// The transaction coordinator of one broker (Kafka's TransactionCoordinator + the request
/// handling of KafkaApis): Kafka bodies in, Kafka bodies out at the request's version. It
/// coordinates the transactional ids of the __transaction_state partitions this broker leads
/// (<see cref="TransactionStateManager"/>); others get NOT_COORDINATOR, ids of a partition
/// still loading COORDINATOR_LOAD_IN_PROGRESS, and an id whose commit or abort is completing
/// CONCURRENT_TRANSACTIONS. Ending transactions is <see cref="EndTransactionHandler"/>'s part.
/// InitProducerId with a null transactional id (idempotent producers) is answered by any broker.
/// </summary>
public sealed class TransactionCoordinator
{
    private readonly TransactionStateManager _states;
    private readonly ProducerIdManager _producerIds;
    private readonly EndTransactionHandler _ender;
    private readonly Func<string, int, bool> _partitionExists;
    private readonly Func<int> _offsetsPartitions;
    private readonly ILogger _logger;

    /// <param name="partitionExists">Whether a topic partition exists in the metadata (others are UNKNOWN_TOPIC_OR_PARTITION).</param>
    /// <param name="offsetsPartitions">Partitions of __consumer_offsets (the group coordinator's mapping of a group id).</param>
    public TransactionCoordinator(TransactionStateManager states, ProducerIdManager producerIds, TransactionMarkerSender markers,
        Func<string, int, bool> partitionExists, Func<int> offsetsPartitions, ILogger<TransactionCoordinator> logger)
    {
        _states = states;
        _producerIds = producerIds;
        _ender = new EndTransactionHandler(states, producerIds, markers, logger);
        _partitionExists = partitionExists;
        _offsetsPartitions = offsetsPartitions;
        _logger = logger;
        // After a load (failover, restart), decided commits and aborts are completed here.
        states.OnPendingCompletion = (epoch, txn, complete) => _ = markers.SendAsync(epoch, txn, complete);
    }

    public TransactionStateManager States => _states;

    // ---------------------------------------------------------------- InitProducerId

    /// <summary>
    /// Kafka's handleInitProducerId. A producer id without its epoch (or the reverse) is
    /// INVALID_REQUEST. Null transactional id: a new producer id at epoch 0 from this broker's
    /// block, whatever the request carries (Kafka's; transaction_timeout_ms is not read).
    /// Transactional: a new id gets a producer id at epoch 0; a known one the next epoch (a new
    /// producer id once the epoch is exhausted), which fences its earlier producer. An ongoing
    /// transaction of the earlier producer is aborted first and the answer is
    /// CONCURRENT_TRANSACTIONS (the client retries and gets the epoch after the abort).
    /// </summary>
    public async Task<InitProducerIdResponse> InitProducerIdAsync(InitProducerIdRequest request, short version, CancellationToken cancellationToken)
    {
        if ((request.ProducerId == -1) != (request.ProducerEpoch == -1)) return InitError(ErrorCodes.InvalidRequest);
        if (request.TransactionalId is not { } id)
        {
            var (idError, producerId) = await _producerIds.NextAsync(cancellationToken).ConfigureAwait(false);
            if (idError != ErrorCodes.None) return InitError(idError);
            _logger.LogDebug("Producer id {ProducerId} given to an idempotent producer", producerId);
            return new InitProducerIdResponse { ProducerId = producerId, ProducerEpoch = 0 };
        }
        var result = await InitTransactionalAsync(id, request.TransactionTimeoutMs,
            request.ProducerId == -1 ? null : (request.ProducerId, request.ProducerEpoch), cancellationToken).ConfigureAwait(false);
        // Clients before v4 do not know PRODUCER_FENCED: they get INVALID_PRODUCER_EPOCH (Kafka's KafkaApis).
        if (version < 4 && result.ErrorCode == ErrorCodes.ProducerFenced) result.ErrorCode = ErrorCodes.InvalidProducerEpoch;
        return result;
    }

    private async Task<InitProducerIdResponse> InitTransactionalAsync(string id, int timeoutMs, (long ProducerId, short Epoch)? expected, CancellationToken cancellationToken)
    {
        if (id.Length == 0) return InitError(ErrorCodes.InvalidRequest);
        if (timeoutMs <= 0 || timeoutMs > _states.Config.MaxTimeoutMs) return InitError(ErrorCodes.InvalidTransactionTimeout);
        var error = _states.TryGet(id, out _, out var txn);
        if (error != ErrorCodes.None) return InitError(error);
        if (txn is null)
        {
            var (idError, producerId) = await _producerIds.NextAsync(cancellationToken).ConfigureAwait(false);
            if (idError != ErrorCodes.None) return InitError(idError);
            error = _states.GetOrAdd(id, () => TransactionMetadata.New(id, producerId, timeoutMs, _states.NowMs), out _, out txn);
            if (error != ErrorCodes.None) return InitError(error);
        }
        error = _states.TryGet(id, out var shard, out var current);
        if (error != ErrorCodes.None) return InitError(error);
        if (!ReferenceEquals(current, txn)) return InitError(ErrorCodes.ConcurrentTransactions); // expired meanwhile: the client retries
        var coordinatorEpoch = shard!.CoordinatorEpoch;

        // A new producer id is needed when the epoch is exhausted: fetched before the lock (it may wait for a block).
        long newProducerId = TransactionMetadata.NoProducerId;
        bool exhausted;
        lock (txn!.Gate) exhausted = txn.IsProducerEpochExhausted;
        if (exhausted)
        {
            var (idError, producerId) = await _producerIds.NextAsync(cancellationToken).ConfigureAwait(false);
            if (idError != ErrorCodes.None) return InitError(idError);
            newProducerId = producerId;
        }

        TxnTransit transit;
        lock (txn.Gate)
        {
            var prepared = PrepareInit(txn, timeoutMs, expected, newProducerId, out error);
            if (prepared is null) return InitError(error);
            transit = prepared;
        }
        if (transit.State == TransactionState.PrepareEpochFence)
        {
            // Abort the fenced producer's transaction first; the client retries and then gets the next epoch.
            var aborted = await _ender.EndAsync(id, transit.ProducerId, transit.ProducerEpoch, commit: false, fromClient: false, clientTransactionVersion: 0,
                cancellationToken).ConfigureAwait(false);
            return InitError(aborted.ErrorCode == ErrorCodes.None ? ErrorCodes.ConcurrentTransactions : aborted.ErrorCode);
        }
        error = await _states.AppendAsync(id, coordinatorEpoch, transit).ConfigureAwait(false);
        if (error != ErrorCodes.None) return InitError(error);
        _logger.LogInformation("Initialized transactional id {Id} with producer id {ProducerId} epoch {Epoch} on __transaction_state-{Partition}",
            id, transit.ProducerId, transit.ProducerEpoch, shard.Partition);
        return new InitProducerIdResponse { ProducerId = transit.ProducerId, ProducerEpoch = transit.ProducerEpoch };
    }

    /// <summary>Kafka's prepareInitProducerIdTransit, under the id's lock.</summary>
    private TxnTransit? PrepareInit(TransactionMetadata txn, int timeoutMs, (long ProducerId, short Epoch)? expected, long newProducerId, out short error)
    {
        error = ErrorCodes.None;
        if (txn.PendingTransitionInProgress)
        {
            error = ErrorCodes.ConcurrentTransactions;
            return null;
        }
        // A producer naming its id and epoch (KIP-360) is fenced unless the id is new (epoch -1),
        // it names the current producer id, or it retries a rotation that exhausted the previous one.
        if (expected is { } e && !(txn.ProducerEpoch == TransactionMetadata.NoProducerEpoch || e.ProducerId == txn.ProducerId
            || (e.ProducerId == txn.PreviousProducerId && TransactionMetadata.IsEpochExhausted(e.Epoch))))
        {
            error = ErrorCodes.ProducerFenced;
            return null;
        }
        var nowMs = _states.NowMs;
        switch (txn.State)
        {
            case TransactionState.PrepareAbort or TransactionState.PrepareCommit:
                error = ErrorCodes.ConcurrentTransactions;
                return null;
            case TransactionState.CompleteAbort or TransactionState.CompleteCommit or TransactionState.Empty:
                if (txn.IsProducerEpochExhausted && (expected is null || expected.Value.Epoch == txn.ProducerEpoch))
                {
                    if (newProducerId == TransactionMetadata.NoProducerId)
                    {
                        error = ErrorCodes.ConcurrentTransactions; // exhausted after the id was asked for: the client retries
                        return null;
                    }
                    return txn.PrepareProducerIdRotation(newProducerId, timeoutMs, nowMs, expected is not null);
                }
                return txn.PrepareIncrementProducerEpoch(timeoutMs, expected?.Epoch, nowMs, out error);
            case TransactionState.Ongoing:
                // Never given to the client: the abort carries it, and the retry bumps again.
                return txn.PrepareFenceProducerEpoch();
            default:
                throw new IllegalTransactionTransitionException($"{txn.TransactionalId} is {txn.State}: never a state InitProducerId can find.");
        }
    }

    private static InitProducerIdResponse InitError(short error) => new() { ErrorCode = error, ProducerId = -1, ProducerEpoch = -1 };

    // ---------------------------------------------------------------- EndTxn

    /// <summary>EndTxn; v5+ is transaction version 2 (the epoch is bumped and returned). PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2.</summary>
    public async Task<EndTxnResponse> EndTxnAsync(EndTxnRequest request, short version, CancellationToken cancellationToken)
    {
        var result = await _ender.EndAsync(request.TransactionalId, request.ProducerId, request.ProducerEpoch, request.Committed, fromClient: true,
            clientTransactionVersion: (short)(version >= 5 ? 2 : 0), cancellationToken).ConfigureAwait(false);
        var error = version < 2 && result.ErrorCode == ErrorCodes.ProducerFenced ? ErrorCodes.InvalidProducerEpoch : result.ErrorCode;
        return new EndTxnResponse { ErrorCode = error, ProducerId = result.ProducerId, ProducerEpoch = result.ProducerEpoch };
    }

    /// <summary>Aborts a timed-out transaction (the timeout check): fences the producer's epoch, then aborts with it.</summary>
    public async Task<short> AbortTimedOutAsync(string id, long producerId, CancellationToken cancellationToken)
    {
        if (_states.TryGet(id, out _, out var txn) != ErrorCodes.None || txn is null) return ErrorCodes.NotCoordinator;
        TxnTransit fence;
        lock (txn.Gate)
        {
            if (txn.ProducerId != producerId || txn.PendingTransitionInProgress || txn.State != TransactionState.Ongoing) return ErrorCodes.ConcurrentTransactions;
            fence = txn.PrepareFenceProducerEpoch();
        }
        var result = await _ender.EndAsync(id, fence.ProducerId, fence.ProducerEpoch, commit: false, fromClient: false, clientTransactionVersion: 0, cancellationToken)
            .ConfigureAwait(false);
        if (result.ErrorCode == ErrorCodes.None) _logger.LogInformation("Aborted the transaction of {Id} (producer {ProducerId}) open past its timeout", id, producerId);
        return result.ErrorCode;
    }

    // ---------------------------------------------------------------- AddPartitionsToTxn / AddOffsetsToTxn

    /// <summary>
    /// AddPartitionsToTxn. v0-3 (clients): one transaction. v4+ (brokers): a batch; verify_only
    /// answers whether each partition is in the ongoing transaction (KIP-890 part 1), otherwise
    /// the partitions are added (transaction version 2's implicit add). A partition that does
    /// not exist fails the whole transaction's request (UNKNOWN_TOPIC_OR_PARTITION, the others
    /// OPERATION_NOT_ATTEMPTED), as Kafka.
    /// </summary>
    public async Task<AddPartitionsToTxnResponse> AddPartitionsToTxnAsync(AddPartitionsToTxnRequest request, short version, CancellationToken cancellationToken)
    {
        if (version < 4)
        {
            var topics = request.V3AndBelowTopics;
            var result = await AddOneAsync(request.V3AndBelowTransactionalId, request.V3AndBelowProducerId, request.V3AndBelowProducerEpoch, topics,
                verifyOnly: false, clientTransactionVersion: 0, cancellationToken).ConfigureAwait(false);
            if (version < 2)
                foreach (var p in result.TopicResults.SelectMany(t => t.ResultsByPartition))
                    if (p.PartitionErrorCode == ErrorCodes.ProducerFenced) p.PartitionErrorCode = ErrorCodes.InvalidProducerEpoch;
            return new AddPartitionsToTxnResponse { ResultsByTopicV3AndBelow = result.TopicResults };
        }
        var results = await Task.WhenAll(request.Transactions.Select(t => AddOneAsync(t.TransactionalId, t.ProducerId, t.ProducerEpoch, t.Topics,
            t.VerifyOnly, clientTransactionVersion: 2, cancellationToken))).ConfigureAwait(false);
        return new AddPartitionsToTxnResponse { ResultsByTransaction = [.. results] };
    }

    private async Task<AddPartitionsToTxnResponse.AddPartitionsToTxnResult> AddOneAsync(string id, long producerId, short producerEpoch,
        List<AddPartitionsToTxnRequest.AddPartitionsToTxnTopic> topics, bool verifyOnly, short clientTransactionVersion, CancellationToken cancellationToken)
    {
        var partitions = topics.SelectMany(t => t.Partitions.Select(p => new TopicPartition(t.Name, p))).Distinct().ToList();
        var missing = partitions.Where(p => !_partitionExists(p.Topic, p.Partition)).ToHashSet();
        if (missing.Count > 0)
            return PartitionResults(id, partitions.Select(p => (p, missing.Contains(p) ? ErrorCodes.UnknownTopicOrPartition : ErrorCodes.OperationNotAttempted)));
        if (verifyOnly) return PartitionResults(id, Verify(id, producerId, producerEpoch, partitions));
        var error = await AddAsync(id, producerId, producerEpoch, partitions, clientTransactionVersion).ConfigureAwait(false);
        return PartitionResults(id, partitions.Select(p => (p, error)));
    }

    private static AddPartitionsToTxnResponse.AddPartitionsToTxnResult PartitionResults(string id, IEnumerable<(TopicPartition Partition, short Error)> errors)
    {
        var result = new AddPartitionsToTxnResponse.AddPartitionsToTxnResult { TransactionalId = id };
        foreach (var g in errors.GroupBy(e => e.Partition.Topic, StringComparer.Ordinal))
            result.TopicResults.Add(new AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult
            {
                Name = g.Key,
                ResultsByPartition = [.. g.Select(e => new AddPartitionsToTxnResponse.AddPartitionsToTxnPartitionResult { PartitionIndex = e.Partition.Partition, PartitionErrorCode = e.Error })],
            });
        return result;
    }

    /// <summary>Kafka's handleAddPartitionsToTransaction: one error for all the partitions.</summary>
    public async Task<short> AddAsync(string id, long producerId, short producerEpoch, IReadOnlyCollection<TopicPartition> partitions, short clientTransactionVersion)
    {
        if (string.IsNullOrEmpty(id)) return ErrorCodes.InvalidRequest;
        var error = _states.TryGet(id, out var shard, out var txn);
        if (error != ErrorCodes.None) return error;
        if (txn is null) return ErrorCodes.InvalidProducerIdMapping;
        TxnTransit transit;
        lock (txn.Gate)
        {
            if (txn.ProducerId != producerId) return ErrorCodes.InvalidProducerIdMapping;
            if (txn.ProducerEpoch != producerEpoch) return ErrorCodes.ProducerFenced;
            if (txn.PendingTransitionInProgress || txn.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort) return ErrorCodes.ConcurrentTransactions;
            // Already in the ongoing transaction: nothing to write.
            if (txn.State == TransactionState.Ongoing && partitions.All(txn.Partitions.Contains)) return ErrorCodes.None;
            transit = txn.PrepareAddPartitions(partitions, _states.NowMs, clientTransactionVersion);
        }
        return await _states.AppendAsync(id, shard!.CoordinatorEpoch, transit).ConfigureAwait(false);
    }

    /// <summary>
    /// Kafka's handleVerifyPartitionsInTransaction (KIP-890 part 1): each partition in the
    /// ongoing transaction is NONE, the others TRANSACTION_ABORTABLE; a wrong producer is
    /// INVALID_PRODUCER_ID_MAPPING or PRODUCER_FENCED, a completing transaction CONCURRENT_TRANSACTIONS.
    /// </summary>
    public List<(TopicPartition Partition, short Error)> Verify(string id, long producerId, short producerEpoch, IReadOnlyCollection<TopicPartition> partitions)
    {
        List<(TopicPartition, short)> All(short error) => [.. partitions.Select(p => (p, error))];
        if (string.IsNullOrEmpty(id)) return All(ErrorCodes.InvalidRequest);
        var error = _states.TryGet(id, out _, out var txn);
        if (error != ErrorCodes.None) return All(error);
        if (txn is null) return All(ErrorCodes.InvalidProducerIdMapping);
        lock (txn.Gate)
        {
            if (txn.ProducerId != producerId) return All(ErrorCodes.InvalidProducerIdMapping);
            if (txn.ProducerEpoch != producerEpoch) return All(ErrorCodes.ProducerFenced);
            if (txn.State is TransactionState.PrepareCommit or TransactionState.PrepareAbort) return All(ErrorCodes.ConcurrentTransactions);
            return [.. partitions.Select(p => (p, txn.Partitions.Contains(p) ? ErrorCodes.None : ErrorCodes.TransactionAbortable))];
        }
    }

    /// <summary>AddOffsetsToTxn: adds the group's __consumer_offsets partition (its TxnOffsetCommit lands there).</summary>
    public async Task<AddOffsetsToTxnResponse> AddOffsetsToTxnAsync(AddOffsetsToTxnRequest request, short version)
    {
        var partition = new TopicPartition(OffsetsTopic.Name, OffsetsTopic.PartitionFor(request.GroupId, _offsetsPartitions()));
        var error = await AddAsync(request.TransactionalId, request.ProducerId, request.ProducerEpoch, [partition], clientTransactionVersion: 0).ConfigureAwait(false);
        return new AddOffsetsToTxnResponse { ErrorCode = version < 2 && error == ErrorCodes.ProducerFenced ? ErrorCodes.InvalidProducerEpoch : error };
    }

    // ---------------------------------------------------------------- DescribeTransactions / ListTransactions

    /// <summary>Kafka's handleDescribeTransactions for each id (the gateway sends each id to its coordinator).</summary>
    public DescribeTransactionsResponse DescribeTransactions(DescribeTransactionsRequest request)
    {
        var response = new DescribeTransactionsResponse();
        foreach (var id in request.TransactionalIds)
        {
            var state = new DescribeTransactionsResponse.TransactionState { TransactionalId = id, TransactionStateValue = "" };
            response.TransactionStates.Add(state);
            if (id.Length == 0)
            {
                state.ErrorCode = ErrorCodes.InvalidRequest;
                continue;
            }
            var error = _states.TryGet(id, out _, out var txn);
            if (error != ErrorCodes.None)
            {
                state.ErrorCode = error;
                continue;
            }
            if (txn is null)
            {
                state.ErrorCode = ErrorCodes.TransactionalIdNotFound;
                continue;
            }
            lock (txn.Gate)
            {
                // An id being expired is gone already for clients.
                if (txn.State == TransactionState.Dead)
                {
                    state.ErrorCode = ErrorCodes.TransactionalIdNotFound;
                    continue;
                }
                state.ProducerId = txn.ProducerId;
                state.ProducerEpoch = txn.ProducerEpoch;
                state.TransactionStateValue = TransactionStates.Name(txn.State);
                state.TransactionTimeoutMs = txn.TimeoutMs;
                state.TransactionStartTimeMs = txn.StartTimestampMs;
                foreach (var g in txn.Partitions.GroupBy(p => p.Topic, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
                    state.Topics.Add(new DescribeTransactionsResponse.TopicData { Topic = g.Key, Partitions = [.. g.Select(p => p.Partition).Order()] });
            }
        }
        return response;
    }

    /// <summary>
    /// Kafka's listTransactionStates over the ids this broker coordinates: filters by state
    /// names (unknown names are listed back), producer ids, and (v1) transactions running longer
    /// than duration_filter ms. COORDINATOR_LOAD_IN_PROGRESS while a partition loads.
    /// </summary>
    public ListTransactionsResponse ListTransactions(ListTransactionsRequest request)
    {
        var response = new ListTransactionsResponse();
        if (_states.AnyLoading)
        {
            response.ErrorCode = ErrorCodes.CoordinatorLoadInProgress;
            return response;
        }
        var states = new HashSet<TransactionState>();
        foreach (var name in request.StateFilters)
        {
            if (TransactionStates.TryParse(name, out var state)) states.Add(state);
            else response.UnknownStateFilters.Add(name);
        }
        var producerIds = request.ProducerIdFilters.ToHashSet();
        var now = _states.NowMs;
        foreach (var shard in _states.LoadedShards)
            foreach (var txn in shard.Ids.Values)
                lock (txn.Gate)
                {
                    if (txn.State == TransactionState.Dead) continue;
                    if (producerIds.Count > 0 && !producerIds.Contains(txn.ProducerId)) continue;
                    if (request.StateFilters.Count > 0 && !states.Contains(txn.State)) continue;
                    if (request.DurationFilter >= 0 && now - txn.StartTimestampMs <= request.DurationFilter) continue;
                    response.TransactionStates.Add(new ListTransactionsResponse.TransactionState
                    {
                        TransactionalId = txn.TransactionalId, ProducerId = txn.ProducerId, TransactionStateValue = TransactionStates.Name(txn.State),
                    });
                }
        return response;
    }
}
