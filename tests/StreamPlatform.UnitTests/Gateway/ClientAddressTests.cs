using System.Net;
using StreamPlatform.Gateway.Kafka;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>client_host as Kafka shows it: Java's InetAddress.toString() of an address without host name.</summary>
public sealed class ClientAddressTests
{
    [Theory]
    [InlineData("127.0.0.1", "/127.0.0.1")]
    [InlineData("10.1.2.3", "/10.1.2.3")]
    [InlineData("::ffff:127.0.0.1", "/127.0.0.1")] // IPv4-mapped: an Inet4Address to Java
    [InlineData("::1", "/0:0:0:0:0:0:0:1")] // Java writes IPv6 uncompressed
    [InlineData("2001:db8::ff00:42:8329", "/2001:db8:0:0:0:ff00:42:8329")]
    [InlineData("fe80::1%3", "/fe80:0:0:0:0:0:0:1%3")]
    public void FormatsTheAddressAsJavaDoes(string address, string expected)
    {
        Assert.Equal(expected, ClientAddress.Format(new IPEndPoint(IPAddress.Parse(address), 50000)));
    }

    [Fact]
    public void AnEndPointWithoutAddressIsEmpty()
    {
        Assert.Equal("", ClientAddress.Format(null));
        Assert.Equal("", ClientAddress.Format(new DnsEndPoint("localhost", 9092)));
    }
}
