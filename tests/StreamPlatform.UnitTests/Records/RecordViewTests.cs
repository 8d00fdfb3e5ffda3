using StreamPlatform.Protos.Records;
using static StreamPlatform.UnitTests.Records.RecordTestData;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Records;

public class RecordViewTests
{
    [Theory]
    [MemberData(nameof(RecordBatchCodecTests.AllCodecs), MemberType = typeof(RecordBatchCodecTests))]
    public void Views_agree_with_materialized_records(CompressionType codec)
    {
        using var builder = new RecordBatchBuilder { Compression = codec, BaseOffset = 40 };
        builder.Append(T, Utf8("key-0"), Utf8("value-0"), [new("h1", Utf8("x")), new("h2", null)])
            .Append(T + 5, null, Utf8("v1"))
            .Append(T + 7, Utf8("k2"), null)
            .Append(T + 9, Utf8("k3"), Array.Empty<byte>());
        var bytes = builder.ToArray();
        using var decoded = RecordBatchReader.Read(bytes);

        var i = 0;
        var records = RecordBatchReader.EnumerateRecords(bytes, out var owner);
        try
        {
            Assert.Equal(codec != CompressionType.None, owner is not null);
            foreach (var view in records)
            {
                var r = decoded.Records[i++];
                Assert.Equal(r.Offset, view.Offset);
                Assert.Equal(r.Timestamp, view.Timestamp);
                Assert.Equal(r.Key is null, view.KeyIsNull);
                Assert.Equal(r.Value is null, view.ValueIsNull);
                if (r.Key is { } k) Assert.True(view.Key.SequenceEqual(k.Span));
                if (r.Value is { } v) Assert.True(view.Value.SequenceEqual(v.Span));
                Assert.Equal(r.Headers.Count, view.HeaderCount);
                var h = 0;
                foreach (var header in view.GetHeaders())
                {
                    Assert.Equal(r.Headers[h].Key, header.KeyString);
                    Assert.Equal(r.Headers[h].Value is null, header.ValueIsNull);
                    h++;
                }
                Assert.Equal(r.Headers.Count, h);
            }
        }
        finally
        {
            owner?.Dispose();
        }
        Assert.Equal(4, i);
    }

    [Fact]
    public void Views_raise_format_errors_for_leftover_bytes()
    {
        var bytes = Wrap(FixtureRecords, CompressionType.None, count: 3, lastOffsetDelta: 2, T, T + 9);
        var seen = 0;
        var ex = Assert.Throws<RecordBatchFormatException>(() =>
        {
            foreach (var view in RecordBatchReader.EnumerateRecords(bytes, out _)) seen++;
        });
        Assert.Equal(3, seen);
        Assert.Equal(ErrorCodes.InvalidRecord, ex.ErrorCode);
    }
}
