using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.Benchmarks.Perf;

/// <summary>
/// The smallest Kafka "broker" a producer can run against: it answers ApiVersions, Metadata
/// (itself as the only broker, leader of every partition of every topic asked for) and Produce
/// (success, increasing offsets) with our codec, and stores nothing. It also answers Fetch v4+
/// (always empty) because librdkafka only writes magic-2 record batches when the broker
/// advertises Produce v3+ *and* Fetch v4+ (its MsgVer2 feature); without Fetch it falls back to
/// magic-0 message sets and the ceiling would measure a different client. A Confluent.Kafka producer
/// against it measures the client's own ceiling on this machine: the cost of librdkafka plus one
/// cheap decode per request, no disk and no forwarding.
/// </summary>
public sealed class SinkKafkaServer : IAsyncDisposable
{
    public const int NodeId = 1;

    /// <summary>Kafka's socket.request.max.bytes: a larger frame closes the connection.</summary>
    public const int FrameBytesMax = 100 * 1024 * 1024;

    private readonly Socket _listener;
    private readonly int _partitions;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<string, TopicState> _topics = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Task, bool> _connections = new();
    private readonly Task _acceptLoop;
    private readonly long _fetchRecordsPerPartition;
    private readonly byte[] _template = [];
    private readonly int[] _templateBatchStarts = [];
    private readonly int _recordsPerBatch;
    private long _fetchedBytes;
    private long _records;
    private long _recordBytes;
    private long _requests;

    /// <param name="partitions">Partitions of every topic.</param>
    /// <param name="fetchRecordsPerPartition">0: fetches are always empty (producer ceiling). Otherwise every
    /// partition of every topic holds this many records (rounded up to whole 64-record batches) of <paramref name="fetchRecordBytes"/> bytes, served
    /// from one pre-built template (consumer ceiling): no disk, no log, just the wire.</param>
    public SinkKafkaServer(int partitions, long fetchRecordsPerPartition = 0, int fetchRecordBytes = 1024)
    {
        if (partitions is < 1 or > 10_000)
            throw new ArgumentOutOfRangeException(nameof(partitions), "1..10000 partitions per topic.");
        _partitions = partitions;
        if (fetchRecordsPerPartition > 0)
        {
            (_template, _templateBatchStarts, _recordsPerBatch) = BuildTemplate(fetchRecordBytes);
            // Whole batches only: the partition ends at a batch boundary, so no fetch runs past it.
            _fetchRecordsPerPartition = (fetchRecordsPerPartition + _recordsPerBatch - 1) / _recordsPerBatch * _recordsPerBatch;
        }
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(64);
        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    public int Port { get; }

    public string BootstrapServers => $"127.0.0.1:{Port}";

    /// <summary>Records acknowledged so far (counted from the batch headers).</summary>
    public long Records => Interlocked.Read(ref _records);

    /// <summary>Bytes of record batches received so far.</summary>
    public long RecordBytes => Interlocked.Read(ref _recordBytes);

    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Records each partition holds for consumers (the requested count rounded up to whole batches).</summary>
    public long FetchRecordsPerPartition => _fetchRecordsPerPartition;

    /// <summary>Record bytes served to consumers so far.</summary>
    public long FetchedBytes => Interlocked.Read(ref _fetchedBytes);

    /// <summary>
    /// About 1 MiB of batches (64 records each) with base offsets 0, 64, 128...: a fetch at offset o
    /// copies batches of it and rewrites their base offsets (outside the CRC) to o, o+64...
    /// </summary>
    private static (byte[] Template, int[] BatchStarts, int RecordsPerBatch) BuildTemplate(int recordBytes)
    {
        const int recordsPerBatch = 64;
        var batchCount = Math.Max(1, (1 << 20) / (recordsPerBatch * (recordBytes + 8)));
        var value = new byte[recordBytes];
        var random = new Random(7);
        using var output = new PooledBufferWriter(1 << 20);
        var starts = new int[batchCount];
        for (var b = 0; b < batchCount; b++)
        {
            starts[b] = output.WrittenCount;
            using var builder = new RecordBatchBuilder { BaseOffset = (long)b * recordsPerBatch };
            for (var r = 0; r < recordsPerBatch; r++)
            {
                for (var i = 0; i < value.Length; i++)
                    value[i] = (byte)('A' + random.Next(26));
                // Same timestamps in every batch, so every batch has the same size.
                builder.Append(1_700_000_000_000 + r, null, value);
            }
            builder.Build(output);
        }
        if (output.WrittenCount != starts.Length * (starts.Length > 1 ? starts[1] : output.WrittenCount))
            throw new InvalidOperationException("Template batches differ in size.");
        return (output.ToArray(), starts, recordsPerBatch);
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            client.NoDelay = true;
            var task = Task.Run(() => ServeAsync(client));
            _connections[task] = true;
            _ = task.ContinueWith(t => _connections.TryRemove(t, out _), TaskScheduler.Default);
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        using var _ = socket;
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var sizeBytes = new byte[4];
        var frame = ArrayPool<byte>.Shared.Rent(64 * 1024);
        var output = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                await stream.ReadExactlyAsync(sizeBytes, _stop.Token);
                var size = BinaryPrimitives.ReadInt32BigEndian(sizeBytes);
                if (size is < 8 or > FrameBytesMax)
                    return; // malformed: close, as a broker would
                if (frame.Length < size)
                {
                    ArrayPool<byte>.Shared.Return(frame);
                    frame = ArrayPool<byte>.Shared.Rent(size);
                }
                await stream.ReadExactlyAsync(frame.AsMemory(0, size), _stop.Token);
                Interlocked.Increment(ref _requests);
                var length = Handle(frame.AsMemory(0, size), ref output);
                if (length < 0)
                    return;
                if (length > 0)
                    await stream.WriteAsync(output.AsMemory(0, length), _stop.Token);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or EndOfStreamException
                                      or KafkaProtocolException or ObjectDisposedException)
        {
            // Client gone, server stopping, or malformed input: drop the connection.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frame);
            ArrayPool<byte>.Shared.Return(output);
        }
    }

