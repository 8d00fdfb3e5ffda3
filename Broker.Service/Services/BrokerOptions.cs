using StreamPlatform.Protos.Records;

namespace StreamPlatform.Broker.Services;

/// <summary>The <c>Broker</c> configuration section (docs/ARCHITECTURE.md).</summary>
public sealed class BrokerOptions
{
    public const string Section = "Broker";

    /// <summary>Broker__BrokerId: this broker's id in the cluster metadata.</summary>
    public int BrokerId { get; set; } = -1;
    /// <summary>Broker__DataDir: where partition directories live.</summary>
    public string DataDir { get; set; } = "";
    /// <summary>Broker__AdvertisedGrpcEndpoint: the URL others use (default: the grpc Kestrel endpoint).</summary>
    public string AdvertisedGrpcEndpoint { get; set; } = "";
    public string Rack { get; set; } = "";
    /// <summary>Longest a registration/heartbeat call to the controller may take.</summary>
    public int ControllerCallTimeoutMs { get; set; } = 5000;
    /// <summary>Upper bound of Fetch's max_wait_ms, whatever the caller asks (Kafka has none; a gRPC call must end).</summary>
    public int FetchMaxWaitMsLimit { get; set; } = 30000;
    /// <summary>Upper bound of a Fetch response's record bytes: stays below the gRPC message limit (64 MiB).</summary>
    public int FetchResponseBytesMax { get; set; } = 60 * 1024 * 1024;
    /// <summary>
    /// Broker__RetentionCheckIntervalMs: how often retention runs (Kafka's
    /// log.retention.check.interval.ms is 300000; a pass is cheap, see LogRetentionService).
    /// </summary>
    public int RetentionCheckIntervalMs { get; set; } = 5000;
    /// <summary>
    /// Broker__CleanerOffsetMapBytesMax: memory bound of the log cleaner's key -> offset map
    /// (Kafka: log.cleaner.dedupe.buffer.size, 128 MiB). 40 bytes per key: 16 MiB maps ~420,000
    /// keys per cleaning; more dirty keys are cleaned over several rounds.
    /// </summary>
    public long CleanerOffsetMapBytesMax { get; set; } = 16 * 1024 * 1024;
    /// <summary>
    /// Broker__DecompressedBytesHeldMax: decompressed records held at once while produce input is
    /// validated, over all requests (see Protos/Records/DecompressionMemory). A validation that
    /// cannot get its first buffer within <see cref="DecompressionWaitMs"/>, or cannot grow it at
    /// once, answers REQUEST_TIMED_OUT.
    /// </summary>
    public long DecompressedBytesHeldMax { get; set; } = DecompressionMemory.BytesHeldMaxDefault;
    /// <summary>Broker__DecompressionWaitMs: longest a validation waits for decompression memory.</summary>
    public int DecompressionWaitMs { get; set; } = DecompressionMemory.WaitMsMaxDefault;
    /// <summary>Broker__CleanerBackoffMs: pause between cleaner rounds (Kafka: log.cleaner.backoff.ms, 15000).</summary>
    public int CleanerBackoffMs { get; set; } = 15000;
}
