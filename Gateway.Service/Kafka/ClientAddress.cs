using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace StreamPlatform.Gateway.Kafka;

/// <summary>
/// The client's address as Kafka reports it (DescribeGroups / ConsumerGroupDescribe client_host):
/// Java's InetAddress.toString() of the socket's peer, which has no host name, so "/" followed by
/// the address: "/127.0.0.1", "/0:0:0:0:0:0:0:1" (IPv6 in Java's uncompressed form, with
/// "%scope" when scoped). An IPv4-mapped IPv6 peer (dual-stack listener) is an IPv4 address to
/// Java, so it shows as "/127.0.0.1" too.
/// </summary>
public static class ClientAddress
{
    public static string Format(EndPoint? remote)
    {
        if (remote is not IPEndPoint { Address: var address }) return "";
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (address.AddressFamily != AddressFamily.InterNetworkV6) return "/" + address;

        var bytes = address.GetAddressBytes();
        var text = new StringBuilder("/", 48);
        for (var i = 0; i < 16; i += 2)
        {
            if (i > 0) text.Append(':');
            text.Append(((bytes[i] << 8) | bytes[i + 1]).ToString("x", CultureInfo.InvariantCulture));
        }
        if (address.ScopeId != 0) text.Append('%').Append(address.ScopeId.ToString(CultureInfo.InvariantCulture));
        return text.ToString();
    }
}