    /// <summary>Returns the response frame length in <paramref name="output"/>; 0 = no response (acks=0); -1 = close.</summary>
    private int Handle(ReadOnlyMemory<byte> frame, ref byte[] output)
    {
        var reader = new KafkaReader(frame);
        var header = KafkaFrames.ReadRequestHeader(ref reader);
        var key = (ApiKey)header.RequestApiKey;
        var version = header.RequestApiVersion;
        IKafkaResponse response;
        switch (key)
        {
            case ApiKey.ApiVersions:
                if (version > ApiVersionsRequest.HighestSupportedVersion)
                {
                    // Kafka answers an unknown ApiVersions version with a v0 response and the error,
                    // so the client can retry with a version both sides know.
                    response = ApiVersions(ErrorCode.UnsupportedVersion);
                    version = 0;
                }
                else
                {
                    new ApiVersionsRequest().Read(ref reader, version);
                    response = ApiVersions(ErrorCode.None);
                }
                break;
            case ApiKey.Metadata when version <= MetadataRequest.HighestSupportedVersion:
                var metadata = new MetadataRequest();
                metadata.Read(ref reader, version);
                response = Metadata(metadata);
                break;
            case ApiKey.Produce when version is >= 3 and <= ProduceRequest.HighestSupportedVersion:
                var produce = new ProduceRequest();
                produce.Read(ref reader, version);
                var produced = Produce(produce);
                if (produce.Acks == 0)
                    return 0;
                response = produced;
                break;
            case ApiKey.Fetch when version is >= FetchVersionMin and <= FetchVersionMax:
                var fetch = new FetchRequest();
                fetch.Read(ref reader, version);
                if (_fetchRecordsPerPartition > 0)
                    return WriteDataFetch(fetch, version, header.CorrelationId, ref output);
                response = EmptyFetch(fetch);
                break;
            default:
                return -1; // never advertised: a well-behaved client does not send it
        }

        var size = KafkaFrames.ComputeResponseFrameSize(key, version, response);
        if (output.Length < size)
        {
            ArrayPool<byte>.Shared.Return(output);
            output = ArrayPool<byte>.Shared.Rent(size);
        }
        var writer = new KafkaWriter(output.AsSpan(0, size));
        KafkaFrames.WriteResponseFrame(ref writer, key, version, header.CorrelationId, response);
        return size;
    }

