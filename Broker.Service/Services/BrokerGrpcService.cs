using System.Buffers;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Options;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Groups;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Broker;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Records;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Services;

/// <summary>
/// The broker's data plane. Leadership and topic existence come from the newest metadata the
/// <see cref="MetadataWatcher"/> applied; data from the <see cref="LogManager"/>.
/// </summary>
public sealed class BrokerGrpcService : BrokerService.BrokerServiceBase
{
    private const short InvalidRequiredAcks = 21;
    private readonly LogManager _logs;
    private readonly MetadataWatcher _metadata;
    private readonly BrokerOptions _options;
    private readonly TimeProvider _time;
    private readonly BrokerMetrics _metrics;
    private readonly DecompressionMemory _decompression;

    private readonly CancellationToken _stopping;

    /// <param name="lifetime">Ends the WatchAppends streams when the broker stops (else shutdown would wait on them).</param>
    /// <param name="decompression">The broker's one budget for decompressed records being validated (default: the process's).</param>
    public BrokerGrpcService(LogManager logs, MetadataWatcher metadata, IOptions<BrokerOptions> options, TimeProvider time, BrokerMetrics metrics,
        IHostApplicationLifetime? lifetime = null, DecompressionMemory? decompression = null)
    {
        _decompression = decompression ?? DecompressionMemory.Default;
        _stopping = lifetime?.ApplicationStopping ?? CancellationToken.None;
        _logs = logs;
        _metadata = metadata;
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

    /// <summary>
    /// High-watermark advances of the partitions this broker leads, for as long as the gateway
    /// holds the stream (see <see cref="AppendWatchers"/>); leadership is checked against the
    /// metadata current when a message is written.
    /// </summary>
    public override async Task WatchAppends(WatchAppendsRequest request, IServerStreamWriter<AppendNotices> responseStream, ServerCallContext context)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, _stopping);
        await _logs.AppendWatchers.RunAsync(Leads, responseStream.WriteAsync, cts.Token).ConfigureAwait(false);
    }

    /// <summary>Whether the current metadata has this broker as the partition's leader.</summary>
    internal bool Leads(TopicPartition tp)
        => _metadata.Current.TryGetPartition(tp.Topic, tp.Partition, out _, out var partition) && partition.Leader == _options.BrokerId;

    /// <summary>
    /// Appends each partition's batches; different partitions in parallel, one partition's
    /// appends serialized by its log. Answers only once the data is written (acks 1 and -1
    /// alike while there is one replica; acks 0 callers simply ignore the answer).
    /// </summary>
    public async Task<ProduceResponse> ProduceAsync(ProduceRequest request, CancellationToken cancellationToken)
    {
        _metrics.ProduceRequests.Add(1);
        var response = new ProduceResponse();
        if (request.Acks is not (0 or 1 or -1))
        {
            foreach (var p in request.Partitions)
                response.Results.Add(new PartitionProduceResult { Topic = p.Topic, Partition = p.Partition, ErrorCode = InvalidRequiredAcks, ErrorMessage = $"acks must be 0, 1 or -1, not {request.Acks}.", BaseOffset = -1, LogAppendTimeMs = -1, LogStartOffset = -1 });
            return response;
        }
        var metadata = _metadata.Current;
        PartitionProduceResult[] results;
        if (request.Partitions.Count == 1)
            results = [ProducePartition(metadata, request.Partitions[0])];
        else
            // Appends are synchronous file writes: run partitions on the pool side by side. No
            // cancellation token: once started, every partition is attempted, so a caller that
            // gives up does not leave an arbitrary subset unwritten.
            results = await Task.WhenAll(request.Partitions.Select(p => Task.Run(() => ProducePartition(metadata, p), CancellationToken.None))).ConfigureAwait(false);
        response.Results.AddRange(results);
        return response;
    }

    /// <summary>
    /// The pipelined produce stream: one message at a time, in the order the caller wrote them.
    /// Every partition of a message is appended (or refused) before the next message is read,
    /// which is what keeps per-partition append order equal to the caller's order; the answer
    /// goes back right after. Partitions of one message are appended one after the other on this
    /// call's task (appends are page-cache writes; the parallelism comes from the many streams
    /// and connections, not from a Task.Run per partition). A caller that goes away ends the
    /// loop between messages, never inside one. Each message's pooled record buffers go back to
    /// their pool right after its appends (the log copies the bytes to the file synchronously and
    /// keeps no reference), before the answer is written. Served by <see cref="ProduceStreamGrpcService"/>.
    /// </summary>
    public async Task ProduceStreamAsync(IAsyncStreamReader<PooledProduceStreamRequest> requests, IAsyncStreamWriter<ProduceStreamResponse> responses,
        CancellationToken cancellationToken)
    {
        while (await requests.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            ProduceStreamResponse answer;
            using (var message = requests.Current)
                answer = new ProduceStreamResponse { RequestId = message.RequestId, Response = ProduceInOrder(message.Request) };
            await responses.WriteAsync(answer).ConfigureAwait(false);
        }
    }

    /// <summary>Appends the request's partitions one after the other, results in request order.</summary>
    public ProduceResponse ProduceInOrder(ProduceRequest request)
    {
        _metrics.ProduceRequests.Add(1);
        var response = new ProduceResponse();
        if (request.Acks is not (0 or 1 or -1))
        {
            foreach (var p in request.Partitions)
                response.Results.Add(new PartitionProduceResult { Topic = p.Topic, Partition = p.Partition, ErrorCode = InvalidRequiredAcks, ErrorMessage = $"acks must be 0, 1 or -1, not {request.Acks}.", BaseOffset = -1, LogAppendTimeMs = -1, LogStartOffset = -1 });
            return response;
        }
        var metadata = _metadata.Current;
        foreach (var p in request.Partitions) response.Results.Add(ProducePartition(metadata, p));
        return response;
    }

    private PartitionProduceResult ProducePartition(ClusterMetadata metadata, PartitionProduce p)
    {
        var result = new PartitionProduceResult { Topic = p.Topic, Partition = p.Partition, BaseOffset = -1, LogAppendTimeMs = -1, LogStartOffset = -1 };
        if (InternalTopics.IsInternal(p.Topic))
        {
            // Kafka's ReplicaManager: clients never append to internal topics (checked before
            // leadership, as there). The group coordinator appends to its partitions directly.
            result.ErrorCode = ErrorCodes.InvalidTopicException;
            result.ErrorMessage = $"Cannot append to internal topic {p.Topic}";
            return result;
        }
        var (log, error) = LeaderLog(metadata, p.Topic, p.Partition, -1);
        if (log is null)
        {
            result.ErrorCode = error;
            return result;
        }
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
            return result;
        }
        LogAppendResult appended;
        try
        {
            appended = log.Append(p.Records.Memory, crcVerified: true);
        }
        catch (IOException ex)
        {
            result.ErrorCode = ErrorCodes.KafkaStorageError;
            result.ErrorMessage = ex.Message;
            return result;
        }
        result.ErrorCode = appended.ErrorCode;
        if (appended.ErrorMessage is not null) result.ErrorMessage = appended.ErrorMessage;
        result.BaseOffset = appended.FirstOffset;
        result.LogAppendTimeMs = appended.LogAppendTimeMs;
        result.LogStartOffset = appended.LogStartOffset;
        if (appended.ErrorCode == ErrorCodes.None) _metrics.BytesIn.Add(appended.Bytes);
        return result;
    }

    /// <summary>
    /// The log of a partition this broker leads, or the Kafka error saying why not. A
    /// <paramref name="currentLeaderEpoch"/> other than -1 must match the metadata's epoch.
    /// </summary>
    private (PartitionLog? Log, short Error) LeaderLog(ClusterMetadata metadata, string topic, int partition, int currentLeaderEpoch)
    {
        if (!metadata.TryGetPartition(topic, partition, out var topicInfo, out var partitionInfo))
            return (null, ErrorCodes.UnknownTopicOrPartition);
        if (currentLeaderEpoch != -1 && currentLeaderEpoch < partitionInfo.LeaderEpoch) return (null, ErrorCodes.FencedLeaderEpoch);
        if (currentLeaderEpoch != -1 && currentLeaderEpoch > partitionInfo.LeaderEpoch) return (null, ErrorCodes.UnknownLeaderEpoch);
        if (partitionInfo.Leader != _options.BrokerId) return (null, ErrorCodes.NotLeaderOrFollower);
        try
        {
            return (_logs.GetOrCreate(metadata, topicInfo, partitionInfo), ErrorCodes.None);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            return (null, ErrorCodes.KafkaStorageError);
        }
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
        var metadata = _metadata.Current;
        var response = new FetchResponse();
        long remainingBytes = request.MaxBytes > 0 ? Math.Min(request.MaxBytes, _options.FetchResponseBytesMax) : _options.FetchResponseBytesMax;
        long total = 0;
        var anyError = false;
        var minOneBatch = true; // KIP-74: the first partition with data returns a batch even above the limits
        foreach (var p in request.Partitions)
        {
            var result = new PartitionFetchResult { Topic = p.Topic, Partition = p.Partition, HighWatermark = -1, LastStableOffset = -1, LogStartOffset = -1 };
            response.Results.Add(result);
            var (log, error) = LeaderLog(metadata, p.Topic, p.Partition, p.CurrentLeaderEpoch);
            if (log is null)
            {
                result.ErrorCode = error;
                anyError = true;
                continue;
            }
            // Taken before the read: an append racing the read still wakes the wait.
            signals.Add(log.AppendedSignal);
            var limit = (int)Math.Min(Math.Max(p.PartitionMaxBytes, 0), remainingBytes);
            // Followers (replication, later) read up to the log end; consumers up to the high watermark.
            var read = log.Read(p.FetchOffset, limit, minOneBatch, request.ReplicaId >= 0 ? log.LogEndOffset : -1);
            result.ErrorCode = read.ErrorCode;
            result.HighWatermark = read.HighWatermark;
            // No transactions yet: nothing is pending, so the last stable offset is the high watermark.
            result.LastStableOffset = read.HighWatermark;
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
        var metadata = _metadata.Current;
        var response = new ListOffsetsResponse();
        foreach (var p in request.Partitions)
        {
            var result = new PartitionListOffsetsResult { Topic = p.Topic, Partition = p.Partition, Offset = -1, Timestamp = -1, LeaderEpoch = -1 };
            response.Results.Add(result);
            var (log, error) = LeaderLog(metadata, p.Topic, p.Partition, p.CurrentLeaderEpoch);
            if (log is null)
            {
                result.ErrorCode = error;
                continue;
            }
            var found = log.LookupOffset(p.Timestamp);
            result.Offset = found.Offset;
            result.Timestamp = found.Timestamp;
            result.LeaderEpoch = metadata.TryGetPartition(p.Topic, p.Partition, out _, out var info) ? info.LeaderEpoch : -1;
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
        var metadata = _metadata.Current;
        var response = new DeleteRecordsResponse();
        foreach (var p in request.Partitions)
        {
            var result = new PartitionDeleteRecordsResult { Topic = p.Topic, Partition = p.Partition, LowWatermark = -1 };
            response.Results.Add(result);
            var (log, error) = LeaderLog(metadata, p.Topic, p.Partition, -1);
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
