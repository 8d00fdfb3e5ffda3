using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using Google.Protobuf;
using Microsoft.Extensions.DependencyInjection;
using StreamPlatform.Gateway;
using StreamPlatform.Gateway.Apis;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.UnitTests.Storage;
using Brk = StreamPlatform.Protos.Grpc.Broker;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// Fetch read-ahead: the budget, one connection's entries (exact match or abandoned, buffers
/// always back in the pool), the predicted next request, and a consumer catching up through the
/// real gateway and brokers with its fetches answered by read-aheads.
/// </summary>
public sealed class FetchReadAheadTests
{
    [Fact]
    public void The_budget_grants_what_fits_and_refuses_the_rest_without_waiting()
    {
        var budget = new FetchReadAheadBudget(100);
        Assert.True(budget.TryReserve(60));
        Assert.False(budget.TryReserve(41));
        Assert.True(budget.TryReserve(40));
        Assert.Equal(100, budget.InUseBytes);
        budget.Release(60);
        Assert.False(budget.TryReserve(101));
        Assert.False(budget.TryReserve(0));
        Assert.True(budget.TryReserve(60));
        budget.Release(60);
        budget.Release(40);
        Assert.Equal(0, budget.InUseBytes);
        Assert.Throws<InvalidOperationException>(() => budget.Release(1));
        Assert.False(new FetchReadAheadBudget(0).TryReserve(1));
    }

    private static Brk.FetchRequest Request(long offset)
        => new()
        {
            MinBytes = 1, MaxBytes = 1 << 20, IsolationLevel = 0, ReplicaId = -1,
            Partitions = { new Brk.PartitionFetch { Topic = "t", Partition = 0, FetchOffset = offset, PartitionMaxBytes = 65536, CurrentLeaderEpoch = 3 } },
        };

    private static BrokerFetchResponse Answer(PoisoningArrayPool pool, long offset)
    {
        var message = new Brk.FetchResponse
        {
            Results = { new Brk.PartitionFetchResult { Topic = "t", Partition = 0, HighWatermark = offset + 1, Records = ByteString.CopyFrom(TestBatches.Build(0, "v")) } },
        };
        return BrokerFetchResponse.Parse(new ReadOnlySequence<byte>(message.ToByteArray()), pool);
    }

    [Fact]
    public async Task Only_an_exact_match_is_taken_and_everything_else_goes_back_to_the_pool_even_when_it_answers_later()
    {
        var pool = new PoisoningArrayPool();
        var budget = new FetchReadAheadBudget(1 << 20);
        var readAhead = new FetchReadAhead();
        FetchReadAhead.Entry Entry(long offset, Task<BrokerFetchResponse?> answer)
        {
            Assert.True(budget.TryReserve(1000));
            return new FetchReadAhead.Entry(Request(offset), null, answer, 1000, budget);
        }

        // Taken when equal: the bytes go back to the budget, the answer to the taker.
        readAhead.Put("b1", Entry(5, Task.FromResult<BrokerFetchResponse?>(Answer(pool, 5))));
        var taken = readAhead.Take("b1", Request(5));
        Assert.NotNull(taken);
        Assert.Equal(0, budget.InUseBytes);
        Assert.Equal(0, readAhead.Count);
        using (var answer = await taken.Answer) Assert.Equal(6, answer!.Results[0].HighWatermark);
        Assert.Null(readAhead.Take("b1", Request(5)));

        // Another offset, another epoch, another broker: abandoned, and an answer arriving after that is disposed.
        var late = new TaskCompletionSource<BrokerFetchResponse?>();
        readAhead.Put("b1", Entry(6, late.Task));
        Assert.Null(readAhead.Take("b1", Request(7)));
        Assert.Equal(0, budget.InUseBytes);
        late.SetResult(Answer(pool, 6));
        var otherEpoch = Request(6);
        otherEpoch.Partitions[0].CurrentLeaderEpoch = 4;
        readAhead.Put("b1", Entry(6, Task.FromResult<BrokerFetchResponse?>(Answer(pool, 6))));
        Assert.Null(readAhead.Take("b1", otherEpoch));
        readAhead.Put("b2", Entry(6, Task.FromResult<BrokerFetchResponse?>(Answer(pool, 6))));
        readAhead.AbandonAll();
        Assert.Equal(0, readAhead.Count);

        // A second Put for the same broker replaces (abandons) the first; Dispose abandons the rest,
        // and a Put after it (a fetch finishing after the connection closed) is abandoned at once.
        readAhead.Put("b3", Entry(1, Task.FromResult<BrokerFetchResponse?>(Answer(pool, 1))));
        readAhead.Put("b3", Entry(2, Task.FromResult<BrokerFetchResponse?>(Answer(pool, 2))));
        Assert.Equal(1, readAhead.Count);
        readAhead.Dispose();
        readAhead.Put("b3", Entry(3, Task.FromResult<BrokerFetchResponse?>(Answer(pool, 3))));
        Assert.Equal(0, readAhead.Count);
        Assert.Equal(0, budget.InUseBytes);
        Assert.Equal(pool.Rented, pool.Returned);
        Assert.Equal(7, pool.Rented);
    }

