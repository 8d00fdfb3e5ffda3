using System.Buffers.Binary;
using StreamPlatform.Protos.Records;
using StreamPlatform.UnitTests.Storage;

namespace StreamPlatform.UnitTests.Records;

/// <summary>RecordBatchHeader.NextOffsetAfter: the offset a consumer fetches after the batches it got.</summary>
public sealed class NextOffsetAfterTests
{
    private static byte[] At(long baseOffset, params string[] values)
    {
        var batch = TestBatches.Build(0, values);
        BinaryPrimitives.WriteInt64BigEndian(batch, baseOffset);
        return batch;
    }

    [Fact]
    public void After_several_whole_batches_it_is_the_last_ones_last_offset_plus_one()
    {
        byte[] batches = [.. At(10, "a", "b"), .. At(12, "c"), .. At(20, "d", "e", "f")];
        Assert.Equal(23, RecordBatchHeader.NextOffsetAfter(batches));
        Assert.Equal(12, RecordBatchHeader.NextOffsetAfter(At(10, "a", "b")));
    }

    [Fact]
    public void A_torn_tail_is_ignored_and_nothing_whole_is_null()
    {
        var first = At(5, "a");
        var second = At(6, "b", "c");
        for (var cut = 1; cut < second.Length; cut++)
            Assert.Equal(6, RecordBatchHeader.NextOffsetAfter([.. first, .. second.AsSpan(0, cut)]));
        Assert.Null(RecordBatchHeader.NextOffsetAfter([]));
        Assert.Null(RecordBatchHeader.NextOffsetAfter(second.AsSpan(0, second.Length - 1)));
    }

    [Fact]
    public void Impossible_lengths_and_other_magics_are_null_never_an_exception()
    {
        var batch = At(0, "a");
        var negative = batch.ToArray();
        BinaryPrimitives.WriteInt32BigEndian(negative.AsSpan(8), -5);
        Assert.Null(RecordBatchHeader.NextOffsetAfter(negative));
        var tooShort = batch.ToArray();
        BinaryPrimitives.WriteInt32BigEndian(tooShort.AsSpan(8), RecordBatchHeader.Size - RecordBatchHeader.LogOverhead - 1);
        Assert.Null(RecordBatchHeader.NextOffsetAfter([.. tooShort, .. batch]));
        var magic1 = batch.ToArray();
        magic1[RecordBatchHeader.MagicOffset] = 1;
        Assert.Null(RecordBatchHeader.NextOffsetAfter(magic1));

        // Seeded garbage: any answer, never a throw.
        var random = new Random(15);
        for (var i = 0; i < 2000; i++)
        {
            var bytes = new byte[random.Next(0, 200)];
            random.NextBytes(bytes);
            if (bytes.Length > RecordBatchHeader.MagicOffset && random.Next(2) == 0) bytes[RecordBatchHeader.MagicOffset] = 2;
            Assert.Null(Xunit.Record.Exception(() => RecordBatchHeader.NextOffsetAfter(bytes)));
        }
    }
}
