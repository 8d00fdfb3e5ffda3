using StreamPlatform.Protos.Records;
using static StreamPlatform.UnitTests.Records.RecordTestData;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Records;

/// <summary>
/// The produce validator's decompression buffers: bounded while held, given back after each
/// validation, and large ones not kept by a pool. Before, 99 KiB gzip bombs (each stopped at the
/// 64 MiB cap) left their buffers in ArrayPool.Shared and a broker at 0.9 GB for good.
/// </summary>
public class DecompressionMemoryTests
{
    private const int MiB = 1024 * 1024;

    /// <summary>A gzip batch of one record whose value is <paramref name="valueBytes"/> zeros: a few KiB on the wire.</summary>
    private static byte[] Bomb(CompressionType codec, int valueBytes)
    {
        using var builder = new RecordBatchBuilder { Compression = codec };
        builder.Append(T, Utf8("bomb"), new byte[valueBytes]);
        return builder.ToArray();
    }

    [Theory]
    [InlineData(CompressionType.Gzip)]
    [InlineData(CompressionType.Lz4)]
    [InlineData(CompressionType.Zstd)]
    [InlineData(CompressionType.Snappy)]
    public void Validating_many_bombs_holds_a_bounded_amount_and_gives_it_all_back(CompressionType codec)
    {
        var memory = new DecompressionMemory(bytesHeldMax: 16 * MiB, waitMsMax: 10_000);
        var bomb = Bomb(codec, 8 * MiB);
        Assert.True(bomb.Length < MiB);
        var options = new RecordBatchValidationOptions { DecompressedBytesMax = 4 * MiB, MaxMessageBytes = 2 * MiB, DecompressionPool = memory };
        for (var i = 0; i < 50; i++)
        {
            Assert.Equal(ErrorCodes.MessageTooLarge, RecordBatchValidator.Validate(bomb, options).ErrorCode);
            Assert.Equal(0, memory.BytesHeld);
        }
        // One validation holds at most the cap plus the half-size buffer it grew from.
        Assert.InRange(memory.BytesHeldPeak, 0, 6 * MiB + 64 * 1024);
    }

    [Fact]
    public void Concurrent_validations_never_hold_more_than_the_limit()
    {
        var memory = new DecompressionMemory(bytesHeldMax: 13 * MiB, waitMsMax: 60_000);
        var bomb = Bomb(CompressionType.Gzip, 8 * MiB);
        var options = new RecordBatchValidationOptions { DecompressedBytesMax = 4 * MiB, MaxMessageBytes = 2 * MiB, DecompressionPool = memory };
        var codes = new System.Collections.Concurrent.ConcurrentBag<short>();
        Parallel.For(0, 64, new ParallelOptions { MaxDegreeOfParallelism = 8 }, _ => codes.Add(RecordBatchValidator.Validate(bomb, options).ErrorCode));
        // A buffer that cannot grow within the limit fails at once (retriable) rather than
        // waiting while it holds bytes: growing validations waiting on each other deadlocked
        // until every one timed out.
        Assert.All(codes, c => Assert.Contains(c, new[] { ErrorCodes.MessageTooLarge, ErrorCodes.RequestTimedOut }));
        Assert.Contains(ErrorCodes.MessageTooLarge, codes);
        Assert.Equal(0, memory.BytesHeld);
        Assert.InRange(memory.BytesHeldPeak, 4 * MiB, 13 * MiB);
    }

    [Fact]
    public void A_thread_holding_bytes_is_not_made_to_wait()
    {
        var memory = new DecompressionMemory(bytesHeldMax: 3 * MiB, waitMsMax: 60_000);
        var first = memory.Rent(2 * MiB);
        var started = Environment.TickCount64;
        // Growing (this thread already holds bytes) past the limit fails at once, no 60 s wait.
        Assert.Equal(ErrorCodes.RequestTimedOut, Assert.Throws<RecordBatchFormatException>(() => memory.Rent(2 * MiB)).ErrorCode);
        Assert.InRange(Environment.TickCount64 - started, 0, 10_000);
        memory.Return(first);
        memory.Return(memory.Rent(3 * MiB));
        Assert.Equal(0, memory.BytesHeld);
    }

    [Fact]
    public void Large_arrays_are_not_kept_and_small_ones_are_reused()
    {
        var memory = new DecompressionMemory();
        var large = memory.Rent(DecompressionMemory.RetainedArrayBytesMax + 1);
        memory.Return(large);
        Assert.NotSame(large, memory.Rent(DecompressionMemory.RetainedArrayBytesMax + 1));
        var small = memory.Rent(1000);
        memory.Return(small);
        Assert.Same(small, memory.Rent(1000));
    }

    [Fact]
    public void A_full_budget_makes_validation_answer_request_timed_out_until_bytes_come_back()
    {
        var memory = new DecompressionMemory(bytesHeldMax: 2 * MiB, waitMsMax: 0);
        var held = memory.Rent(2 * MiB);
        using var builder = new RecordBatchBuilder { Compression = CompressionType.Zstd };
        builder.Append(T, Utf8("k"), Utf8("value"));
        var batch = builder.ToArray();
        var options = new RecordBatchValidationOptions { DecompressionPool = memory };
        var refused = RecordBatchValidator.Validate(batch, options);
        Assert.Equal(ErrorCodes.RequestTimedOut, refused.ErrorCode);
        memory.Return(held);
        Assert.True(RecordBatchValidator.Validate(batch, options).IsValid);
        Assert.Equal(0, memory.BytesHeld);
        // A single buffer above the whole limit can never fit: refused at once.
        Assert.Equal(ErrorCodes.MessageTooLarge, Assert.Throws<RecordBatchFormatException>(() => memory.Rent(3 * MiB)).ErrorCode);
    }
}