    private static ApiVersionsResponse ApiVersions(ErrorCode error)
    {
        var response = new ApiVersionsResponse { ErrorCode = (short)error };
        response.ApiKeys.Add(new ApiVersionsResponse.ApiVersion
        {
            ApiKey = (short)ApiKey.Produce, MinVersion = 3, MaxVersion = KafkaApis.HighestStableVersion(ApiKey.Produce),
        });
        response.ApiKeys.Add(new ApiVersionsResponse.ApiVersion
        {
            ApiKey = (short)ApiKey.Metadata, MinVersion = 0, MaxVersion = KafkaApis.HighestStableVersion(ApiKey.Metadata),
        });
        response.ApiKeys.Add(new ApiVersionsResponse.ApiVersion
        {
            ApiKey = (short)ApiKey.Fetch, MinVersion = FetchVersionMin, MaxVersion = FetchVersionMax,
        });
        response.ApiKeys.Add(new ApiVersionsResponse.ApiVersion
        {
            ApiKey = (short)ApiKey.ApiVersions, MinVersion = 0, MaxVersion = KafkaApis.HighestStableVersion(ApiKey.ApiVersions),
        });
        return response;
    }

    /// <summary>Fetch v4 (first with magic-2 batches) .. v12 (last with topic names; v13+ uses topic ids).</summary>
    private const short FetchVersionMin = 4;
    private const short FetchVersionMax = 12;

