using System.Buffers;
using Google.Protobuf;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Protos.Grpc.Broker;

namespace StreamPlatform.UnitTests.Gateway;

public class BrokerFetchResponseTests
{
    private static FetchResponse Sample()
    {
        var response = new FetchResponse();
        response.Results.Add(new PartitionFetchResult
        {
            Topic = "orders", Partition = 3, ErrorCode = 0, HighWatermark = 1L << 40, LastStableOffset = (1L << 40) - 1, LogStartOffset = 17,
            Records = ByteString.CopyFrom(Enumerable.Range(0, 300).Select(i => (byte)i).ToArray()),
            // read_committed: two aborted transactions, one at the extremes of int64.
            AbortedTransactions =
            {
                new AbortedTransaction { ProducerId = 4000, FirstOffset = 17 },
                new AbortedTransaction { ProducerId = long.MaxValue, FirstOffset = long.MinValue },
                new AbortedTransaction(), // both fields 0: an empty message
            },
        });
        // Negative int32/int64 (10-byte varints), no records, a non-ASCII topic.
        response.Results.Add(new PartitionFetchResult { Topic = "tøpic-é", Partition = -1, ErrorCode = -1, HighWatermark = -1, LastStableOffset = -1, LogStartOffset = -1 });
        // Every field at its default: proto3 writes nothing but the empty message.
        response.Results.Add(new PartitionFetchResult());
        response.Results.Add(new PartitionFetchResult { Topic = "big", Partition = int.MaxValue, ErrorCode = 6, HighWatermark = long.MaxValue, LastStableOffset = long.MinValue, Records = ByteString.CopyFrom(new byte[70_000]) });
        return response;
    }

    private static void AssertSame(FetchResponse expected, BrokerFetchResponse actual)
    {
        Assert.Equal(expected.Results.Count, actual.Results.Count);
        for (var i = 0; i < expected.Results.Count; i++)
        {
            var e = expected.Results[i];
            var a = actual.Results[i];
            Assert.Equal(e.Topic, a.Topic);
            Assert.Equal(e.Partition, a.Partition);
            Assert.Equal(e.ErrorCode, a.ErrorCode);
            Assert.Equal(e.HighWatermark, a.HighWatermark);
            Assert.Equal(e.LastStableOffset, a.LastStableOffset);
            Assert.Equal(e.LogStartOffset, a.LogStartOffset);
            Assert.Equal(e.Records.ToByteArray(), a.Records.ToArray());
            if (e.AbortedTransactions.Count == 0) Assert.Null(a.AbortedTransactions);
            else Assert.Equal(e.AbortedTransactions.Select(t => (t.ProducerId, t.FirstOffset)), a.AbortedTransactions!.Select(t => (t.ProducerId, t.FirstOffset)));
        }
    }

    [Fact]
    public void Parses_what_protobuf_serializes()
    {
        var expected = Sample();
        using var parsed = BrokerFetchResponse.Parse(new ReadOnlySequence<byte>(expected.ToByteArray()), ArrayPool<byte>.Shared);
        AssertSame(expected, parsed);
    }