    [Fact]
    public void A_prediction_serves_the_same_partitions_or_some_of_them_in_any_order_and_nothing_else()
    {
        static Brk.FetchRequest Two(bool rotated, long offset1 = 7)
        {
            var r = Request(5);
            r.Partitions.Add(new Brk.PartitionFetch { Topic = "t", Partition = 1, FetchOffset = offset1, PartitionMaxBytes = 65536, CurrentLeaderEpoch = 3 });
            if (rotated)
            {
                var first = r.Partitions[0];
                r.Partitions.RemoveAt(0);
                r.Partitions.Add(first);
            }
            return r;
        }
        Assert.True(FetchReadAhead.Predicted(Two(false), Two(false)));
        // librdkafka rotates a fetch's partitions from one request to the next.
        Assert.True(FetchReadAhead.Predicted(Two(false), Two(true)));
        Assert.False(FetchReadAhead.Predicted(Two(false), Two(true, offset1: 8)));
        // A partition left out this time (its queue at the client is full): the rest is served.
        var fewer = Two(true);
        fewer.Partitions.RemoveAt(0);
        Assert.True(FetchReadAhead.Predicted(Two(false), fewer));
        Assert.False(FetchReadAhead.Predicted(fewer, Two(false)));
        var none = Two(false);
        none.Partitions.Clear();
        Assert.False(FetchReadAhead.Predicted(Two(false), none));
        var twice = Two(false);
        twice.Partitions[1] = twice.Partitions[0].Clone();
        Assert.False(FetchReadAhead.Predicted(Two(false), twice));
        Assert.False(FetchReadAhead.Predicted(twice, Two(false)));
        foreach (var change in new Action<Brk.FetchRequest>[] { r => r.MinBytes = 2, r => r.MaxBytes = 7, r => r.IsolationLevel = 1, r => r.MaxWaitMs = 100, r => r.ReplicaId = 2 })
        {
            var other = Two(true);
            change(other);
            Assert.False(FetchReadAhead.Predicted(Two(false), other));
        }
    }

    private static FetchResponse.PartitionData Slot(byte[]? records, long highWatermark, long lastStable, short error = 0)
        => new() { ErrorCode = error, HighWatermark = highWatermark, LastStableOffset = lastStable, Records = records };

    private static byte[] BatchAt(long baseOffset, params string[] values)
    {
        var batch = TestBatches.Build(0, values);
        BinaryPrimitives.WriteInt64BigEndian(batch, baseOffset);
        return batch;
    }

