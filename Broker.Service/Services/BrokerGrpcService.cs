using System.Buffers;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Options;
using StreamPlatform.Broker.Groups;
using StreamPlatform.Broker.Replication;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Broker.Transactions;
using StreamPlatform.Protos.Groups;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Broker;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Groups;
using KafkaMessages = StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.Protos.Records;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Services;

/// <summary>
/// The broker's data plane, a thin adapter over the <see cref="ReplicaManager"/>: leadership
/// (and the leader epoch callers believe in) is checked on the partition this broker hosts;
/// produce appends through <see cref="Partition.AppendAsLeader"/> and, for acks=-1, waits for the
/// commit; fetch reads the leader's log below the high watermark.
/// </summary>
public sealed class BrokerGrpcService : BrokerService.BrokerServiceBase
{
    private const short InvalidRequiredAcks = 21;
    /// <summary>
    /// Requests of one produce stream appended and waiting for their commit (acks=-1) at once;
    /// at the limit the stream reads no further message until one is answered. The gateway sends
    /// at most <c>BrokerProduceStream.OutstandingRequestsMax</c> (128) unanswered requests per
    /// stream, so this only bounds other callers.
    /// </summary>
    public const int StreamWaitingRequestsMax = 1024;
    private readonly LogManager _logs;
    private readonly ReplicaManager _replicas;
    private readonly BrokerOptions _options;
    private readonly TimeProvider _time;
    private readonly BrokerMetrics _metrics;
    private readonly DecompressionMemory _decompression;
    private readonly ITransactionVerifier? _verifier;
    private readonly TransactionMarkerWriter _markers;

    private readonly CancellationToken _stopping;

    /// <param name="lifetime">Ends the WatchAppends streams when the broker stops (else shutdown would wait on them).</param>
    /// <param name="decompression">The broker's one budget for decompressed records being validated (default: the process's).</param>
    /// <param name="verifier">KIP-890 verification of a transaction's first batch on a partition (null: none registered, no verification).</param>
    /// <param name="markers">WriteTxnMarkers (default: one without marker observers).</param>
    public BrokerGrpcService(LogManager logs, ReplicaManager replicas, IOptions<BrokerOptions> options, TimeProvider time, BrokerMetrics metrics,
        IHostApplicationLifetime? lifetime = null, DecompressionMemory? decompression = null, ITransactionVerifier? verifier = null,
        TransactionMarkerWriter? markers = null)
    {
        _verifier = verifier;
        _markers = markers ?? new TransactionMarkerWriter(replicas, time, [], Microsoft.Extensions.Logging.Abstractions.NullLogger<TransactionMarkerWriter>.Instance);
        _decompression = decompression ?? DecompressionMemory.Default;
        _stopping = lifetime?.ApplicationStopping ?? CancellationToken.None;
        _logs = logs;
        _replicas = replicas;
        _options = options.Value;
        _time = time;
        _metrics = metrics;
    }

    public override Task<ProduceResponse> Produce(ProduceRequest request, ServerCallContext context) => ProduceAsync(request, context.CancellationToken);
    public override Task<FetchResponse> Fetch(FetchRequest request, ServerCallContext context)
    {
        // The records are read into rented buffers that go back to the pool once the response
        // has been written: Kestrel disposes what is registered here after the response ends
        // (sent or aborted), i.e. after gRPC serialized the message, never while it can be read.
        var buffers = new FetchBuffers(ArrayPool<byte>.Shared);
        context.GetHttpContext().Response.RegisterForDispose(buffers);
        return FetchAsync(request, context.CancellationToken, buffers);
    }
    public override Task<ListOffsetsResponse> ListOffsets(ListOffsetsRequest request, ServerCallContext context) => Task.FromResult(ListOffsets(request));
    public override Task<DescribeLogDirsResponse> DescribeLogDirs(DescribeLogDirsRequest request, ServerCallContext context) => Task.FromResult(DescribeLogDirs(request));
    public override Task<DeleteRecordsResponse> DeleteRecords(DeleteRecordsRequest request, ServerCallContext context) => Task.FromResult(DeleteRecords(request));

    /// <summary>WriteTxnMarkers (Kafka body at api_version): see <see cref="TransactionMarkerWriter"/>.</summary>
    public override async Task<KafkaGroupResponse> WriteTxnMarkers(KafkaGroupRequest request, ServerCallContext context)
    {
        var (r, v) = GroupCoordinatorGrpcService.Decode<KafkaMessages.WriteTxnMarkersRequest>(request);
        return GroupCoordinatorGrpcService.Encode(await _markers.WriteAsync(r, context.CancellationToken).ConfigureAwait(false), v);
    }

