using System.Buffers;
using Google.Protobuf;
using StreamPlatform.Broker.Replication;
using StreamPlatform.Protos.Grpc.Broker;

namespace StreamPlatform.UnitTests.Replication;

public sealed class PooledReplicaFetchResponseTests
{
    private static ReplicaFetchResponse Sample() => new()
    {
        Results =
        {
            new ReplicaFetchPartitionResult
            {
                Topic = "tópico", Partition = 7, ErrorCode = 0, HighWatermark = 12, LogStartOffset = 3, LogEndOffset = 20,
                DivergingEpoch = -1, DivergingEndOffset = -1, Records = ByteString.CopyFrom(Enumerable.Range(0, 300_000).Select(i => (byte)i).ToArray()),
            },
            new ReplicaFetchPartitionResult
            {
                Topic = "t", Partition = 0, ErrorCode = 74, HighWatermark = -1, LogStartOffset = -1, LogEndOffset = -1, DivergingEpoch = 4, DivergingEndOffset = 99,
            },
        },
    };

    [Fact]
    public void Parses_what_the_generated_code_writes_with_records_in_rented_arrays_returned_on_dispose()
    {
        var original = Sample();
        var bytes = original.ToByteArray();
        var pool = new CountingPool();
        using (var parsed = PooledReplicaFetchResponse.Parse(new ReadOnlySequence<byte>(bytes), pool))
        {
            Assert.Equal(original, parsed.Response);
            Assert.Equal(1, pool.Outstanding);
        }
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public void Malformed_input_throws_and_returns_what_it_rented()
    {
        var bytes = Sample().ToByteArray();
        var pool = new CountingPool();
        // Cut inside the second result: the first one's records were rented already.
        Assert.Throws<InvalidDataException>(() => PooledReplicaFetchResponse.Parse(new ReadOnlySequence<byte>(bytes, 0, bytes.Length - 3), pool));
        Assert.Equal(0, pool.Outstanding);
    }

    private sealed class CountingPool : ArrayPool<byte>
    {
        public int Outstanding;

        public override byte[] Rent(int minimumLength)
        {
            Interlocked.Increment(ref Outstanding);
            return new byte[minimumLength];
        }

        public override void Return(byte[] array, bool clearArray = false) => Interlocked.Decrement(ref Outstanding);
    }
}