    [Fact]
    public void The_next_request_starts_after_the_records_and_exists_only_when_data_is_left()
    {
        var asked = Request(10);
        asked.Partitions.Add(new Brk.PartitionFetch { Topic = "t", Partition = 1, FetchOffset = 40, PartitionMaxBytes = 65536 });
        asked.MaxWaitMs = 500;
        Dictionary<Brk.PartitionFetch, FetchResponse.PartitionData> Slots(FetchResponse.PartitionData p0, FetchResponse.PartitionData p1)
            => new(ReferenceEqualityComparer.Instance) { [asked.Partitions[0]] = p0, [asked.Partitions[1]] = p1 };

        // Partition 0 got offsets 10..12 of 20; partition 1 nothing (at its end).
        var next = FetchApi.NextRequest(asked, Slots(Slot([.. BatchAt(10, "a", "b"), .. BatchAt(12, "c")], 20, 20), Slot(null, 40, 40)), readCommitted: false);
        Assert.NotNull(next);
        Assert.Equal([13L, 40L], next.Partitions.Select(p => p.FetchOffset));
        Assert.Equal(0, next.MaxWaitMs);
        Assert.Equal(asked.MaxBytes, next.MaxBytes);
        Assert.Equal(3, next.Partitions[0].CurrentLeaderEpoch);
        Assert.Equal(10, asked.Partitions[0].FetchOffset); // the asked request is untouched

        // Everything read: nothing to read ahead.
        Assert.Null(FetchApi.NextRequest(asked, Slots(Slot(BatchAt(10, "a", "b"), 12, 12), Slot(null, 40, 40)), readCommitted: false));
        // Partition 1 left out by max_bytes but behind: read ahead, it stays at 40.
        Assert.Equal([12L, 40L], FetchApi.NextRequest(asked, Slots(Slot(BatchAt(10, "a", "b"), 12, 12), Slot(null, 90, 90)), readCommitted: false)!.Partitions.Select(p => p.FetchOffset));
        // read_committed reads up to the last stable offset only.
        Assert.Null(FetchApi.NextRequest(asked, Slots(Slot(BatchAt(10, "a", "b"), 30, 12), Slot(null, 40, 40)), readCommitted: true));
        Assert.NotNull(FetchApi.NextRequest(asked, Slots(Slot(BatchAt(10, "a", "b"), 30, 12), Slot(null, 40, 40)), readCommitted: false));
        // An errored partition or records that cannot be walked: none.
        Assert.Null(FetchApi.NextRequest(asked, Slots(Slot(null, 20, 20, error: 6), Slot(null, 90, 90)), readCommitted: false));
        var garbage = BatchAt(10, "a");
        garbage[16] = 1;
        Assert.Null(FetchApi.NextRequest(asked, Slots(Slot(garbage, 20, 20), Slot(null, 90, 90)), readCommitted: false));
    }
}

/// <summary>A consumer catching up through the real gateway and two real brokers, its fetches answered by read-aheads.</summary>
public sealed class FetchReadAheadEndToEndTests : IAsyncLifetime
{
    private const string Topic = "readahead";
    private InProcessCluster _cluster = null!;
    private GatewayMetrics _metrics = null!;
    private int _correlation;

