using System.Buffers;
using Google.Protobuf;
using Grpc.Core;
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
using StreamPlatform.UnitTests.Storage;

namespace StreamPlatform.UnitTests.Broker;

public sealed class PooledProduceStreamRequestTests
{
    private const long T0 = 1_700_000_000_000;

    private static ProduceStreamRequest Sample(long id = 77) => new()
    {
        RequestId = id,
        Request = new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 30_000,
            TransactionalId = "tx-ü",
            ApiVersion = 11,
            // The gateway's span context (W3C): the broker's append span is its child.
            Traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            Partitions =
            {
                new PartitionProduce { Topic = "orders-é", Partition = 0, Records = ByteString.Empty },
                new PartitionProduce { Topic = "orders-é", Partition = 5, Records = ByteString.CopyFrom(Enumerable.Range(0, 10).Select(i => (byte)i).ToArray()) },
                new PartitionProduce { Topic = "b", Partition = 1_000_000, Records = ByteString.CopyFrom(Enumerable.Range(0, 200_000).Select(i => (byte)(i * 31)).ToArray()) },
            },
        },
    };

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(1 << 20)]
    public void Parses_like_the_generated_parser_across_segments_and_skips_unknown_fields(int segmentBytes)
    {
        var message = Sample();
        // Unknown fields the generated parser skips too: varint 9, fixed64 10, bytes 11, fixed32 12.
        var unknown = new byte[] { 9 << 3 | 0, 0x96, 0x01, 10 << 3 | 1, 1, 2, 3, 4, 5, 6, 7, 8, 11 << 3 | 2, 2, 0xAA, 0xBB, 12 << 3 | 5, 1, 2, 3, 4 };
        var bytes = unknown.Concat(message.ToByteArray()).Concat(unknown).ToArray();
        var pool = new PoisoningArrayPool();
        var parsed = PooledProduceStreamRequest.Parse(Segment.Split(bytes, segmentBytes), pool);
        Assert.Equal(77, parsed.RequestId);
        Assert.Equal(ProduceStreamRequest.Parser.ParseFrom(bytes).Request, parsed.Request);
        Assert.Equal(2, pool.Rented); // empty records need no buffer
        parsed.Dispose();
        parsed.Dispose(); // once only
        Assert.Empty(pool.Outstanding);
    }

    [Fact]
    public void Malformed_input_throws_and_returns_what_it_rented()
    {
        var bytes = Sample().ToByteArray();
        var pool = new PoisoningArrayPool();
        // A whole request (buffers rented), then a truncated tag.
        Assert.Throws<InvalidDataException>(() => PooledProduceStreamRequest.Parse(new ReadOnlySequence<byte>([.. bytes, 0x80]), pool));
        Assert.Equal(2, pool.Rented);
        // A length past the end of the message.
        Assert.Throws<InvalidDataException>(() => PooledProduceStreamRequest.Parse(new ReadOnlySequence<byte>(bytes, 0, bytes.Length - 100), pool));
        Assert.Throws<InvalidDataException>(() => PooledProduceStreamRequest.Parse(new ReadOnlySequence<byte>([0x08, 0x80]), pool)); // truncated varint
        Assert.Throws<InvalidDataException>(() => PooledProduceStreamRequest.Parse(new ReadOnlySequence<byte>([0x0B]), pool)); // group wire type
        Assert.True(pool.Rented > 0);
        Assert.Empty(pool.Outstanding);
    }

    [Theory]
    [InlineData(0x7FFF_FFFFUL)]
    [InlineData(0x8000_0000UL)]
    [InlineData(0xFFFF_FFFFUL)]
    [InlineData(0xFFFF_FFFF_FFFF_FFFFUL)] // -1 as a 10-byte varint
    [InlineData(1UL << 63)]
    public void Lengths_near_and_past_int_range_are_rejected_at_every_level_and_nothing_stays_rented(ulong length)
    {
        var pool = new PoisoningArrayPool();
        byte[] trailer = [.. Enumerable.Repeat((byte)0, 64)];
        // A valid first partition (rents a buffer), then the partition whose records claim the length.
        byte[] good = [3 << 3 | 2, 3, 1, 2, 3];
        byte[] bad = [3 << 3 | 2, .. ProtoBytes.Varint(length)];
        byte[] request = [4 << 3 | 2, (byte)good.Length, .. good, 4 << 3 | 2, (byte)bad.Length, .. bad];
        Assert.Throws<InvalidDataException>(() => PooledProduceStreamRequest.Parse(new ReadOnlySequence<byte>([0x12, (byte)request.Length, .. request, .. trailer]), pool));
        Assert.Equal(1, pool.Rented);
        // The request field (2) itself, and an unknown field (15), of that length.
        Assert.Throws<InvalidDataException>(() => PooledProduceStreamRequest.Parse(new ReadOnlySequence<byte>([0x12, .. ProtoBytes.Varint(length), .. trailer]), pool));
        Assert.Throws<InvalidDataException>(() => PooledProduceStreamRequest.Parse(new ReadOnlySequence<byte>([15 << 3 | 2, .. ProtoBytes.Varint(length), .. trailer]), pool));
        Assert.Empty(pool.Outstanding);
    }

    [Fact]
    public void A_nested_length_past_its_parent_is_rejected_even_when_the_payload_has_the_bytes()
    {
        var pool = new PoisoningArrayPool();
        // Request of 4 bytes whose partition (4) claims 10: the bytes exist after the request, not inside it.
        byte[] payload = [0x12, 4, 4 << 3 | 2, 10, 1, 2, .. Enumerable.Repeat((byte)0x08, 20)];
        Assert.Throws<InvalidDataException>(() => PooledProduceStreamRequest.Parse(new ReadOnlySequence<byte>(payload), pool));
        Assert.Throws<InvalidProtocolBufferException>(() => ProduceStreamRequest.Parser.ParseFrom(payload));
        Assert.Empty(pool.Outstanding);
    }

    [Fact]
    public async Task The_stream_returns_each_message_buffers_only_after_its_append()
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(T0));
        using var dir = new TempDir();
        using var watcherChannel = GrpcChannel.ForAddress("http://127.0.0.1:9"); // never called: the watcher is fed by Apply
        await using var watcher = new MetadataWatcher(watcherChannel, "test", NullLogger.Instance, time);
        var logs = new LogManager(dir.Path, time, NullLogger<LogManager>.Instance);
        logs.LoadAll();
        var replicas = new ReplicaManager(logs, Options.Create(new BrokerOptions { BrokerId = 1 }), time);
        watcher.Applied += m => { logs.ApplyMetadata(m, 1); replicas.ApplyMetadata(m); };
        using var metrics = new BrokerMetrics(logs);
        try
        {
            var topic = new TopicInfo { Name = "a", TopicId = TopicIds.ToByteString(Guid.NewGuid()), ReplicationFactor = 1 };
            for (var p = 0; p < 2; p++) topic.Partitions.Add(new PartitionInfo { Partition = p, Leader = 1, Replicas = { 1 }, Isr = { 1 } });
            watcher.Apply(new MetadataSnapshot { MetadataEpoch = 1, ClusterId = "c", Brokers = { new BrokerInfo { BrokerId = 1, GrpcEndpoint = "http://127.0.0.1:1" } }, Topics = { topic } });
            var service = new BrokerGrpcService(logs, replicas, Options.Create(new BrokerOptions { BrokerId = 1 }), time, metrics);

            var pool = new PoisoningArrayPool();
            var messages = new List<PooledProduceStreamRequest>();
            for (var i = 0; i < 20; i++)
            {
                var request = new ProduceStreamRequest { RequestId = i + 1, Request = new ProduceRequest { Acks = 1, TimeoutMs = 1000 } };
                for (var p = 0; p < 2; p++)
                    request.Request.Partitions.Add(new PartitionProduce { Topic = "a", Partition = p, Records = ByteString.CopyFrom(TestBatches.Build(T0, $"m{i}-p{p}", new string('v', 5000))) });
                messages.Add(PooledProduceStreamRequest.Parse(Segment.Split(request.ToByteArray(), 4096), pool));
            }
            var writer = new ListWriter();
            await service.ProduceStreamAsync(new ListReader(messages), writer, default);

            Assert.Empty(pool.Outstanding); // every buffer went back
            Assert.Equal(Enumerable.Range(1, 20).Select(i => (long)i), writer.Written.Select(w => w.RequestId));
            Assert.All(writer.Written, w => Assert.All(w.Response.Results, r => Assert.Equal(0, r.ErrorCode)));
            for (var p = 0; p < 2; p++)
            {
                var fetch = new FetchRequest { MaxBytes = 1 << 20, ReplicaId = -1, Partitions = { new PartitionFetch { Topic = "a", Partition = p, PartitionMaxBytes = 1 << 20, CurrentLeaderEpoch = -1 } } };
                var data = (await service.FetchAsync(fetch, default)).Results.Single();
                var batches = TestBatches.Parse(data.Records.Span);
                Assert.All(batches, b => Assert.True(b.CrcValid)); // a buffer returned before its write would be 0xEE here
                Assert.Equal(Enumerable.Range(0, 20).Select(i => $"m{i}-p{p}"), batches.Select(b => b.FirstValue));
            }
        }
        finally
        {
            logs.CloseAll();
        }
    }
}
