using StreamPlatform.Protos.Kafka;

namespace StreamPlatform.UnitTests.Kafka;

public sealed class KafkaPrimitiveTests
{
    private static KafkaReader Reader(params byte[] bytes) => new(bytes);

    [Theory]
    [InlineData(0, new byte[] { 0x00 })]
    [InlineData(-1, new byte[] { 0x01 })]
    [InlineData(1, new byte[] { 0x02 })]
    [InlineData(-64, new byte[] { 0x7F })]
    [InlineData(64, new byte[] { 0x80, 0x01 })]
    [InlineData(int.MaxValue, new byte[] { 0xFE, 0xFF, 0xFF, 0xFF, 0x0F })]
    [InlineData(int.MinValue, new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0x0F })]
    public void VarintIsZigzag(int value, byte[] wire)
    {
        var buffer = new byte[KafkaWriter.SizeOfVarint(value)];
        var writer = new KafkaWriter(buffer);
        writer.WriteVarint(value);
        Assert.Equal(wire, buffer);
        var reader = Reader(wire);
        Assert.Equal(value, reader.ReadVarint());
    }

    [Theory]
    [InlineData(long.MaxValue)]
    [InlineData(long.MinValue)]
    [InlineData(0L)]
    [InlineData(-300L)]
    public void VarlongRoundTrips(long value)
    {
        var buffer = new byte[KafkaWriter.SizeOfVarlong(value)];
        var writer = new KafkaWriter(buffer);
        writer.WriteVarlong(value);
        var reader = new KafkaReader(buffer);
        Assert.Equal(value, reader.ReadVarlong());
        Assert.Equal(0, reader.Remaining);
    }

    [Fact]
    public void OverlongVarintsAreMalformed()
    {
        Assert.Throws<KafkaProtocolException>(() => Reader(0x80, 0x80, 0x80, 0x80, 0x80, 0x01).ReadUnsignedVarint());
        Assert.Throws<KafkaProtocolException>(() => Reader(0xFF, 0xFF, 0xFF, 0xFF, 0x1F).ReadUnsignedVarint());
        Assert.Throws<KafkaProtocolException>(() => Reader(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01).ReadVarlong());
        Assert.Throws<KafkaProtocolException>(() => Reader(0x80, 0x80).ReadVarint());
    }

    [Fact]
    public void InvalidUtf8IsMalformed()
    {
        Assert.Throws<KafkaProtocolException>(() => Reader(0x00, 0x02, 0xC3, 0x28).ReadString(compact: false));
        Assert.Throws<KafkaProtocolException>(() => Reader(0x02, 0xFF).ReadNullableString(compact: true));
        Assert.Equal("é", Reader(0x03, 0xC3, 0xA9).ReadString(compact: true));
    }

    [Fact]
    public void NullsAreMinusOneOrCompactZero()
    {
        Assert.Null(Reader(0xFF, 0xFF).ReadNullableString(compact: false));
        Assert.Null(Reader(0x00).ReadNullableString(compact: true));
        Assert.Null(Reader(0xFF, 0xFF, 0xFF, 0xFF).ReadNullableBytes(compact: false));
        Assert.Null(Reader(0x00).ReadNullableBytes(compact: true));
        Assert.Equal(-1, Reader(0xFF, 0xFF, 0xFF, 0xFF).ReadArrayLength(compact: false));
        Assert.Equal(-1, Reader(0x00).ReadArrayLength(compact: true));
        Assert.Throws<KafkaProtocolException>(() => Reader(0xFF, 0xFF).ReadString(compact: false));
        Assert.Throws<KafkaProtocolException>(() => Reader(0x00).ReadBytes(compact: true));
        Assert.Throws<KafkaProtocolException>(() => Reader(0xFF, 0xFE).ReadNullableString(compact: false));
    }

    [Fact]
    public void LengthsAreCheckedAgainstRemainingBytesBeforeAllocating()
    {
        Assert.Throws<KafkaProtocolException>(() => Reader(0x7F, 0xFF, 0xFF, 0xFF).ReadArrayLength(compact: false));
        Assert.Throws<KafkaProtocolException>(() => Reader(0xFF, 0xFF, 0xFF, 0xFF, 0x0F).ReadArrayLength(compact: true));
        Assert.Throws<KafkaProtocolException>(() => Reader(0x00, 0x00, 0x00, 0x03, 1, 2).ReadBytes(compact: false));
        Assert.Throws<KafkaProtocolException>(() => Reader(0x00, 0x05, (byte)'a').ReadString(compact: false));
        Assert.Throws<KafkaProtocolException>(() => Reader(0x05).ReadTaggedFieldCount());
        Assert.Throws<KafkaProtocolException>(() => Reader(0x01, 0x05, 0x00).ReadTaggedField());
        Assert.Equal(2, Reader(0x00, 0x00, 0x00, 0x02, 0, 0).ReadArrayLength(compact: false));
    }

    [Fact]
    public void ShortReadsThrowProtocolException()
    {
        Assert.Throws<KafkaProtocolException>(() => Reader(0x01).ReadInt16());
        Assert.Throws<KafkaProtocolException>(() => Reader(1, 2, 3).ReadInt32());
        Assert.Throws<KafkaProtocolException>(() => Reader(new byte[7]).ReadInt64());
        Assert.Throws<KafkaProtocolException>(() => Reader(new byte[15]).ReadUuid());
        Assert.Throws<KafkaProtocolException>(() => Reader().ReadBool());
    }

    [Fact]
    public void UuidIsBigEndian()
    {
        var wire = Enumerable.Range(0, 16).Select(i => (byte)i).ToArray();
        var uuid = new KafkaReader(wire).ReadUuid();
        Assert.Equal("00010203-0405-0607-0809-0a0b0c0d0e0f", uuid.ToString());
        var buffer = new byte[16];
        var writer = new KafkaWriter(buffer);
        writer.WriteUuid(uuid);
        Assert.Equal(wire, buffer);
    }

    [Fact]
    public void WriterRejectsOverflowAndOversizedClassicStrings()
    {
        Assert.Throws<KafkaProtocolException>(() =>
        {
            var writer = new KafkaWriter(new byte[3]);
            writer.WriteInt32(1);
        });
        Assert.Throws<KafkaProtocolException>(() =>
        {
            var writer = new KafkaWriter(new byte[40000]);
            writer.WriteString(new string('x', 32768), compact: false);
        });
    }
}
