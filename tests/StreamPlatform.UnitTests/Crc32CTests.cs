using System.Text;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.UnitTests;

public class Crc32CTests
{
    [Theory]
    // Check values of CRC-32C (RFC 3720 appendix B.4 and the common "123456789" check).
    [InlineData("123456789", 0xE3069283u)]
    [InlineData("", 0x00000000u)]
    public void Known_check_values(string input, uint expected)
    {
        Assert.Equal(expected, Crc32C.Compute(Encoding.ASCII.GetBytes(input)));
    }

    [Fact]
    public void Hardware_and_software_paths_agree()
    {
        var data = new byte[1031];
        new Random(42).NextBytes(data);
        for (var len = 0; len < data.Length; len += 97)
        {
            var span = data.AsSpan(0, len);
            Assert.Equal(~Crc32C.AppendSoftware(0xFFFFFFFFu, span), Crc32C.Compute(span));
        }
    }

    [Fact]
    public void Rfc3720_32_bytes_of_zeros()
    {
        Assert.Equal(0x8A9136AAu, Crc32C.Compute(new byte[32]));
    }
}
