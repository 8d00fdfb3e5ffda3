using Microsoft.Extensions.Configuration;
using StreamPlatform.Protos.Configs;

namespace StreamPlatform.Controller.Metadata;

/// <summary>The <c>Controller</c> configuration section.</summary>
public sealed class ControllerOptions
{
    public const string SectionName = "Controller";

    /// <summary>Controller:NodeId — this controller's id (snapshot controller_id).</summary>
    public int NodeId { get; set; }
    /// <summary>Controller:DataDir — where metadata.log and cluster.id live.</summary>
    public string DataDir { get; set; } = "data/controller";
    /// <summary>Controller:ClusterId — overrides the generated/persisted cluster id.</summary>
    public string? ClusterId { get; set; }
    /// <summary>Controller:BrokerSessionTimeoutMs — a broker silent this long is fenced (Kafka's broker.session.timeout.ms).</summary>
    public int BrokerSessionTimeoutMs { get; set; } = 6000;
    /// <summary>Controller:BrokerHeartbeatIntervalMs — told to brokers and gateways at registration.</summary>
    public int BrokerHeartbeatIntervalMs { get; set; } = 500;
    /// <summary>Controller:GatewaySessionTimeoutMs — 0 means the same as the broker session timeout.</summary>
    public int GatewaySessionTimeoutMs { get; set; }
    /// <summary>Controller:SessionCheckIntervalMs — how often expired sessions are looked for.</summary>
    public int SessionCheckIntervalMs { get; set; } = 100;
    /// <summary>Controller:MaxLogEntryBytes — largest metadata log entry (one request's records).</summary>
    public int MaxLogEntryBytes { get; set; } = Storage.MetadataLog.DefaultMaxEntryBytes;
    /// <summary>Controller:SnapshotLogBytes — once the log is this long, the state is written to metadata.snapshot and the log emptied.</summary>
    public long SnapshotLogBytes { get; set; } = 16 * 1024 * 1024;
    /// <summary>Controller:MaxPartitionsPerTopic — bounds one CreateTopics entry (INVALID_PARTITIONS above it).</summary>
    public int MaxPartitionsPerTopic { get; set; } = 10_000;
    /// <summary>Controller:MaxPartitionsPerRequest — bounds the work and log entry of one CreateTopics call (THROTTLING_QUOTA_EXCEEDED above it).</summary>
    public int MaxPartitionsPerRequest { get; set; } = 100_000;
    /// <summary>Controller:BrokerConfigs:&lt;name&gt; — cluster-wide broker config overrides.</summary>
    public Dictionary<string, string> BrokerConfigs { get; set; } = new(StringComparer.Ordinal);

    public int EffectiveGatewaySessionTimeoutMs => GatewaySessionTimeoutMs > 0 ? GatewaySessionTimeoutMs : BrokerSessionTimeoutMs;

    /// <summary>Binds the section by hand: config names contain dots, which the binder handles only as dictionary keys.</summary>
    public static ControllerOptions FromConfiguration(IConfiguration configuration)
    {
        var section = configuration.GetSection(SectionName);
        var options = new ControllerOptions();
        section.Bind(options);
        options.BrokerConfigs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var child in section.GetSection(nameof(BrokerConfigs)).GetChildren())
            if (child.Value is not null) options.BrokerConfigs[child.Key] = child.Value;
        options.Validate();
        return options;
    }

    /// <summary>Fails fast on operator mistakes instead of running a cluster with a silently ignored setting.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(DataDir)) throw new InvalidOperationException("Controller:DataDir is empty.");
        if (BrokerSessionTimeoutMs <= 0) throw new InvalidOperationException("Controller:BrokerSessionTimeoutMs must be positive.");
        if (BrokerHeartbeatIntervalMs <= 0 || BrokerHeartbeatIntervalMs >= BrokerSessionTimeoutMs)
            throw new InvalidOperationException("Controller:BrokerHeartbeatIntervalMs must be positive and below the session timeout.");
        if (SessionCheckIntervalMs <= 0) throw new InvalidOperationException("Controller:SessionCheckIntervalMs must be positive.");
        if (SnapshotLogBytes <= 0) throw new InvalidOperationException("Controller:SnapshotLogBytes must be positive.");
        if (MaxPartitionsPerTopic <= 0) throw new InvalidOperationException("Controller:MaxPartitionsPerTopic must be positive.");
        if (MaxPartitionsPerRequest < MaxPartitionsPerTopic) throw new InvalidOperationException("Controller:MaxPartitionsPerRequest must be at least Controller:MaxPartitionsPerTopic.");
        foreach (var (name, value) in BrokerConfigs)
        {
            if (!ConfigCatalog.Broker.TryGetValue(name, out var def))
                throw new InvalidOperationException($"Controller:BrokerConfigs:{name} is not a known broker config.");
            if (def.Validate(value) is { } why) throw new InvalidOperationException($"Controller:BrokerConfigs:{name}: {why}");
        }
    }
}