    /// <summary>DescribeProducers (Kafka body at api_version): see <see cref="ProducerDescriber"/>.</summary>
    public override Task<KafkaGroupResponse> DescribeProducers(KafkaGroupRequest request, ServerCallContext context)
    {
        var (r, v) = GroupCoordinatorGrpcService.Decode<KafkaMessages.DescribeProducersRequest>(request);
        return Task.FromResult(GroupCoordinatorGrpcService.Encode(ProducerDescriber.Describe(_replicas, r), v));
    }

    /// <summary>
    /// High-watermark advances of the partitions this broker leads, for as long as the gateway
    /// holds the stream (see <see cref="AppendWatchers"/>); leadership is checked against the
    /// partition's role when a message is written.
    /// </summary>
    public override async Task WatchAppends(WatchAppendsRequest request, IServerStreamWriter<AppendNotices> responseStream, ServerCallContext context)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, _stopping);
        await _logs.AppendWatchers.RunAsync(Leads, responseStream.WriteAsync, cts.Token).ConfigureAwait(false);
    }

    /// <summary>Whether this broker leads the partition now.</summary>
    internal bool Leads(TopicPartition tp) => _replicas.TryGetPartition(tp, out var p) && p.Role == ReplicaRole.Leader;

    /// <summary>
    /// Appends each partition's batches (different partitions in parallel, one partition's
    /// appends serialized by its log), then, for acks=-1, waits until every appended partition
    /// committed (or failed: REQUEST_TIMED_OUT after timeout_ms, NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    /// NOT_LEADER_OR_FOLLOWER). acks 0 and 1 are answered once appended.
    /// </summary>
    public async Task<ProduceResponse> ProduceAsync(ProduceRequest request, CancellationToken cancellationToken)
    {
        _metrics.ProduceRequests.Add(1);
        if (InvalidAcks(request) is { } refused) return refused;
        var staged = new StagedProduce(request, _time, cancellationToken);
        var span = BrokerTracing.StartAppend(request, headerContextAllowed: true);
        if (request.Partitions.Count == 1)
            await ProducePartitionAsync(staged, 0, cancellationToken).ConfigureAwait(false);
        else
            // Appends are synchronous file writes: run partitions on the pool side by side. No
            // cancellation token: once started, every partition is attempted, so a caller that
            // gives up does not leave an arbitrary subset unwritten.
            await Task.WhenAll(Enumerable.Range(0, request.Partitions.Count)
                .Select(i => Task.Run(() => ProducePartitionAsync(staged, i, cancellationToken).AsTask(), CancellationToken.None))).ConfigureAwait(false);
        EndAppendSpan(staged, span);
        return await staged.CompleteAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// The pipelined produce stream: one message at a time, in the order the caller wrote them.
    /// Every partition of a message is appended (or refused) before the next message is read,
    /// which is what keeps per-partition append order equal to the caller's order. The answer
    /// goes back once all its partitions are done: at once for acks 0/1, when committed for
    /// acks=-1, so answers may leave out of order (the gateway matches them by request_id) and a
    /// slow follower of one partition holds up only the requests that wrote to it. At most
    /// <see cref="StreamWaitingRequestsMax"/> requests wait for their commit at once. A message
    /// whose transactional batch must first be verified with its transaction coordinator
    /// (KIP-890, see <see cref="ProducePartitionAsync"/>) holds the stream until the answer:
    /// that wait is what keeps later messages behind it in order. Writes to
    /// the response stream are serialized; the call ends once every answer was written (or the
    /// caller went away). Each message's pooled record buffers go back to their pool right after
    /// its appends (the log copies the bytes synchronously and keeps no reference). Served by
    /// <see cref="ProduceStreamGrpcService"/>.
    /// </summary>
    public async Task ProduceStreamAsync(IAsyncStreamReader<PooledProduceStreamRequest> requests, IAsyncStreamWriter<ProduceStreamResponse> responses,
        CancellationToken cancellationToken)
    {
        using var writeLock = new SemaphoreSlim(1, 1);
        using var waitingSlots = new SemaphoreSlim(StreamWaitingRequestsMax, StreamWaitingRequestsMax);
        var waiting = new List<Task>();
        try
        {
            while (await requests.MoveNext(cancellationToken).ConfigureAwait(false))
            {
                StagedProduce staged;
                long requestId;
                using (var message = requests.Current)
                {
                    requestId = message.RequestId;
                    staged = await ProduceInOrderStagedAsync(message.Request, cancellationToken).ConfigureAwait(false);
                }
                if (staged.Committed)
                {
                    await WriteSerializedAsync(responses, writeLock, new ProduceStreamResponse { RequestId = requestId, Response = staged.Response }).ConfigureAwait(false);
                    continue;
                }
                await waitingSlots.WaitAsync(cancellationToken).ConfigureAwait(false);
                waiting.RemoveAll(t => t.IsCompleted);
                waiting.Add(AnswerWhenCommittedAsync(staged, requestId, responses, writeLock, waitingSlots));
            }
        }
        finally
        {
            // Writes after the call returned would fail: every waiting answer goes out first (its
            // waits end at the latest with its timeout_ms, or at once when the caller is gone).
            await Task.WhenAll(waiting).ConfigureAwait(false);
        }
    }

    private static async Task AnswerWhenCommittedAsync(StagedProduce staged, long requestId, IAsyncStreamWriter<ProduceStreamResponse> responses,
        SemaphoreSlim writeLock, SemaphoreSlim waitingSlots)
    {
        try
        {
            var response = await staged.CompleteAsync().ConfigureAwait(false);
            await WriteSerializedAsync(responses, writeLock, new ProduceStreamResponse { RequestId = requestId, Response = response }).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or OperationCanceledException or RpcException)
        {
            // The caller went away: nobody reads the answer. The records stay appended (the
            // gateway reports the stream's failure for every request it did not answer).
        }
        finally
        {
            waitingSlots.Release();
        }
    }

    private static async Task WriteSerializedAsync(IAsyncStreamWriter<ProduceStreamResponse> responses, SemaphoreSlim writeLock, ProduceStreamResponse answer)
    {
        await writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            await responses.WriteAsync(answer).ConfigureAwait(false);
        }
        finally
        {
            writeLock.Release();
        }
    }

    /// <summary>Appends the request's partitions one after the other and waits for their commit (acks=-1); results in request order.</summary>
    public async Task<ProduceResponse> ProduceInOrderAsync(ProduceRequest request, CancellationToken cancellationToken = default)
        => await (await ProduceInOrderStagedAsync(request, cancellationToken).ConfigureAwait(false)).CompleteAsync().ConfigureAwait(false);

    private async ValueTask<StagedProduce> ProduceInOrderStagedAsync(ProduceRequest request, CancellationToken cancellationToken)
    {
        _metrics.ProduceRequests.Add(1);
        if (InvalidAcks(request) is { } refused) return StagedProduce.Answered(refused);
        var staged = new StagedProduce(request, _time, cancellationToken);
        // Not the stream call's own span: a request without a traceparent gets none.
        var span = BrokerTracing.StartAppend(request, headerContextAllowed: false);
        for (var i = 0; i < request.Partitions.Count; i++) await ProducePartitionAsync(staged, i, cancellationToken).ConfigureAwait(false);
        EndAppendSpan(staged, span);
        return staged;
    }

    /// <summary>Ends the append span; an acks=-1 request still waiting for its followers gets its replicate span.</summary>
    private static void EndAppendSpan(StagedProduce staged, System.Diagnostics.Activity? span)
    {
        if (span is null) return;
        BrokerTracing.AppendDone(span, staged.Results);
        if (!staged.Committed) staged.ReplicateSpan = BrokerTracing.StartReplicate(span);
    }

    private static ProduceResponse? InvalidAcks(ProduceRequest request)
    {
        if (request.Acks is 0 or 1 or -1) return null;
        var response = new ProduceResponse();
        foreach (var p in request.Partitions)
            response.Results.Add(new PartitionProduceResult { Topic = p.Topic, Partition = p.Partition, ErrorCode = InvalidRequiredAcks, ErrorMessage = $"acks must be 0, 1 or -1, not {request.Acks}.", BaseOffset = -1, LogAppendTimeMs = -1, LogStartOffset = -1 });
        return response;
    }

    /// <summary>
    /// One partition of a produce: leadership, Kafka's record validation, then (KIP-890) the
    /// verification of a transactional batch that would start its producer's transaction here,
    /// then the append. Synchronous unless a verification is awaited.
    /// </summary>
    private async ValueTask ProducePartitionAsync(StagedProduce staged, int index, CancellationToken cancellationToken)
    {
        var p = staged.Request.Partitions[index];
        var result = new PartitionProduceResult { Topic = p.Topic, Partition = p.Partition, BaseOffset = -1, LogAppendTimeMs = -1, LogStartOffset = -1 };
        staged.Set(index, result, null);
        if (InternalTopics.IsInternal(p.Topic))
        {
            // Kafka's ReplicaManager: clients never append to internal topics (checked before
            // leadership, as there). The group coordinator appends through the ReplicaManager.
            result.ErrorCode = ErrorCodes.InvalidTopicException;
            result.ErrorMessage = $"Cannot append to internal topic {p.Topic}";
            return;
        }
        var (partition, error) = _replicas.LeaderPartition(p.Topic, p.Partition, -1);
        if (partition is null)
        {
            result.ErrorCode = error;
            return;
        }
        var log = partition.Log;
        // Kafka's produce validation (one batch per partition for produce v3+, record-level
        // checks including decompression, keys on compacted topics, timestamp bounds), before
        // anything touches the log. The batch header is then set as Kafka's LogValidator sets
        // it (max timestamp from the records, CreateTime), in place: the records are this
        // request's own copy (a pooled array on the stream path, the parsed message otherwise).
        var config = log.Config;
        var validation = RecordBatchValidator.ValidateAndRewrite(MemoryMarshal.AsMemory(p.Records.Memory).Span, new RecordBatchValidationOptions
        {
            MaxMessageBytes = config.MaxMessageBytes,
            RequireKeys = config.Compacted,
            TimestampType = config.LogAppendTime ? TimestampType.LogAppendTime : TimestampType.CreateTime,
            TimestampBeforeMaxMs = config.TimestampBeforeMaxMs == long.MaxValue ? null : config.TimestampBeforeMaxMs,
            TimestampAfterMaxMs = config.TimestampAfterMaxMs == long.MaxValue ? null : config.TimestampAfterMaxMs,
            TimeProvider = _time,
            DecompressionPool = _decompression,
        });
        if (!validation.IsValid)
        {
            result.ErrorCode = validation.ErrorCode;
            if (validation.Message is not null) result.ErrorMessage = validation.Message;
            if (validation.RecordErrors is { } recordErrors)
                foreach (var e in recordErrors) result.RecordErrors.Add(new RecordError { BatchIndex = e.BatchIndex, Message = e.Message });
            return;
        }
        TransactionVerificationGuard? verification = null;
        if (_verifier is not null && staged.Request.TransactionalId.Length > 0)
        {
            (var verifyError, verification) = await TransactionVerification.VerifyAsync(_verifier, staged.Request, partition, p.Records.Span, cancellationToken).ConfigureAwait(false);
            if (verifyError != ErrorCodes.None)
            {
                result.ErrorCode = verifyError;
                result.ErrorMessage = TransactionVerification.Describe(verifyError);
                return;
            }
        }
        LeaderAppendResult leaderAppend;
        try
        {
            leaderAppend = partition.AppendAsLeader(p.Records.Memory, staged.Request.Acks, staged.CommitTimeout, crcVerified: true, verification: verification);
        }
        catch (IOException ex)
        {
            result.ErrorCode = ErrorCodes.KafkaStorageError;
            result.ErrorMessage = ex.Message;
            return;
        }
        var appended = leaderAppend.Append;
        result.ErrorCode = appended.ErrorCode;
        if (appended.ErrorMessage is not null) result.ErrorMessage = appended.ErrorMessage;
        result.BaseOffset = appended.FirstOffset;
        result.LogAppendTimeMs = appended.LogAppendTimeMs;
        result.LogStartOffset = appended.LogStartOffset;
        if (appended.ErrorCode == ErrorCodes.None) _metrics.BytesIn.Add(appended.Bytes);
        staged.Set(index, result, leaderAppend.Commit);
    }

    /// <summary>
    /// The log of a partition this broker leads, or the Kafka error saying why not (see
    /// <see cref="ReplicaManager.LeaderPartition"/>).
    /// </summary>
    private (PartitionLog? Log, short Error) LeaderLog(string topic, int partition, int currentLeaderEpoch)
    {
        var (p, error) = _replicas.LeaderPartition(topic, partition, currentLeaderEpoch);
        return (p?.Log, error);
    }

    /// <summary>
    /// Long-polling fetch: answers at once when an error occurs or min_bytes are available,
    /// else waits for an append to any requested partition (its log's signal, no polling) or
    /// for max_wait_ms, whichever comes first, and reads again. A long poll cancelled by the
    /// caller ends with an empty response, not an exception: the gateway cancels long polls
    /// routinely (another broker answered first) and nobody receives that response.
    /// </summary>
    /// <param name="buffers">
    /// Where the records are read into; the caller returns them once the response is no longer
    /// read (after it was serialized). Null: each partition's records get their own array.
    /// </param>
    public async Task<FetchResponse> FetchAsync(FetchRequest request, CancellationToken cancellationToken, FetchBuffers? buffers = null)
    {
        _metrics.FetchRequests.Add(1);
        var maxWaitMs = Math.Clamp(request.MaxWaitMs, 0, _options.FetchMaxWaitMsLimit);
        var started = _time.GetTimestamp();
        while (true)
        {
            var signals = new List<Task>(request.Partitions.Count);
            var (response, bytes, anyError) = ReadOnce(request, signals, buffers);
            var remaining = TimeSpan.FromMilliseconds(maxWaitMs) - _time.GetElapsedTime(started);
            if (bytes >= request.MinBytes || anyError || signals.Count == 0 || remaining <= TimeSpan.Zero)
            {
                _metrics.BytesOut.Add(bytes);
                return response;
            }
            // Too little data: this response is dropped, its buffers are free again.
            buffers?.ReturnAll();
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var timeout = Task.Delay(remaining, _time, wait.Token);
            await Task.WhenAny(Task.WhenAny(signals), timeout).ConfigureAwait(false);
            wait.Cancel(); // stops the timer when an append woke us
            if (cancellationToken.IsCancellationRequested)
            {
                // Routine (see the summary): no exception, no log. gRPC does not send a response
                // to a cancelled call, so its content does not matter.
                return new FetchResponse();
            }
        }
    }

    private (FetchResponse Response, long Bytes, bool AnyError) ReadOnce(FetchRequest request, List<Task> signals, FetchBuffers? buffers)
    {
        var response = new FetchResponse();
        long remainingBytes = request.MaxBytes > 0 ? Math.Min(request.MaxBytes, _options.FetchResponseBytesMax) : _options.FetchResponseBytesMax;
        long total = 0;
        var anyError = false;
        var minOneBatch = true; // KIP-74: the first partition with data returns a batch even above the limits
        foreach (var p in request.Partitions)
        {
            var result = new PartitionFetchResult { Topic = p.Topic, Partition = p.Partition, HighWatermark = -1, LastStableOffset = -1, LogStartOffset = -1 };
            response.Results.Add(result);
            var (log, error) = LeaderLog(p.Topic, p.Partition, p.CurrentLeaderEpoch);
            if (log is null)
            {
                result.ErrorCode = error;
                anyError = true;
                continue;
            }
            // Taken before the read: an append racing the read still wakes the wait.
            signals.Add(log.AppendedSignal);
            var limit = (int)Math.Min(Math.Max(p.PartitionMaxBytes, 0), remainingBytes);
            // Before the read: its high watermark is then at least this one's (LSO <= HW in the answer).
            var lastStable = log.LastStableOffset;
            var readCommitted = request.IsolationLevel == ReadCommitted.IsolationLevel;
            // Consumers read up to the high watermark (read_committed: the last stable offset) only;
            // followers replicate over ReplicationService.
            var read = log.Read(p.FetchOffset, limit, minOneBatch, readCommitted ? lastStable : -1);
            result.ErrorCode = read.ErrorCode;
            result.HighWatermark = read.HighWatermark;
            result.LastStableOffset = lastStable;
            result.LogStartOffset = read.LogStartOffset;
            if (read.ErrorCode != ErrorCodes.None)
            {
                anyError = true;
                continue;
            }
            if (read.Length > 0)
            {
                try
                {
                    // One copy: file -> the buffer the response serializes from (wrapped, not copied).
                    if (buffers is null)
                    {
                        result.Records = UnsafeByteOperations.UnsafeWrap(read.ToArray());
                    }
                    else
                    {
                        var buffer = buffers.Rent(read.Length);
                        read.CopyTo(buffer);
                        result.Records = UnsafeByteOperations.UnsafeWrap(buffer.AsMemory(0, read.Length));
                    }
                    if (readCommitted) ReadCommitted.AddAbortedTransactions(result, log, p.FetchOffset, result.Records.Span);
                }
                catch (ObjectDisposedException)
                {
                    // The segment was closed meanwhile (log deleted or shut down).
                    result.ErrorCode = ErrorCodes.NotLeaderOrFollower;
                    anyError = true;
                    continue;
                }
                minOneBatch = false;
                remainingBytes -= read.Length;
                total += read.Length;
            }
        }
        return (response, total, anyError);
    }

    public ListOffsetsResponse ListOffsets(ListOffsetsRequest request)
    {
        var response = new ListOffsetsResponse();
        foreach (var p in request.Partitions)
        {
            var result = new PartitionListOffsetsResult { Topic = p.Topic, Partition = p.Partition, Offset = -1, Timestamp = -1, LeaderEpoch = -1 };
            response.Results.Add(result);
            var (partition, error) = _replicas.LeaderPartition(p.Topic, p.Partition, p.CurrentLeaderEpoch);
            if (partition is null)
            {
                result.ErrorCode = error;
                continue;
            }
            var found = partition.Log.LookupOffset(p.Timestamp);
            if (request.IsolationLevel == ReadCommitted.IsolationLevel && p.Timestamp is -1 or >= 0)
            {
                // Kafka: latest is the last stable offset; a timestamp's offset must lie below it.
                var lastStable = partition.Log.LastStableOffset;
                if (p.Timestamp == -1) found = new OffsetAndTimestamp(lastStable, -1);
                else if (found.Offset >= lastStable) found = OffsetAndTimestamp.None;
            }
            result.Offset = found.Offset;
            result.Timestamp = found.Timestamp;
            result.LeaderEpoch = partition.LeaderEpoch;
        }
        return response;
    }

    /// <summary>
    /// Kafka DeleteRecords: each partition's log start offset moves up to the given offset (-1:
    /// the high watermark) and the segments wholly below it are removed. Synchronous: the
    /// checkpoint is fsynced before the answer, so the new low watermark survives a crash.
    /// </summary>
    public DeleteRecordsResponse DeleteRecords(DeleteRecordsRequest request)
    {
        var response = new DeleteRecordsResponse();
        foreach (var p in request.Partitions)
        {
            var result = new PartitionDeleteRecordsResult { Topic = p.Topic, Partition = p.Partition, LowWatermark = -1 };
            response.Results.Add(result);
            var (log, error) = LeaderLog(p.Topic, p.Partition, -1);
            if (log is null)
            {
                result.ErrorCode = error;
                continue;
            }
            try
            {
                var deleted = log.DeleteRecordsBefore(p.Offset);
                result.ErrorCode = deleted.ErrorCode;
                result.LowWatermark = deleted.ErrorCode == ErrorCodes.None ? deleted.LowWatermark : -1;
            }
            catch (IOException)
            {
                result.ErrorCode = ErrorCodes.KafkaStorageError;
            }
        }
        return response;
    }

    public DescribeLogDirsResponse DescribeLogDirs(DescribeLogDirsRequest request)
    {
        var dir = new LogDir { Path = _logs.DataDir, TotalBytes = -1, UsableBytes = -1 };
        try
        {
            var drive = new DriveInfo(_logs.DataDir);
            dir.TotalBytes = drive.TotalSize;
            dir.UsableBytes = drive.AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or UnauthorizedAccessException)
        {
            // Sizes stay -1: Kafka's "unknown".
        }
        var topics = request.Topics.Count == 0 ? null : request.Topics.ToHashSet(StringComparer.Ordinal);
        foreach (var log in _logs.Logs.OrderBy(l => l.TopicPartition.Topic, StringComparer.Ordinal).ThenBy(l => l.TopicPartition.Partition))
        {
            if (topics is not null && !topics.Contains(log.TopicPartition.Topic)) continue;
            dir.Partitions.Add(new LogDirPartition
            {
                Topic = log.TopicPartition.Topic,
                Partition = log.TopicPartition.Partition,
                SizeBytes = log.SizeBytes,
                OffsetLag = 0, // only future (moving) replicas lag; there are none
            });
        }
        return new DescribeLogDirsResponse { Dirs = { dir } };
    }
}
