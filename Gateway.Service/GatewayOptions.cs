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

    /// <summary>
    /// Largest frame a connection may send before it has authenticated (Kafka's
    /// sasl.server.max.receive.size, 524288): an unauthenticated peer cannot make the gateway
    /// reserve MaxFrameBytes. PLAINTEXT connections are authenticated from the start, so this
    /// applies once a SASL listener exists.
    /// </summary>
    public int MaxUnauthenticatedFrameBytes { get; set; } = 524_288;

    /// <summary>
    /// Time a frame may take to arrive from its first byte to its last, not counting time the
    /// connection is muted by the gateway. When it passes the connection is closed: a client that
    /// declares a large frame and then sends nothing cannot hold its reservation of the request
    /// budget (MaxInFlightRequestBytes) forever. Kafka has no such option (its idle timeout
    /// covers it); 60 s is twice a client's default request.timeout.ms.
    /// </summary>
    public int FrameReadTimeoutMs { get; set; } = 60_000;

    /// <summary>
    /// A connection with no bytes read or written for this long, and no request being handled,
    /// is closed (Kafka's connections.max.idle.ms, default 600000).
    /// </summary>
    public int ConnectionsMaxIdleMs { get; set; } = 600_000;

    /// <summary>
    /// Kafka connections open at once on this gateway; a connection beyond it is closed at once
    /// (Kafka's max.connections, whose default Int.MaxValue is unbounded).
    /// </summary>
    public int MaxConnections { get; set; } = 10_000;

    /// <summary>
    /// Kafka connections open at once from one IP address; a connection beyond it is closed at
    /// once, as Kafka does (max.connections.per.ip, whose default Int.MaxValue is unbounded).
    /// </summary>
    public int MaxConnectionsPerIp { get; set; } = 1_000;

    /// <summary>
    /// Bytes of serialized responses one connection may have waiting to be sent. When reached the
    /// connection reads no further request until the client has taken enough of them (Kafka mutes
    /// a connection until its response is sent), so a client that pipelines requests and never
    /// reads cannot make the gateway hold their answers.
    /// </summary>
    public int MaxQueuedResponseBytesPerConnection { get; set; } = 4 * 1024 * 1024;

    /// <summary>Added to a client's own timeout (produce timeout_ms, fetch max_wait_ms) for the gRPC deadline.</summary>
    public int BrokerCallMarginMs { get; set; } = 5_000;

    /// <summary>
    /// Bytes the gateway may hold in read-ahead fetches, over all connections
    /// (Routing/FetchReadAhead.cs): the next fetch of a consumer that is catching up is asked of
    /// the brokers while its current answer is written. Each read-ahead reserves its request's
    /// max_bytes (capped by the sum of its partitions' max bytes, 1 MiB each by default in the
    /// clients); one that does not fit is not started. 0 turns read-ahead off.
    /// </summary>
    public long FetchReadAheadBytesMax { get; set; } = 64L * 1024 * 1024;

    /// <summary>Deadline of calls to the controller (CreateTopics uses the client's timeout when larger).</summary>
    public int ControllerCallTimeoutMs { get; set; } = 10_000;

    /// <summary>
    /// Longest a Fetch or ListOffsets waits for the metadata to show a partition's new leader
    /// before its one retry there (Routing/LeaderMoveRetry.cs). A Fetch waits at most what is
    /// left of its max_wait_ms and not at all when other partitions already have data; 1 s is far
    /// below a client's request.timeout.ms (30 s), and enough for a controller's election to
    /// reach the gateway.
    /// </summary>
    public int LeaderChangeWaitMs { get; set; } = 1_000;

    public string EffectiveAdvertisedHost =>
        string.IsNullOrWhiteSpace(AdvertisedHost)
            ? (KafkaListenAddress is "0.0.0.0" or "::" ? "127.0.0.1" : KafkaListenAddress)
            : AdvertisedHost;
}
