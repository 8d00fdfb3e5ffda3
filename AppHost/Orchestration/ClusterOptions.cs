namespace StreamPlatform.AppHost.Orchestration;

/// <summary>What cluster to build: sizes, ports, where data lives, telemetry, extra settings.</summary>
public sealed class ClusterOptions
{
    /// <summary>Limits keep the fixed port layout collision-free (10 ports per service) and the machine sane.</summary>
    public const int BrokerCountMax = 9;
    public const int GatewayCountMax = 9;

    public int Brokers { get; set; } = 3;

    public int Gateways { get; set; } = 1;

    public PortLayout Ports { get; set; } = PortLayout.Default;

    /// <summary>Root of the data directory; each stateful service gets a sub-folder named after it.</summary>
    public string DataDir { get; set; } = "";

    /// <summary>OTEL_EXPORTER_OTLP_ENDPOINT for every service; null = no OTLP export.</summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary>ASPNETCORE_ENVIRONMENT / DOTNET_ENVIRONMENT of every service.</summary>
    public string EnvironmentName { get; set; } = "Development";

    /// <summary>Controller__ClusterId; null lets the controller pick/keep its own.</summary>
    public string? ClusterId { get; set; }

    /// <summary>
    /// Restart a service whose process ends without being asked to (crash, kill -9 from outside,
    /// non-zero exit) after a backoff (<see cref="OrchestratorOptions.Restart"/>), as systemd or
    /// Kubernetes would restart a crashed Kafka broker. On by default (the AppHost; --no-restart
    /// turns it off); the integration tests' harness turns it off unless a test asks, so a test
    /// that kills a service decides when it comes back.
    /// </summary>
    public bool RestartCrashed { get; set; } = true;

    /// <summary>Cluster-wide broker configs (Kafka names, e.g. num.partitions), passed to the controller.</summary>
    public IDictionary<string, string> BrokerConfigs { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>Kafka's default offsets.topic.replication.factor (and transaction.state.log.replication.factor), lowered to the broker count of smaller clusters.</summary>
    public const int OffsetsTopicReplicationFactorMax = 3;

    /// <summary>Kafka's default transaction.state.log.min.isr, lowered to the transaction state topic's replication factor.</summary>
    public const int TransactionStateMinIsrMax = 2;

    /// <summary>
    /// The broker configs the controller gets: <see cref="BrokerConfigs"/>, plus, unless set,
    /// offsets.topic.replication.factor and transaction.state.log.replication.factor =
    /// min(3, brokers) and transaction.state.log.min.isr = min(2, the latter). Kafka's defaults
    /// are 3 (and 2) and Kafka refuses to create __consumer_offsets or __transaction_state with
    /// fewer live brokers (consumer groups and transactional producers then never find a
    /// coordinator); Kafka's own single-broker quickstart sets them to 1 by hand. The AppHost
    /// knows its broker count, so a 1- or 2-broker dev cluster works without that step and a 3+
    /// broker cluster gets Kafka's values.
    /// </summary>
    public IReadOnlyDictionary<string, string> EffectiveBrokerConfigs()
    {
        static string Text(int value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var configs = new Dictionary<string, string>(BrokerConfigs, StringComparer.Ordinal);
        configs.TryAdd("offsets.topic.replication.factor", Text(Math.Min(OffsetsTopicReplicationFactorMax, Brokers)));
        configs.TryAdd("transaction.state.log.replication.factor", Text(Math.Min(OffsetsTopicReplicationFactorMax, Brokers)));
        // The replication factor as it will be; a value that is not an int is the controller's to refuse.
        if (int.TryParse(configs["transaction.state.log.replication.factor"], System.Globalization.NumberStyles.Integer,
                System.Globalization.CultureInfo.InvariantCulture, out var transactionStateReplicationFactor))
            configs.TryAdd("transaction.state.log.min.isr", Text(Math.Max(1, Math.Min(TransactionStateMinIsrMax, transactionStateReplicationFactor))));
        return configs;
    }

    /// <summary>Extra environment for every service of a kind (applied before per-resource settings).</summary>
    public IDictionary<ServiceKind, IDictionary<string, string>> EnvironmentByKind { get; } =
        new Dictionary<ServiceKind, IDictionary<string, string>>();

    /// <summary>Extra environment for one resource by name ("broker-2"); wins over everything else.</summary>
    public IDictionary<string, IDictionary<string, string>> EnvironmentByResource { get; } =
        new Dictionary<string, IDictionary<string, string>>(StringComparer.Ordinal);

    public ClusterOptions WithEnvironment(ServiceKind kind, string name, string value)
    {
        if (!EnvironmentByKind.TryGetValue(kind, out var env))
            EnvironmentByKind[kind] = env = new Dictionary<string, string>(StringComparer.Ordinal);
        env[name] = value;
        return this;
    }

    public ClusterOptions WithEnvironment(string resourceName, string name, string value)
    {
        if (!EnvironmentByResource.TryGetValue(resourceName, out var env))
            EnvironmentByResource[resourceName] = env = new Dictionary<string, string>(StringComparer.Ordinal);
        env[name] = value;
        return this;
    }
}

/// <summary>
/// How ports are chosen. Fixed: controller base+10/base+11, broker i (1-based) base+100+10i /
/// base+101+10i, gateway j (0-based) http base+200+10j / grpc base+201+10j and kafka kafkaPort+j.
/// With the default base 7000 that is 7010/7011, 7110/7111.., 7200/7201 and 9092.
/// Dynamic: free ports picked by binding port 0 (tests, several clusters on one machine).
/// Overrides ("broker-1" + "grpc" -> port) win over either.
/// </summary>
public sealed class PortLayout
{
    public const int DefaultBasePort = 7000;
    public const int DefaultKafkaPort = 9092;

    private PortLayout(bool dynamic, int basePort, int kafkaPort, IReadOnlyDictionary<(string, string), int> overrides)
    {
        IsDynamic = dynamic;
        BasePort = basePort;
        KafkaPort = kafkaPort;
        Overrides = overrides;
    }

    public static PortLayout Default { get; } = Fixed();

    public static PortLayout DynamicPorts { get; } = Dynamic();

    public static PortLayout Dynamic(IReadOnlyDictionary<(string Resource, string Endpoint), int>? overrides = null) =>
        new(true, 0, 0, overrides ?? new Dictionary<(string, string), int>());

    public static PortLayout Fixed(int basePort = DefaultBasePort, int kafkaPort = DefaultKafkaPort,
        IReadOnlyDictionary<(string Resource, string Endpoint), int>? overrides = null) =>
        new(false, basePort, kafkaPort, overrides ?? new Dictionary<(string, string), int>());

    public bool IsDynamic { get; }

    public int BasePort { get; }

    public int KafkaPort { get; }

    public IReadOnlyDictionary<(string Resource, string Endpoint), int> Overrides { get; }

    /// <summary>The fixed-layout port of an endpoint (not used for dynamic layouts).</summary>
    public int FixedPort(ServiceKind kind, int index, string endpoint)
    {
        var offset = endpoint == EndpointNames.Grpc ? 1 : 0;
        return kind switch
        {
            ServiceKind.Controller => BasePort + 10 + offset,
            ServiceKind.Broker => BasePort + 100 + 10 * index + offset,
            ServiceKind.Gateway when endpoint == EndpointNames.Kafka => KafkaPort + index,
            ServiceKind.Gateway => BasePort + 200 + 10 * index + offset,
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
    }
}
