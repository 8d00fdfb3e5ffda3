using System.Net;

namespace StreamPlatform.Gateway.Kafka;

/// <summary>
/// Kafka connections open at once, in total (Kafka's max.connections) and per client IP
/// address (max.connections.per.ip). A connection over either limit is refused: Kestrel has
/// already accepted it, so it is closed at once without a byte read (Kafka closes a connection
/// over the per-IP limit the same way; over its broker-wide limit Kafka stops accepting, which
/// leaves clients waiting in the listen backlog instead).
/// </summary>
public sealed class ConnectionLimiter(GatewayOptions options)
{
    private readonly object _gate = new();
    private readonly Dictionary<IPAddress, int> _byAddress = new();
    private int _total;

    public int Open
    {
        get { lock (_gate) return _total; }
    }

    /// <summary>Counts a new connection; null when admitted, else why not ("max_connections" or "max_connections_per_ip").</summary>
    public string? TryAdmit(IPAddress? address)
    {
        lock (_gate)
        {
            if (_total >= options.MaxConnections) return "max_connections";
            var fromAddress = 0;
            if (address is not null && _byAddress.TryGetValue(address, out fromAddress) && fromAddress >= options.MaxConnectionsPerIp)
                return "max_connections_per_ip";
            _total++;
            if (address is not null) _byAddress[address] = fromAddress + 1;
            return null;
        }
    }

    /// <summary>Uncounts a connection <see cref="TryAdmit"/> admitted.</summary>
    public void Release(IPAddress? address)
    {
        lock (_gate)
        {
            _total--;
            if (address is null || !_byAddress.TryGetValue(address, out var n)) return;
            if (n <= 1) _byAddress.Remove(address);
            else _byAddress[address] = n - 1;
        }
    }
}
