namespace StreamPlatform.Gateway;

/// <summary>The "Gateway" configuration section (see docs/ARCHITECTURE.md).</summary>
public sealed class GatewayOptions
{
    public const string Section = "Gateway";

    /// <summary>The node id clients see for this gateway in Metadata responses.</summary>
    public int NodeId { get; set; }

    public string KafkaListenAddress { get; set; } = "127.0.0.1";

    public int KafkaPort { get; set; } = 9092;

    /// <summary>Host clients are told to connect to; defaults to the listen address.</summary>
    public string? AdvertisedHost { get; set; }

    public string? Rack { get; set; }

    /// <summary>Largest request frame accepted (Kafka's socket.request.max.bytes).</summary>
    public int MaxFrameBytes { get; set; } = 104_857_600;

    /// <summary>
    /// Requests read from one connection but not yet answered. When reached the connection stops
    /// reading (TCP back-pressure) until a response is written, so a client pipelining without
    /// bound cannot make the gateway buffer without bound.
    /// </summary>
    public int MaxInFlightRequestsPerConnection { get; set; } = 100;

    /// <summary>
    /// Bytes of request frames held at once by this gateway, over all connections (Kafka's
    /// queued.max.request.bytes): a connection whose next frame does not fit stops reading until
    /// earlier requests complete. Per-connection limits alone allow in-flight requests times
    /// MaxFrameBytes per connection (10 GB by default).
    /// </summary>
    public long MaxInFlightRequestBytes { get; set; } = 1L << 30;

    /// <summary>Added to a client's own timeout (produce timeout_ms, fetch max_wait_ms) for the gRPC deadline.</summary>
    public int BrokerCallMarginMs { get; set; } = 5_000;

    /// <summary>Deadline of calls to the controller (CreateTopics uses the client's timeout when larger).</summary>
    public int ControllerCallTimeoutMs { get; set; } = 10_000;

    public string EffectiveAdvertisedHost =>
        string.IsNullOrWhiteSpace(AdvertisedHost)
            ? (KafkaListenAddress is "0.0.0.0" or "::" ? "127.0.0.1" : KafkaListenAddress)
            : AdvertisedHost;
}