    [Fact]
    public void Parses_an_empty_message_and_a_payload_split_across_segments()
    {
        using (var empty = BrokerFetchResponse.Parse(ReadOnlySequence<byte>.Empty, ArrayPool<byte>.Shared))
            Assert.Empty(empty.Results);

        var expected = Sample();
        var bytes = expected.ToByteArray();
        var first = new Segment(bytes.AsMemory(0, 7));
        var last = first.Append(bytes.AsMemory(7, 500)).Append(bytes.AsMemory(507));
        using var parsed = BrokerFetchResponse.Parse(new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length), ArrayPool<byte>.Shared);
        AssertSame(expected, parsed);
    }

    [Fact]
    public void Skips_unknown_fields_of_every_wire_type_and_keeps_the_last_value_of_a_repeated_field()
    {
        var stream = new MemoryStream();
        var output = new CodedOutputStream(stream);
        WriteUnknowns(output);
        var inner = new MemoryStream();
        var innerOutput = new CodedOutputStream(inner);
        WriteUnknowns(innerOutput);
        innerOutput.WriteTag(1, WireFormat.WireType.LengthDelimited);
        innerOutput.WriteString("first");
        innerOutput.WriteTag(1, WireFormat.WireType.LengthDelimited);
        innerOutput.WriteString("t");
        innerOutput.WriteTag(2, WireFormat.WireType.Varint);
        innerOutput.WriteInt32(5);
        WriteUnknowns(innerOutput);
        innerOutput.WriteTag(7, WireFormat.WireType.LengthDelimited);
        innerOutput.WriteBytes(ByteString.CopyFrom(1, 2, 3));
        // A known field number with an unexpected wire type is skipped, as protobuf treats it as unknown.
        innerOutput.WriteTag(4, WireFormat.WireType.Fixed64);
        innerOutput.WriteFixed64(99);
        innerOutput.Flush();
        output.WriteTag(1, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFrom(inner.ToArray()));
        WriteUnknowns(output);
        output.Flush();
        var bytes = stream.ToArray();

        var expected = FetchResponse.Parser.ParseFrom(bytes);
        Assert.Equal("t", expected.Results.Single().Topic);
        using var parsed = BrokerFetchResponse.Parse(new ReadOnlySequence<byte>(bytes), ArrayPool<byte>.Shared);
        AssertSame(expected, parsed);
    }

    [Fact]
    public void Aborted_transactions_skip_unknown_fields_and_keep_the_last_value_of_a_repeated_field()
    {
        var transaction = new MemoryStream();
        var t = new CodedOutputStream(transaction);
        WriteUnknowns(t);
        t.WriteTag(1, WireFormat.WireType.Varint);
        t.WriteInt64(1);
        t.WriteTag(1, WireFormat.WireType.Varint);
        t.WriteInt64(-3); // the last value wins
        t.WriteTag(2, WireFormat.WireType.Fixed64); // a known field with the wrong wire type: skipped
        t.WriteFixed64(5);
        t.WriteTag(2, WireFormat.WireType.Varint);
        t.WriteInt64(88);
        t.Flush();
        var inner = new MemoryStream();
        var result = new CodedOutputStream(inner);
        result.WriteTag(8, WireFormat.WireType.LengthDelimited);
        result.WriteBytes(ByteString.CopyFrom(transaction.ToArray()));
        result.WriteTag(8, WireFormat.WireType.Varint); // aborted_transactions with the wrong wire type: skipped
        result.WriteInt64(9);
        result.WriteTag(8, WireFormat.WireType.LengthDelimited);
        result.WriteBytes(ByteString.Empty);
        result.Flush();
        var stream = new MemoryStream();
        var output = new CodedOutputStream(stream);
        output.WriteTag(1, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFrom(inner.ToArray()));
        output.Flush();
        var bytes = stream.ToArray();

        var expected = FetchResponse.Parser.ParseFrom(bytes);
        Assert.Equal([(-3L, 88L), (0L, 0L)], expected.Results.Single().AbortedTransactions.Select(x => (x.ProducerId, x.FirstOffset)));
        using var parsed = BrokerFetchResponse.Parse(new ReadOnlySequence<byte>(bytes), ArrayPool<byte>.Shared);
        AssertSame(expected, parsed);
    }

    [Fact]
    public void A_truncated_or_overlong_aborted_transaction_is_rejected()
    {
        var pool = new PoisoningArrayPool();
        // An aborted transaction (8) whose producer id varint is cut off inside its own length.
        byte[] truncatedVarint = [0x0A, 4, 0x42, 2, 0x08, 0x80];
        Assert.Throws<InvalidDataException>(() => BrokerFetchResponse.Parse(new ReadOnlySequence<byte>(truncatedVarint), pool));
        Assert.Throws<InvalidProtocolBufferException>(() => FetchResponse.Parser.ParseFrom(truncatedVarint));
        // An aborted transaction claiming more bytes than its result holds.
        byte[] overlong = [0x0A, 4, 0x42, 9, 0x08, 0x01, .. Enumerable.Repeat((byte)0x08, 12)];
        Assert.Throws<InvalidDataException>(() => BrokerFetchResponse.Parse(new ReadOnlySequence<byte>(overlong), pool));
        // An 11-byte varint inside it.
        byte[] longVarint = [0x0A, 14, 0x42, 12, 0x08, .. Enumerable.Repeat((byte)0xFF, 10), 0x01];
        Assert.Throws<InvalidDataException>(() => BrokerFetchResponse.Parse(new ReadOnlySequence<byte>(longVarint), pool));
        Assert.Equal(pool.Rented, pool.Returned);
    }

    private static void WriteUnknowns(CodedOutputStream output)
    {
        output.WriteTag(100, WireFormat.WireType.Varint);
        output.WriteInt64(-5);
        output.WriteTag(101, WireFormat.WireType.Fixed64);
        output.WriteFixed64(ulong.MaxValue);
        output.WriteTag(102, WireFormat.WireType.Fixed32);
        output.WriteFixed32(7);
        output.WriteTag(536_870_911, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFrom(new byte[200]));
    }

    [Fact]
    public void Rejects_every_truncation_protobuf_rejects_and_returns_the_buffer()
    {
        var bytes = Sample().ToByteArray();
        var pool = new PoisoningArrayPool();
        var rejected = 0;
        for (var length = 0; length < bytes.Length; length++)
        {
            var prefix = bytes.AsMemory(0, length);
            bool protobufAccepts;
            try
            {
                FetchResponse.Parser.ParseFrom(prefix.Span);
                protobufAccepts = true;
            }
            catch (InvalidProtocolBufferException)
            {
                protobufAccepts = false;
            }
            if (protobufAccepts)
            {
                BrokerFetchResponse.Parse(new ReadOnlySequence<byte>(prefix), pool).Dispose();
            }
            else
            {
                Assert.Throws<InvalidDataException>(() => BrokerFetchResponse.Parse(new ReadOnlySequence<byte>(prefix), pool));
                rejected++;
            }
        }
        Assert.True(rejected > bytes.Length / 2, $"only {rejected} of {bytes.Length} prefixes rejected");
        Assert.Equal(pool.Rented, pool.Returned);
    }

    [Theory]
    [InlineData(0x7FFF_FFFFUL)] // int.MaxValue
    [InlineData(0x8000_0000UL)] // int.MaxValue + 1: negative as an int
    [InlineData(0xFFFF_FFFFUL)]
    [InlineData(0xFFFF_FFFF_FFFF_FFFFUL)] // -1 as a 10-byte varint
    [InlineData(1UL << 63)]
    public void Lengths_near_and_past_int_range_are_rejected_at_every_level(ulong length)
    {
        var pool = new PoisoningArrayPool();
        byte[] trailer = [.. Enumerable.Repeat((byte)0, 64)];
        // Top level: results (1) of that length.
        Assert.Throws<InvalidDataException>(() => BrokerFetchResponse.Parse(new ReadOnlySequence<byte>([0x0A, .. ProtoBytes.Varint(length), .. trailer]), pool));
        // Nested: a result whose records (7) claim that length, inside a result of 2 + its varint bytes.
        byte[] inner = [0x3A, .. ProtoBytes.Varint(length)];
        Assert.Throws<InvalidDataException>(() => BrokerFetchResponse.Parse(new ReadOnlySequence<byte>([0x0A, .. ProtoBytes.Varint((ulong)inner.Length), .. inner, .. trailer]), pool));
        // An unknown length-delimited field (15) of that length is not skipped past the end either.
        Assert.Throws<InvalidDataException>(() => BrokerFetchResponse.Parse(new ReadOnlySequence<byte>([15 << 3 | 2, .. ProtoBytes.Varint(length), .. trailer]), pool));
        Assert.Equal(pool.Rented, pool.Returned);
    }

    [Fact]
    public void A_nested_length_past_its_parent_is_rejected_even_when_the_payload_has_the_bytes()
    {
        var pool = new PoisoningArrayPool();
        // Result of 4 bytes: records (7) claim 10 bytes, which exist in the payload after the result but not inside it.
        byte[] payload = [0x0A, 4, 0x3A, 10, 1, 2, .. Enumerable.Repeat((byte)0x08, 20)];
        Assert.Throws<InvalidDataException>(() => BrokerFetchResponse.Parse(new ReadOnlySequence<byte>(payload), pool));
        Assert.Throws<InvalidProtocolBufferException>(() => FetchResponse.Parser.ParseFrom(payload));
        Assert.Equal(pool.Rented, pool.Returned);
    }

    [Fact]
    public void Random_and_mutated_input_either_parses_or_throws_InvalidDataException()
    {
        var random = new Random(20261123);
        var valid = Sample().ToByteArray();
        var pool = new PoisoningArrayPool();
        var parsedCount = 0;
        for (var i = 0; i < 20_000; i++)
        {
            byte[] input;
            if (i % 2 == 0)
            {
                input = new byte[random.Next(0, 64)];
                random.NextBytes(input);
            }
            else
            {
                input = valid[..random.Next(0, valid.Length + 1)];
                for (var m = random.Next(1, 4); m > 0 && input.Length > 0; m--)
                    input[random.Next(input.Length)] = (byte)random.Next(256);
            }
            try
            {
                using var parsed = BrokerFetchResponse.Parse(new ReadOnlySequence<byte>(input), pool);
                foreach (var r in parsed.Results) Assert.InRange(r.Records.Length, 0, input.Length);
                parsedCount++;
            }
            catch (InvalidDataException)
            {
                // the only failure allowed
            }
        }
        Assert.InRange(parsedCount, 1, 19_999); // both outcomes exercised
        Assert.Equal(pool.Rented, pool.Returned);
    }

    [Fact]
    public void Dispose_returns_the_buffer_once()
    {
        var pool = new PoisoningArrayPool();
        var parsed = BrokerFetchResponse.Parse(new ReadOnlySequence<byte>(Sample().ToByteArray()), pool);
        Assert.Equal(1, pool.Rented);
        parsed.Dispose();
        parsed.Dispose();
        Assert.Equal(1, pool.Returned);
    }

    [Fact]
    public void Method_has_the_generated_full_name_so_the_wire_is_unchanged()
    {
        Assert.Equal("/streamplatform.broker.BrokerService/Fetch", BrokerFetchResponse.Method.FullName);
        Assert.NotNull(BrokerService.Descriptor.FindMethodByName("Fetch"));
        var request = new FetchRequest { MaxWaitMs = 500, MinBytes = 1, Partitions = { new PartitionFetch { Topic = "t", Partition = 2, FetchOffset = 9 } } };
        var serialized = Grpc.Core.Marshallers.Create<FetchRequest>(r => r.ToByteArray(), FetchRequest.Parser.ParseFrom).Serializer(request);
        var context = new TestSerializationContext();
        BrokerFetchResponse.Method.RequestMarshaller.ContextualSerializer(request, context);
        Assert.Equal(serialized, context.Written.WrittenSpan.ToArray());
    }

    private sealed class TestSerializationContext : Grpc.Core.SerializationContext
    {
        public ArrayBufferWriter<byte> Written { get; } = new();
        public override void SetPayloadLength(int payloadLength) { }
        public override IBufferWriter<byte> GetBufferWriter() => Written;
        public override void Complete() { }
    }
}