    /// <summary>
    /// Serves template batches: per partition, whole batches from the one holding the fetch offset,
    /// up to the partition's max bytes (at least one batch) and the request's max bytes, never past
    /// the partition's end. The records are copied into one scratch buffer with their base offsets
    /// rewritten, then the response is written.
    /// </summary>
    private int WriteDataFetch(FetchRequest request, short version, int correlationId, ref byte[] output)
    {
        var batchBytes = _template.Length / _templateBatchStarts.Length; // batches are the same size
        var response = new FetchResponse();
        var plan = new List<(FetchResponse.PartitionData Data, long FirstBatchOffset, int Batches)>();
        long budget = request.MaxBytes > 0 ? request.MaxBytes : int.MaxValue;
        var scratchBytes = 0;
        foreach (var t in request.Topics)
        {
            var topic = new FetchResponse.FetchableTopicResponse { Topic = t.Topic };
            response.Responses.Add(topic);
            foreach (var p in t.Partitions)
            {
                var data = new FetchResponse.PartitionData
                {
                    PartitionIndex = p.Partition, HighWatermark = _fetchRecordsPerPartition, LastStableOffset = _fetchRecordsPerPartition,
                    LogStartOffset = 0, Records = ReadOnlyMemory<byte>.Empty,
                };
                topic.Partitions.Add(data);
                if (p.Partition < 0 || p.Partition >= _partitions || p.FetchOffset < 0 || p.FetchOffset > _fetchRecordsPerPartition)
                {
                    data.ErrorCode = (short)ErrorCode.OffsetOutOfRange;
                    continue;
                }
                var first = p.FetchOffset / _recordsPerBatch * _recordsPerBatch;
                var left = (_fetchRecordsPerPartition - first + _recordsPerBatch - 1) / _recordsPerBatch;
                var byLimit = Math.Max(1, Math.Min(p.PartitionMaxBytes, budget) / batchBytes);
                var batches = (int)Math.Min(Math.Min(left, byLimit), _templateBatchStarts.Length);
                if (batches <= 0 || budget <= 0)
                    continue;
                plan.Add((data, first, batches));
                scratchBytes += batches * batchBytes;
                budget -= batches * batchBytes;
            }
        }
        var scratch = ArrayPool<byte>.Shared.Rent(Math.Max(scratchBytes, 1));
        try
        {
            var at = 0;
            foreach (var (data, firstOffset, batches) in plan)
            {
                var length = batches * batchBytes;
                _template.AsSpan(0, length).CopyTo(scratch.AsSpan(at));
                for (var b = 0; b < batches; b++)
                    RecordBatchHeader.SetBaseOffset(scratch.AsSpan(at + b * batchBytes), firstOffset + (long)b * _recordsPerBatch);
                data.Records = scratch.AsMemory(at, length);
                at += length;
            }
            Interlocked.Add(ref _fetchedBytes, at);
            var size = KafkaFrames.ComputeResponseFrameSize(ApiKey.Fetch, version, response);
            if (output.Length < size)
            {
                ArrayPool<byte>.Shared.Return(output);
                output = ArrayPool<byte>.Shared.Rent(size);
            }
            var writer = new KafkaWriter(output.AsSpan(0, size));
            KafkaFrames.WriteResponseFrame(ref writer, ApiKey.Fetch, version, correlationId, response);
            return size;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    /// <summary>No records, ever: the high watermark is the next offset the sink would give.</summary>
    private FetchResponse EmptyFetch(FetchRequest request)
    {
        var response = new FetchResponse();
        foreach (var t in request.Topics)
        {
            var topic = new FetchResponse.FetchableTopicResponse { Topic = t.Topic };
            _topics.TryGetValue(t.Topic, out var state);
            foreach (var p in t.Partitions)
            {
                var known = state is not null && p.Partition >= 0 && p.Partition < state.NextOffsets.Length;
                var next = known ? Interlocked.Read(ref state!.NextOffsets[p.Partition]) : -1;
                topic.Partitions.Add(new FetchResponse.PartitionData
                {
                    PartitionIndex = p.Partition,
                    ErrorCode = (short)(known ? ErrorCode.None : ErrorCode.UnknownTopicOrPartition),
                    HighWatermark = next,
                    LastStableOffset = next,
                    LogStartOffset = known ? 0 : -1,
                    Records = ReadOnlyMemory<byte>.Empty,
                });
            }
            response.Responses.Add(topic);
        }
        return response;
    }

    private MetadataResponse Metadata(MetadataRequest request)
    {
        var response = new MetadataResponse { ClusterId = "benchmark-sink", ControllerId = NodeId };
        response.Brokers.Add(new MetadataResponse.MetadataResponseBroker { NodeId = NodeId, Host = "127.0.0.1", Port = Port });
        IEnumerable<string> names = request.Topics is null
            ? _topics.Keys.ToArray()
            : request.Topics.Where(t => !string.IsNullOrEmpty(t.Name)).Select(t => t.Name!);
        foreach (var name in names)
        {
            var state = _topics.GetOrAdd(name, _ => new TopicState(_partitions));
            var topic = new MetadataResponse.MetadataResponseTopic { Name = name, TopicId = state.TopicId };
            for (var p = 0; p < state.NextOffsets.Length; p++)
            {
                topic.Partitions.Add(new MetadataResponse.MetadataResponsePartition
                {
                    PartitionIndex = p, LeaderId = NodeId, LeaderEpoch = 0, ReplicaNodes = [NodeId], IsrNodes = [NodeId],
                });
            }
            response.Topics.Add(topic);
        }
        return response;
    }

    private ProduceResponse Produce(ProduceRequest request)
    {
        var response = new ProduceResponse();
        foreach (var topicData in request.TopicData)
        {
            var state = _topics.GetOrAdd(topicData.Name, _ => new TopicState(_partitions));
            var topic = new ProduceResponse.TopicProduceResponse { Name = topicData.Name };
            foreach (var partition in topicData.PartitionData)
            {
                var result = new ProduceResponse.PartitionProduceResponse { Index = partition.Index, LogStartOffset = 0 };
                if (partition.Index < 0 || partition.Index >= state.NextOffsets.Length)
                {
                    result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    result.BaseOffset = -1;
                }
                else
                {
                    var records = CountRecords(partition.Records is { } blob ? blob.Span : default);
                    Interlocked.Add(ref _records, records);
                    Interlocked.Add(ref _recordBytes, partition.Records?.Length ?? 0);
                    result.BaseOffset = Interlocked.Add(ref state.NextOffsets[partition.Index], records) - records;
                }
                topic.PartitionResponses.Add(result);
            }
            response.Responses.Add(topic);
        }
        return response;
    }

    /// <summary>Records in the batches, from their headers (nothing is decompressed or checked).</summary>
    private static long CountRecords(ReadOnlySpan<byte> batches)
    {
        long count = 0;
        while (batches.Length >= RecordBatchHeader.Size && RecordBatchHeader.TryReadTotalSize(batches, out var total)
               && total >= RecordBatchHeader.Size && total <= batches.Length)
        {
            count += new RecordBatchHeader(batches).RecordsCount;
            batches = batches[total..];
        }
        return count;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        try
        {
            await _acceptLoop;
            await Task.WhenAll(_connections.Keys).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException or SocketException)
        {
        }
        _stop.Dispose();
    }

    private sealed class TopicState(int partitions)
    {
        public Guid TopicId { get; } = Guid.NewGuid();

        public long[] NextOffsets { get; } = new long[partitions];
    }
}