    public async Task InitializeAsync()
    {
        _cluster = await InProcessCluster.StartAsync("sp-gw-readahead-", new Dictionary<string, string?> { ["Controller:BrokerConfigs:num.partitions"] = "1" });
        _metrics = _cluster.Gateway.Services.GetRequiredService<GatewayMetrics>();
    }

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    private async Task<long> ProduceAsync(PipeClient client, string value)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var request = new ProduceRequest { Acks = -1, TimeoutMs = 5000 };
            request.TopicData.Add(new ProduceRequest.TopicProduceData
            {
                Name = Topic,
                PartitionData = { new ProduceRequest.PartitionProduceData { Index = 0, Records = TestBatches.Build(0, value) } },
            });
            await client.SendAsync(ApiKey.Produce, 9, ++_correlation, request);
            var (_, produced) = await client.ReadAsync<ProduceResponse>(ApiKey.Produce, 9);
            var p = produced.Responses[0].PartitionResponses[0];
            if (p.ErrorCode == 0) return p.BaseOffset;
            // The topic is auto-created by the first produce's metadata round: retry like a client.
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), $"produce kept failing: {p.ErrorCode}");
            await Task.Delay(50);
        }
    }

    private async Task<FetchResponse.PartitionData> FetchAsync(PipeClient client, long offset, int partitionMaxBytes)
    {
        var request = new FetchRequest { MaxWaitMs = 500, MinBytes = 1, MaxBytes = 50 << 20 };
        request.Topics.Add(new FetchRequest.FetchTopic
        {
            Topic = Topic,
            Partitions = { new FetchRequest.FetchPartition { Partition = 0, FetchOffset = offset, PartitionMaxBytes = partitionMaxBytes } },
        });
        await client.SendAsync(ApiKey.Fetch, 12, ++_correlation, request);
        var (_, response) = await client.ReadAsync<FetchResponse>(ApiKey.Fetch, 12);
        var p = Assert.Single(Assert.Single(response.Responses).Partitions);
        Assert.Equal(0, p.ErrorCode);
        return p;
    }

    [Fact]
    public async Task A_consumer_catching_up_gets_every_record_in_order_mostly_from_read_aheads_and_none_once_caught_up()
    {
        await using var client = await _cluster.ConnectAsync();
        await client.SendAsync(ApiKey.Metadata, 12, ++_correlation, new MetadataRequest
        {
            Topics = [new MetadataRequest.MetadataRequestTopic { Name = Topic }], AllowAutoTopicCreation = true,
        });
        await client.ReadAsync<MetadataResponse>(ApiKey.Metadata, 12);
        var value = new string('x', 3000);
        const int Records = 60;
        for (var i = 0; i < Records; i++) Assert.Equal(i, await ProduceAsync(client, $"{i}:{value}"));

        // About three batches per fetch: some twenty fetches to catch up; a record produced
        // meanwhile (read-aheads answered before it are older than it) is read all the same.
        var startedBefore = _metrics.ReadAheadsStarted;
        var usedBefore = _metrics.ReadAheadsUsed;
        var seen = new List<(long Offset, string First)>();
        long offset = 0, fetches = 0;
        while (offset < Records + 1)
        {
            var p = await FetchAsync(client, offset, 10_000);
            fetches++;
            Assert.True(fetches < 200, "the consumer made no progress");
            if (offset == 30) Assert.Equal(Records, await ProduceAsync(client, $"{Records}:late"));
            foreach (var (baseOffset, lastOffset, crcValid, first) in TestBatches.Parse(p.Records?.ToArray() ?? []))
            {
                Assert.True(crcValid);
                Assert.Equal(offset, baseOffset);
                seen.Add((baseOffset, first.Split(':')[0]));
                offset = lastOffset + 1;
            }
        }
        Assert.Equal(Enumerable.Range(0, Records + 1).Select(i => ((long)i, i.ToString())), seen);
        var used = _metrics.ReadAheadsUsed - usedBefore;
        Assert.True(used >= fetches - 3, $"{used} of {fetches} fetches answered by a read-ahead");

        // Caught up: no read-ahead is started, and a fetch from elsewhere (a seek back) is
        // answered from that offset (the unused read-ahead, if any, dropped).
        var started = _metrics.ReadAheadsStarted;
        Assert.True(started - startedBefore >= used);
        var atEnd = await FetchAsync(client, Records + 1, 10_000);
        Assert.Equal(0, atEnd.Records?.Length ?? 0);
        Assert.Equal(started, _metrics.ReadAheadsStarted);
        var rewound = await FetchAsync(client, 0, 10_000);
        Assert.Equal(0, TestBatches.Parse(rewound.Records!.Value.Span)[0].BaseOffset);
        var skipped = await FetchAsync(client, 20, 10_000);
        Assert.Equal(20, TestBatches.Parse(skipped.Records!.Value.Span)[0].BaseOffset);
    }
}
