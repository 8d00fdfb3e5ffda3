using System.Diagnostics.Metrics;
using StreamPlatform.Gateway.Kafka;
using StreamPlatform.ServiceDefaults;

namespace StreamPlatform.Gateway;

/// <summary>The "StreamPlatform.Gateway" meter, plus the counters GetStatus reports.</summary>
public sealed class GatewayMetrics : IDisposable
{
    public const string MeterName = "StreamPlatform.Gateway";

    private readonly Meter _meter;
    private readonly UpDownCounter<long> _connections;
    private readonly Counter<long> _requests;
    private readonly Histogram<double> _latencyMs;
    private readonly Counter<long> _bytesIn;
    private readonly Counter<long> _bytesOut;
    private readonly Counter<long> _rejectedConnections;
    private readonly Counter<long> _readAhead;
    private readonly RequestMemoryBudget? _requestBudget;
    private int _openConnections;
    private long _requestsTotal;
    private int _mutedConnections;
    private long _queuedResponseBytes;
    private long _readAheadsStarted;
    private long _readAheadsUsed;

    /// <param name="requestBudget">The gateway's request budget, reported as gateway.request.bytes.held (none in some tests).</param>
    public GatewayMetrics(RequestMemoryBudget? requestBudget = null)
    {
        _requestBudget = requestBudget;
        _meter = Telemetry.CreateMeter("Gateway");
        _connections = _meter.CreateUpDownCounter<long>("gateway.connections.open", "{connection}", "Open Kafka client connections.");
        _requests = _meter.CreateCounter<long>("gateway.requests", "{request}", "Kafka requests handled, by api.");
        _latencyMs = _meter.CreateHistogram<double>("gateway.request.duration", "ms", "Time from a request frame being read to its response being ready.");
        _bytesIn = _meter.CreateCounter<long>("gateway.bytes.in", "By", "Request bytes read from clients.");
        _bytesOut = _meter.CreateCounter<long>("gateway.bytes.out", "By", "Response bytes written to clients.");
        _rejectedConnections = _meter.CreateCounter<long>("gateway.connections.closed_on_error", "{connection}", "Connections refused or closed by the gateway, by reason (protocol violation, limit, timeout).");
        _readAhead = _meter.CreateCounter<long>("gateway.fetch.read_ahead", "{fetch}",
            "Broker fetches started ahead of a consumer's next Fetch (Routing/FetchReadAhead.cs), by outcome: started; used (it answered that Fetch); " +
            "refetched (taken, but with too little data or an error, so the broker was asked again). Started minus the other two were unused: the next Fetch asked something else, or none came.");
        _meter.CreateObservableGauge("gateway.connections.muted", () => MutedConnections, "{connection}",
            "Connections not reading requests: waiting for request budget or for the client to take its responses.");
        _meter.CreateObservableGauge("gateway.response.bytes.queued", () => QueuedResponseBytes, "By",
            "Serialized responses waiting to be sent, over all connections.");
        _meter.CreateObservableGauge("gateway.request.bytes.held", () => RequestBytesHeld, "By",
            "Request bytes reserved from the gateway-wide budget (Gateway:MaxInFlightRequestBytes), partly received frames included.");
    }

    public int OpenConnections => Volatile.Read(ref _openConnections);
    public long RequestsTotal => Interlocked.Read(ref _requestsTotal);
    public int MutedConnections => Volatile.Read(ref _mutedConnections);
    public long QueuedResponseBytes => Interlocked.Read(ref _queuedResponseBytes);
    public long RequestBytesHeld => _requestBudget?.InUseBytes ?? 0;

    public void ConnectionMuted() => Interlocked.Increment(ref _mutedConnections);
    public void ConnectionUnmuted() => Interlocked.Decrement(ref _mutedConnections);
    public void ResponseBytesQueued(long bytes) => Interlocked.Add(ref _queuedResponseBytes, bytes);

    public void ConnectionOpened() { Interlocked.Increment(ref _openConnections); _connections.Add(1); }
    public void ConnectionClosed() { Interlocked.Decrement(ref _openConnections); _connections.Add(-1); }
    public void ConnectionRejected(string reason) => _rejectedConnections.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void RequestCompleted(string api, double elapsedMs)
    {
        Interlocked.Increment(ref _requestsTotal);
        var tag = new KeyValuePair<string, object?>("kafka.api", api);
        _requests.Add(1, tag);
        _latencyMs.Record(elapsedMs, tag);
    }

    public long ReadAheadsStarted => Interlocked.Read(ref _readAheadsStarted);
    public long ReadAheadsUsed => Interlocked.Read(ref _readAheadsUsed);

    /// <summary>A read-ahead fetch was started, or taken by the next Fetch: <paramref name="used"/> when it answered it, else refetched.</summary>
    public void ReadAheadStarted()
    {
        Interlocked.Increment(ref _readAheadsStarted);
        _readAhead.Add(1, new KeyValuePair<string, object?>("outcome", "started"));
    }

    public void ReadAheadTaken(bool used)
    {
        if (used) Interlocked.Increment(ref _readAheadsUsed);
        _readAhead.Add(1, new KeyValuePair<string, object?>("outcome", used ? "used" : "refetched"));
    }

    public void BytesIn(long bytes) => _bytesIn.Add(bytes);
    public void BytesOut(long bytes) => _bytesOut.Add(bytes);

    public void Dispose() => _meter.Dispose();
}
