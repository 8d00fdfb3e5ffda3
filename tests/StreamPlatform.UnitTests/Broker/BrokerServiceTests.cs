using Google.Protobuf;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Broker.Replication;
using StreamPlatform.Broker.Services;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Broker;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Records;
using StreamPlatform.UnitTests.Storage;

namespace StreamPlatform.UnitTests.Broker;

public sealed class BrokerServiceTests : IAsyncDisposable
{
    private const int Me = 1;
    private const long T0 = 1_700_000_000_000;
    private readonly TempDir _dir = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(T0));
    private readonly GrpcChannel _channel = GrpcChannel.ForAddress("http://127.0.0.1:9"); // never called: the watcher is fed by Apply
    private readonly MetadataWatcher _watcher;
    private readonly LogManager _logs;
    private readonly BrokerMetrics _metrics;
    private readonly BrokerGrpcService _service;
    private readonly ReplicaManager _replicas;
    private static readonly Guid TopicA = Guid.NewGuid();
    private long _epoch;

    public BrokerServiceTests()
    {
        _watcher = new MetadataWatcher(_channel, "test", NullLogger.Instance, _time);
        _logs = new LogManager(_dir.Path, _time, NullLogger<LogManager>.Instance);
        _logs.LoadAll();
        _replicas = new ReplicaManager(_logs, Options.Create(new BrokerOptions { BrokerId = Me }), _time);
        _watcher.Applied += m => { _logs.ApplyMetadata(m, Me); _replicas.ApplyMetadata(m); };
        _metrics = new BrokerMetrics(_logs);
        _service = new BrokerGrpcService(_logs, _replicas, Options.Create(new BrokerOptions { BrokerId = Me }), _time, _metrics);
        Publish(Topic("a", TopicA, leaders: [Me, Me, 2], leaderEpoch: 3));
    }

    public async ValueTask DisposeAsync()
    {
        _logs.CloseAll();
        await _watcher.DisposeAsync();
        _channel.Dispose();
        _metrics.Dispose();
        _dir.Dispose();
    }

    private static TopicInfo Topic(string name, Guid id, int[] leaders, int leaderEpoch = 0, Dictionary<string, string>? configs = null)
    {
        var topic = new TopicInfo { Name = name, TopicId = TopicIds.ToByteString(id), ReplicationFactor = 1 };
        for (var p = 0; p < leaders.Length; p++)
            topic.Partitions.Add(new PartitionInfo { Partition = p, Leader = leaders[p], LeaderEpoch = leaderEpoch, Replicas = { leaders[p] }, Isr = { leaders[p] } });
        if (configs is not null) topic.Configs.Add(configs);
        return topic;
    }

    private void Publish(params TopicInfo[] topics)
    {
        var snapshot = new MetadataSnapshot { MetadataEpoch = ++_epoch, ClusterId = "c" };
        snapshot.Brokers.Add(new BrokerInfo { BrokerId = Me, GrpcEndpoint = "http://127.0.0.1:1" });
        snapshot.Brokers.Add(new BrokerInfo { BrokerId = 2, GrpcEndpoint = "http://127.0.0.1:2" });
        snapshot.Topics.Add(topics);
        _watcher.Apply(snapshot);
    }

    private Task<ProduceResponse> Produce(string topic, int partition, byte[] records, int acks = 1)
        => _service.ProduceAsync(new ProduceRequest { Acks = acks, TimeoutMs = 1000, Partitions = { new PartitionProduce { Topic = topic, Partition = partition, Records = ByteString.CopyFrom(records) } } }, default);

    private static FetchRequest FetchOf(int maxWaitMs, int minBytes, params (string Topic, int Partition, long Offset)[] partitions)
    {
        var request = new FetchRequest { MaxWaitMs = maxWaitMs, MinBytes = minBytes, MaxBytes = 1 << 20, ReplicaId = -1 };
        foreach (var (t, p, o) in partitions)
            request.Partitions.Add(new PartitionFetch { Topic = t, Partition = p, FetchOffset = o, PartitionMaxBytes = 1 << 20, CurrentLeaderEpoch = -1 });
        return request;
    }

    [Fact]
    public async Task Produce_appends_and_answers_per_partition_errors()
    {
        var ok = Assert.Single((await Produce("a", 0, TestBatches.Build(T0, "x", "y"))).Results);
        Assert.Equal((0, 0L, 0L), (ok.ErrorCode, ok.BaseOffset, ok.LogStartOffset));
        Assert.Equal(2, Assert.Single((await Produce("a", 0, TestBatches.Build(T0, "z"), acks: -1)).Results).BaseOffset);
        Assert.Equal(3, Assert.Single((await Produce("nope", 0, TestBatches.Build(T0, "z"))).Results).ErrorCode);
        Assert.Equal(3, Assert.Single((await Produce("a", 7, TestBatches.Build(T0, "z"))).Results).ErrorCode);
        Assert.Equal(6, Assert.Single((await Produce("a", 2, TestBatches.Build(T0, "z"))).Results).ErrorCode);
        Assert.Equal(21, Assert.Single((await Produce("a", 0, TestBatches.Build(T0, "z"), acks: 2)).Results).ErrorCode);
        var corrupt = TestBatches.Build(T0, "bad");
        corrupt[^2] ^= 1;
        Assert.Equal(2, Assert.Single((await Produce("a", 0, corrupt)).Results).ErrorCode);

        var multi = await _service.ProduceAsync(new ProduceRequest
        {
            Acks = 1,
            Partitions =
            {
                new PartitionProduce { Topic = "a", Partition = 0, Records = ByteString.CopyFrom(TestBatches.Build(T0, "p0")) },
                new PartitionProduce { Topic = "a", Partition = 1, Records = ByteString.CopyFrom(TestBatches.Build(T0, "p1")) },
                new PartitionProduce { Topic = "a", Partition = 2, Records = ByteString.CopyFrom(TestBatches.Build(T0, "p2")) },
            },
        }, default);
        Assert.Equal([(0, 3L), (0, 0L), (6, -1L)], multi.Results.Select(r => (r.ErrorCode, r.BaseOffset)));
    }

    [Fact]
    public async Task Produce_to_an_internal_topic_is_invalid_topic_and_writes_nothing()
    {
        var offsets = Topic("__consumer_offsets", Guid.NewGuid(), [Me, 2]);
        offsets.Internal = true;
        Publish(Topic("a", TopicA, [Me, Me, 2], 3), offsets);
        foreach (var (topic, partition) in new[] { ("__consumer_offsets", 0), ("__consumer_offsets", 1), ("__transaction_state", 0) })
        {
            // Checked before leadership or existence, as Kafka's ReplicaManager does.
            var unary = Assert.Single((await Produce(topic, partition, TestBatches.Build(T0, "x"))).Results);
            Assert.Equal((17, $"Cannot append to internal topic {topic}", -1L), (unary.ErrorCode, unary.ErrorMessage, unary.BaseOffset));
            var streamed = Assert.Single((await _service.ProduceInOrderAsync(new ProduceRequest
            {
                Acks = 1, Partitions = { new PartitionProduce { Topic = topic, Partition = partition, Records = ByteString.CopyFrom(TestBatches.Build(T0, "x")) } },
            })).Results);
            Assert.Equal(17, streamed.ErrorCode);
        }
        var read = await _service.FetchAsync(FetchOf(0, 1, ("__consumer_offsets", 0, 0)), default);
        Assert.Equal((0, 0L), (read.Results[0].ErrorCode, read.Results[0].HighWatermark));
    }

    [Fact]
    public async Task Produce_checks_the_topic_max_message_bytes()
    {
        Publish(Topic("a", TopicA, [Me, Me, 2], 3), Topic("small", Guid.NewGuid(), [Me], configs: new() { ["max.message.bytes"] = "100" }));
        Assert.Equal(10, Assert.Single((await Produce("small", 0, TestBatches.Build(T0, new string('x', 200)))).Results).ErrorCode);
        Assert.Equal(0, Assert.Single((await Produce("small", 0, TestBatches.Build(T0, "ok"))).Results).ErrorCode);
    }

    [Fact]
    public async Task Fetch_returns_data_offsets_and_errors()
    {
        await Produce("a", 0, TestBatches.Build(T0, "x", "y"));
        var response = await _service.FetchAsync(FetchOf(0, 1, ("a", 0, 1), ("a", 0, 5), ("a", 2, 0), ("zz", 0, 0)), default);
        var data = response.Results[0];
        Assert.Equal((0, 2L, 2L, 0L), (data.ErrorCode, data.HighWatermark, data.LastStableOffset, data.LogStartOffset));
        Assert.Equal(0, TestBatches.Parse(data.Records.Span).Single().BaseOffset);
        Assert.Equal([0, 1, 6, 3], response.Results.Select(r => r.ErrorCode));
    }

    [Fact]
    public async Task Fetch_checks_the_current_leader_epoch()
    {
        var request = FetchOf(0, 0, ("a", 0, 0), ("a", 0, 0), ("a", 0, 0));
        request.Partitions[0].CurrentLeaderEpoch = 2;
        request.Partitions[1].CurrentLeaderEpoch = 4;
        request.Partitions[2].CurrentLeaderEpoch = 3;
        var response = await _service.FetchAsync(request, default);
        Assert.Equal([74, 75, 0], response.Results.Select(r => r.ErrorCode));
    }

    [Fact]
    public async Task Fetch_respects_max_bytes_but_returns_one_batch_for_the_first_partition()
    {
        await Produce("a", 0, TestBatches.Build(T0, new string('x', 500)));
        await Produce("a", 1, TestBatches.Build(T0, "y"));
        var request = FetchOf(0, 1, ("a", 0, 0), ("a", 1, 0));
        request.MaxBytes = 100;
        request.Partitions[0].PartitionMaxBytes = 10;
        var response = await _service.FetchAsync(request, default);
        Assert.Single(TestBatches.Parse(response.Results[0].Records.Span));
        Assert.True(response.Results[1].Records.IsEmpty); // the overall limit is used up
        Assert.Equal(1, response.Results[1].HighWatermark);
    }

    [Fact]
    public async Task Long_poll_fetch_wakes_on_append()
    {
        var pending = _service.FetchAsync(FetchOf(10_000, 1, ("a", 0, 0), ("a", 1, 0)), default);
        await Task.Delay(50);
        Assert.False(pending.IsCompleted);
        await Produce("a", 1, TestBatches.Build(T0, "wake"));
        var response = await pending.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(response.Results[0].Records.IsEmpty);
        Assert.Equal("wake", TestBatches.Parse(response.Results[1].Records.Span).Single().FirstValue);
    }

    [Fact]
    public async Task Long_poll_fetch_cancelled_by_the_caller_ends_without_an_exception()
    {
        using var cancel = new CancellationTokenSource();
        var pending = _service.FetchAsync(FetchOf(10_000, 1, ("a", 0, 0)), cancel.Token);
        await Task.Delay(20);
        Assert.False(pending.IsCompleted);
        await cancel.CancelAsync();
        var response = await pending.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(pending.IsCompletedSuccessfully);
        Assert.Empty(response.Results);
    }

    [Fact]
    public async Task Pooled_fetch_keeps_its_buffers_until_disposed_and_returns_those_of_dropped_reads()
    {
        var pool = new PoisoningArrayPool();
        await Produce("a", 0, TestBatches.Build(T0, "small"));
        using var buffers = new FetchBuffers(pool);
        // min_bytes not reached: the first read is dropped (its buffer returned), then an append wakes the poll.
        var pending = _service.FetchAsync(FetchOf(10_000, 150, ("a", 0, 0)), default, buffers);
        await Task.Delay(50);
        Assert.False(pending.IsCompleted);
        Assert.Equal(0, buffers.RentedBytes);
        Assert.Equal(1, pool.Returned);
        await Produce("a", 0, TestBatches.Build(T0, new string('x', 100)));
        var response = await pending.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(buffers.RentedBytes > 0);
        Assert.Equal(1, pool.Returned);
        var records = response.Results[0].Records;
        Assert.Equal(["small", new string('x', 100)], TestBatches.Parse(records.Span).Select(b => b.FirstValue));
        var copy = records.ToByteArray();
        buffers.Dispose();
        Assert.Equal(2, pool.Returned);
        Assert.Equal(0, buffers.RentedBytes);
        // Returned buffers are poisoned: the response still pointing at one shows the garbage.
        Assert.NotEqual(copy, records.ToByteArray());
    }

    [Fact]
    public async Task Long_poll_fetch_times_out_after_max_wait()
    {
        var pending = _service.FetchAsync(FetchOf(500, 1, ("a", 0, 0)), default);
        Assert.False(pending.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(499));
        await Task.Delay(20);
        Assert.False(pending.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        var response = await pending.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(response.Results[0].Records.IsEmpty);
        Assert.Equal(0, response.Results[0].ErrorCode);
    }

    [Fact]
    public async Task Long_poll_fetch_keeps_waiting_until_min_bytes()
    {
        var pending = _service.FetchAsync(FetchOf(10_000, 150, ("a", 0, 0)), default);
        await Produce("a", 0, TestBatches.Build(T0, "small"));
        await Task.Delay(50);
        Assert.False(pending.IsCompleted);
        await Produce("a", 0, TestBatches.Build(T0, new string('x', 100)));
        var response = await pending.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(2, TestBatches.Parse(response.Results[0].Records.Span).Count);
    }

    [Fact]
    public async Task ListOffsets_and_DescribeLogDirs()
    {
        await Produce("a", 0, TestBatches.Build(T0, 100, "x", "y", "z"));
        var response = _service.ListOffsets(new ListOffsetsRequest
        {
            Partitions =
            {
                new PartitionListOffsets { Topic = "a", Partition = 0, Timestamp = -2, CurrentLeaderEpoch = -1 },
                new PartitionListOffsets { Topic = "a", Partition = 0, Timestamp = -1, CurrentLeaderEpoch = -1 },
                new PartitionListOffsets { Topic = "a", Partition = 0, Timestamp = T0 + 150, CurrentLeaderEpoch = -1 },
                new PartitionListOffsets { Topic = "a", Partition = 0, Timestamp = T0 + 999, CurrentLeaderEpoch = -1 },
                new PartitionListOffsets { Topic = "a", Partition = 2, Timestamp = -1, CurrentLeaderEpoch = -1 },
            },
        });
        Assert.Equal([(0, 0L, -1L), (0, 3L, -1L), (0, 2L, T0 + 200), (0, -1L, -1L), (6, -1L, -1L)],
            response.Results.Select(r => (r.ErrorCode, r.Offset, r.Timestamp)));
        Assert.Equal(3, response.Results[0].LeaderEpoch);

        var dirs = _service.DescribeLogDirs(new DescribeLogDirsRequest());
        var dir = Assert.Single(dirs.Dirs);
        Assert.Equal(_logs.DataDir, dir.Path);
        var p0 = dir.Partitions.Single(p => p.Topic == "a" && p.Partition == 0);
        Assert.Equal(TestBatches.Build(T0, 100, "x", "y", "z").Length, p0.SizeBytes);
        Assert.Equal(2, dir.Partitions.Count); // partitions 0 and 1 are hosted here, 2 is not
    }

    [Fact]
    public async Task Metadata_creates_logs_deletes_deleted_topics_and_recreated_ones()
    {
        await Produce("a", 0, TestBatches.Build(T0, "old"));
        var dir = Path.Combine(_dir.Path, "a-0");
        Assert.Equal(TopicA, PartitionLog.ReadTopicId(dir));

        var recreated = Guid.NewGuid();
        Publish(Topic("a", recreated, [Me]));
        Assert.True(_logs.TryGetLog(new TopicPartition("a", 0), out var log));
        Assert.Equal(0, log.LogEndOffset); // the old topic's data is gone
        Assert.Equal(recreated, PartitionLog.ReadTopicId(dir));
        Assert.False(Directory.Exists(Path.Combine(_dir.Path, "a-1")));

        Publish();
        Assert.False(Directory.Exists(dir));
        Assert.Empty(_logs.Logs);
    }

    [Fact]
    public async Task Logs_are_reopened_at_start_with_their_data()
    {
        await Produce("a", 0, TestBatches.Build(T0, "kept"));
        _logs.CloseAll();
        using var again = new LogManager(_dir.Path, _time, NullLogger<LogManager>.Instance);
        again.LoadAll();
        Assert.True(again.Loaded);
        Assert.True(again.TryGetLog(new TopicPartition("a", 0), out var log));
        Assert.Equal(TopicA, log.TopicId);
        Assert.Equal("kept", TestBatches.Parse(log.Read(0, 1000).ToArray()).Single().FirstValue);
    }
    [Fact]
    public async Task Produce_applies_kafka_client_validation()
    {
        Publish(Topic("a", TopicA, [Me, Me, 2], 3), Topic("compacted", Guid.NewGuid(), [Me], configs: new() { ["cleanup.policy"] = "compact" }));
        // Produce v3+ carries exactly one batch per partition.
        var two = TestBatches.Concat(TestBatches.Build(T0, "x"), TestBatches.Build(T0, "y"));
        Assert.Equal(87, Assert.Single((await Produce("a", 0, two)).Results).ErrorCode);
        // Compacted topics need keys (TestBatches writes null keys).
        Assert.Equal(87, Assert.Single((await Produce("compacted", 0, TestBatches.Build(T0, "no key"))).Results).ErrorCode);
        using var keyed = new RecordBatchBuilder();
        keyed.Append(T0, "k"u8.ToArray(), "v"u8.ToArray());
        Assert.Equal(0, Assert.Single((await Produce("compacted", 0, keyed.ToArray())).Results).ErrorCode);
        Assert.Equal(0, _logs.Logs.Single(l => l.TopicPartition == new TopicPartition("a", 0)).LogEndOffset);
    }

    [Fact]
    public async Task Produce_lists_every_refused_record_in_record_errors()
    {
        Publish(Topic("a", TopicA, [Me, Me, 2], 3), Topic("compacted", Guid.NewGuid(), [Me], configs: new() { ["cleanup.policy"] = "compact" }));
        using var builder = new RecordBatchBuilder { Compression = CompressionType.Snappy };
        builder.Append(T0, "k"u8.ToArray(), "v"u8.ToArray()).Append(T0, null, "v"u8.ToArray()).Append(T0, null, "v"u8.ToArray());
        var result = Assert.Single((await Produce("compacted", 0, builder.ToArray())).Results);
        Assert.Equal(87, result.ErrorCode);
        Assert.Equal([1, 2], result.RecordErrors.Select(e => e.BatchIndex));
        Assert.All(result.RecordErrors, e => Assert.Contains("without key", e.Message));
        Assert.StartsWith("One or more records have been rejected due to 2 record errors", result.ErrorMessage);
    }

    [Theory]
    [InlineData(-1L)]
    [InlineData(long.MaxValue)]
    public async Task A_batch_header_max_timestamp_is_set_from_its_records(long claimed)
    {
        // Older sarama writes -1; a huge value would keep the segment from ever expiring.
        using var builder = new RecordBatchBuilder { Compression = CompressionType.Gzip };
        builder.Append(T0 + 10, null, "a"u8.ToArray()).Append(T0 + 30, null, "b"u8.ToArray()).Append(T0 + 20, null, "c"u8.ToArray());
        var batch = builder.ToArray();
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(batch.AsSpan(RecordBatchHeader.MaxTimestampOffset), claimed);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(batch.AsSpan(RecordBatchHeader.CrcOffset), RecordBatchHeader.ComputeCrc(batch));
        await Produce("a", 0, TestBatches.Build(T0, "first"));
        Assert.Equal(0, Assert.Single((await Produce("a", 0, batch)).Results).ErrorCode);

        var stored = (await _service.FetchAsync(FetchOf(0, 1, ("a", 0, 1)), default)).Results[0].Records.ToByteArray();
        var header = new RecordBatchHeader(stored);
        Assert.Equal(T0 + 30, header.MaxTimestamp);
        Assert.Equal(RecordBatchHeader.ComputeCrc(stored), header.Crc);
        var found = _service.ListOffsets(new ListOffsetsRequest
        {
            Partitions =
            {
                new PartitionListOffsets { Topic = "a", Partition = 0, Timestamp = T0 + 25, CurrentLeaderEpoch = -1 },
                new PartitionListOffsets { Topic = "a", Partition = 0, Timestamp = -3, CurrentLeaderEpoch = -1 }, // max timestamp
            },
        });
        Assert.Equal([(2L, T0 + 30), (2L, T0 + 30)], found.Results.Select(r => (r.Offset, r.Timestamp)));
    }

    [Fact]
    public async Task Compressed_batches_are_stored_as_sent_and_fetched_back()
    {
        using var builder = new RecordBatchBuilder { Compression = CompressionType.Gzip };
        for (var i = 0; i < 10; i++) builder.Append(T0 + i, null, System.Text.Encoding.UTF8.GetBytes($"value-{i}"));
        var batch = builder.ToArray();
        await Produce("a", 0, TestBatches.Build(T0, "first"));
        Assert.Equal(1, Assert.Single((await Produce("a", 0, batch)).Results).BaseOffset);
        var fetched = (await _service.FetchAsync(FetchOf(0, 1, ("a", 0, 5)), default)).Results[0].Records.ToByteArray();
        var header = new RecordBatchHeader(fetched);
        Assert.Equal((1L, 10L, CompressionType.Gzip), (header.BaseOffset, header.LastOffset, header.Compression));
        Assert.Equal(batch.AsSpan(RecordBatchHeader.AttributesOffset).ToArray(), fetched.AsSpan(RecordBatchHeader.AttributesOffset).ToArray());
        Assert.Equal(RecordBatchHeader.ComputeCrc(fetched), header.Crc);
        var log = _logs.Logs.Single(l => l.TopicPartition == new TopicPartition("a", 0));
        Assert.Equal(new OffsetAndTimestamp(-1, -1), log.LookupOffset(T0 + 100));
        Assert.Equal(new OffsetAndTimestamp(6, T0 + 5), log.LookupOffset(T0 + 5)); // a record inside the gzip batch
    }

    [Fact]
    public void Max_timestamp_lookup_finds_the_record_not_just_the_batch()
    {
        using var dir = new TempDir();
        using var log = dir.Open();
        using var builder = new RecordBatchBuilder { Compression = CompressionType.Lz4 };
        builder.Append(T0 + 5, null, "a"u8.ToArray()).Append(T0 + 50, null, "b"u8.ToArray()).Append(T0 + 7, null, "c"u8.ToArray());
        Assert.Equal(0, log.Append(builder.ToArray()).ErrorCode);
        Assert.Equal(new OffsetAndTimestamp(1, T0 + 50), log.LookupOffset(-3));
        Assert.Equal(new OffsetAndTimestamp(1, T0 + 50), log.LookupOffset(T0 + 6));
    }

    private PartitionLog LogOf(string topic, int partition) => _logs.Logs.Single(l => l.TopicPartition == new TopicPartition(topic, partition));

    [Fact]
    public async Task DeleteRecords_moves_the_low_watermark_and_reads_below_it_are_out_of_range()
    {
        for (var i = 0; i < 5; i++) await Produce("a", 0, TestBatches.Build(T0, $"v{i}"));
        DeleteRecordsResponse Delete(params (string Topic, int Partition, long Offset)[] parts)
        {
            var request = new DeleteRecordsRequest { TimeoutMs = 1000 };
            foreach (var (t, p, o) in parts) request.Partitions.Add(new PartitionDeleteRecords { Topic = t, Partition = p, Offset = o });
            return _service.DeleteRecords(request);
        }
        var response = Delete(("a", 0, 3), ("a", 0, 6), ("a", 2, 0), ("zz", 0, 0));
        Assert.Equal([(0, 3L), (1, -1L), (6, -1L), (3, -1L)], response.Results.Select(r => (r.ErrorCode, r.LowWatermark)));
        var fetch = await _service.FetchAsync(FetchOf(0, 1, ("a", 0, 2), ("a", 0, 3)), default);
        Assert.Equal((1, 3L), (fetch.Results[0].ErrorCode, fetch.Results[0].LogStartOffset));
        Assert.Equal(0, fetch.Results[1].ErrorCode);
        Assert.Equal(3, new RecordBatchHeader(fetch.Results[1].Records.Span).BaseOffset);
        Assert.Equal(3, _service.ListOffsets(new ListOffsetsRequest { Partitions = { new PartitionListOffsets { Topic = "a", Partition = 0, Timestamp = -2, CurrentLeaderEpoch = -1 } } }).Results[0].Offset);
        Assert.Equal((0, 5L), Delete(("a", 0, -1)).Results.Select(r => (r.ErrorCode, r.LowWatermark)).Single());
        Assert.Equal(5, Assert.Single((await Produce("a", 0, TestBatches.Build(T0, "after"))).Results).BaseOffset);
    }

    [Fact]
    public async Task Full_disk_makes_the_partition_read_only_with_storage_errors_while_reads_go_on()
    {
        await Produce("a", 0, TestBatches.Build(T0, "kept"));
        var log = LogOf("a", 0);
        var sizeBefore = log.SizeBytes;
        // ENOSPC as .NET reports it on Unix (errno in HResult); the seam throws before the write.
        log.BeforeWrite = _ => throw new IOException("No space left on device", 28);
        var failed = Assert.Single((await Produce("a", 0, TestBatches.Build(T0, "lost"))).Results);
        Assert.Equal(56, failed.ErrorCode);
        Assert.Contains("disk is full", failed.ErrorMessage, StringComparison.Ordinal);
        log.BeforeWrite = null; // space is back, but the partition stays read-only until a restart
        Assert.Equal(56, Assert.Single((await Produce("a", 0, TestBatches.Build(T0, "still refused"))).Results).ErrorCode);
        Assert.Equal(sizeBefore, log.SizeBytes);
        Assert.NotNull(log.ReadOnlyReason);
        var fetch = (await _service.FetchAsync(FetchOf(0, 1, ("a", 0, 0)), default)).Results[0];
        Assert.Equal((0, 1L), (fetch.ErrorCode, fetch.HighWatermark));
        Assert.Equal("kept", TestBatches.Parse(fetch.Records.ToByteArray())[0].FirstValue);
        // Other partitions are unaffected.
        Assert.Equal(0, Assert.Single((await Produce("a", 1, TestBatches.Build(T0, "fine"))).Results).ErrorCode);
    }

    [Fact]
    public async Task A_write_failing_midway_leaves_no_torn_batch_behind()
    {
        await Produce("a", 0, TestBatches.Build(T0, "kept"));
        var log = LogOf("a", 0);
        var sizeBefore = log.SizeBytes;
        // Half a batch reaches the file before the device fails.
        log.BeforeWrite = path =>
        {
            using (var f = new FileStream(path, FileMode.Append)) f.Write(new byte[30]);
            throw new IOException("Input/output error", 5);
        };
        var failed = Assert.Single((await Produce("a", 0, TestBatches.Build(T0, "torn"))).Results);
        Assert.Equal(56, failed.ErrorCode);
        Assert.DoesNotContain("disk is full", failed.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal(sizeBefore, new FileInfo(Path.Combine(log.Directory, "00000000000000000000.log")).Length);
    }

    [Fact]
    public async Task Topic_config_changes_in_metadata_reach_the_log_without_a_restart()
    {
        await Produce("a", 0, TestBatches.Build(T0, "x"));
        var log = LogOf("a", 0);
        Assert.Equal(604800000, log.Config.RetentionMs);
        Publish(Topic("a", TopicA, [Me, Me, 2], 3, configs: new() { ["retention.ms"] = "1000", ["retention.bytes"] = "5000", ["cleanup.policy"] = "compact,delete" }));
        Assert.Same(log, LogOf("a", 0));
        Assert.Equal((1000L, 5000L, true, true), (log.Config.RetentionMs, log.Config.RetentionBytes, log.Config.Compacted, log.Config.DeleteEnabled));
    }
}
