using System.Globalization;
using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.AppHost.Cli;

/// <summary>The parsed command line of the AppHost.</summary>
public sealed class AppHostArguments
{
    public bool ShowHelp { get; set; }

    public bool Clean { get; set; }

    public TimeSpan HealthTimeout { get; set; } = TimeSpan.FromSeconds(90);

    public ClusterOptions Cluster { get; } = new();

    /// <summary>Whether the Aspire dashboard runs (on by default; --no-dashboard).</summary>
    public bool Dashboard { get; set; } = true;

    /// <summary>The dashboard's http port on 127.0.0.1; null with --dynamic-ports: a free one.</summary>
    public int? DashboardPort { get; set; } = AppHostCommandLine.DefaultDashboardPort;

    /// <summary>The dashboard's OTLP (gRPC) port on 127.0.0.1; null with --dynamic-ports: a free one.</summary>
    public int? DashboardOtlpPort { get; set; } = AppHostCommandLine.DefaultDashboardOtlpPort;

    /// <summary>Everything after "--": handed to Aspire's own configuration (e.g. --Logging:LogLevel:Default=Debug).</summary>
    public List<string> AspireArgs { get; } = [];
}

/// <summary>Hand-rolled parser (System.CommandLine is not in the package feed): --name value or --name=value.</summary>
public static class AppHostCommandLine
{
    private const int HealthTimeoutSecondsMax = 3600;

    public const int DefaultDashboardPort = 18888;

    public const int DefaultDashboardOtlpPort = 18889;

    /// <summary>The crash-restart policy the help describes (the defaults the AppHost runs with).</summary>
    private static readonly RestartPolicy Restart = new();

    public static string Usage(string defaultDataDir) => $$"""
        Usage: dotnet run --project AppHost [-c Release] [-- options] [-- aspire-settings]

        Starts a StreamPlatform cluster on this machine under .NET Aspire: the controller
        (controller-1), then the brokers (broker-1..), then the gateways (gateway-1..), each its own
        process run by Aspire's orchestrator (DCP), each started once the ones before it answer
        /health. The Aspire dashboard shows every service's state, console output, structured logs,
        traces and metrics, and can stop, start and restart a service. Once every service is healthy
        the Kafka bootstrap address and the dashboard's login URL are printed. Ctrl+C (or SIGTERM)
        stops everything within a few seconds; the data is kept. With -c Release the services run
        their Release build.

        Options:
          --data-dir <path>        Where the controller and brokers keep their data, one sub-folder
                                   each (controller-1/, broker-1/, ...). Default: {{defaultDataDir}}
          --clean                  Delete the data directory's contents before starting (only a
                                   folder the AppHost created; it carries a .streamplatform-data marker).
          --brokers <n>            Number of brokers, 1..{{ClusterOptions.BrokerCountMax}}. Default: 3.
          --gateways <n>           Number of gateways (Kafka listeners), 1..{{ClusterOptions.GatewayCountMax}}. Default: 1.
          --kafka-port <port>      Kafka port of the first gateway; gateway j listens on port+j.
                                   Default: {{PortLayout.DefaultKafkaPort}}.
          --base-port <port>       Base of the internal ports. Default: {{PortLayout.DefaultBasePort}}, giving
                                   controller http base+10, grpc base+11; broker i http base+100+10i,
                                   grpc base+101+10i; gateway j (0-based) http base+200+10j, grpc base+201+10j.
          --port <svc>.<ep>=<port> Override one port, e.g. --port broker-2.grpc=7500 (endpoints: http,
                                   grpc, and kafka for gateways). Repeatable.
          --otlp-endpoint <url>    Send traces, metrics and logs of every service to this OTLP endpoint
                                   (e.g. http://127.0.0.1:4317). Default: $OTEL_EXPORTER_OTLP_ENDPOINT, else none.
          --broker-config <k>=<v>  Cluster-wide broker config, e.g. --broker-config num.partitions=3. Repeatable.
          --environment <name>     ASPNETCORE_ENVIRONMENT/DOTNET_ENVIRONMENT of the services. Default: Development.
          --health-timeout <s>     Seconds the whole cluster may take to become healthy before the
                                   AppHost reports which service is not (with its last output). Default: 90.
          --dynamic-ports          Free ports for every endpoint and for the dashboard instead of the
                                   fixed layout above (several clusters on one machine, tests).
          --no-dashboard           Do not run the Aspire dashboard. The services then export no
                                   telemetry unless --otlp-endpoint is given.
          --dashboard-port <port>  The dashboard's http port on 127.0.0.1. Default: {{DefaultDashboardPort}}.
          --dashboard-otlp-port <port>
                                   Where the dashboard receives the services' OTLP telemetry (gRPC) on
                                   127.0.0.1. Default: {{DefaultDashboardOtlpPort}}.
          --no-restart             Leave a crashed service down. By default a service whose process
                                   ends without being asked to (crash, kill -9, non-zero exit) is
                                   started again on the same ports and data after a backoff of {{RestartPolicy.Format(Restart.BackoffMin)}},
                                   doubling to {{RestartPolicy.Format(Restart.BackoffMax)}} (back to {{RestartPolicy.Format(Restart.BackoffMin)}} once it stayed healthy for {{RestartPolicy.Format(Restart.BackoffResetAfterHealthy)}});
                                   after {{Restart.RestartLimitCount}} restarts within {{RestartPolicy.Format(Restart.RestartLimitWindow)}} it stays down. A service
                                   stopped on purpose (the dashboard's Stop, Ctrl+C) is never restarted.
                                   The dashboard's Start, Stop and Restart commands work either way.
          -h, --help               Show this help.

        A second "--" ends these options; what follows goes to Aspire's configuration, e.g.
          dotnet run --project AppHost -- --brokers 1 -- --Logging:LogLevel:Default=Debug

        The dashboard listens on plain http on 127.0.0.1 (no development certificate is needed); its
        login URL carries a one-time token. Clients connect to the gateways: bootstrap servers
        127.0.0.1:<kafka-port> (127.0.0.1:9092 by default).
        """;

    /// <summary>Parses <paramref name="args"/>. Returns null and sets <paramref name="error"/> on bad input.</summary>
    public static AppHostArguments? Parse(IReadOnlyList<string> args, string defaultDataDir, out string? error,
        string? environmentOtlpEndpoint = null)
    {
        var result = new AppHostArguments();
        result.Cluster.DataDir = defaultDataDir;
        result.Cluster.OtlpEndpoint = string.IsNullOrWhiteSpace(environmentOtlpEndpoint) ? null : environmentOtlpEndpoint;
        var basePort = PortLayout.DefaultBasePort;
        var kafkaPort = PortLayout.DefaultKafkaPort;
        var overrides = new Dictionary<(string, string), int>();
        var dynamicPorts = false;
        int? dashboardPort = null, dashboardOtlpPort = null;
        error = null;

        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg == "--")
            {
                result.AspireArgs.AddRange(args.Skip(i + 1));
                break;
            }
            string name = arg, inlineValue = "";
            var hasInline = false;
            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 0)
            {
                name = arg[..eq];
                inlineValue = arg[(eq + 1)..];
                hasInline = true;
            }

            string? Value()
            {
                if (hasInline)
                    return inlineValue;
                if (i + 1 < args.Count)
                    return args[++i];
                return null;
            }

            switch (name)
            {
                case "-h" or "--help" or "-?":
                    result.ShowHelp = true;
                    break;
                case "--clean":
                    if (hasInline) return Fail($"{name} takes no value.", out error);
                    result.Clean = true;
                    break;
                case "--no-dashboard":
                    if (hasInline) return Fail($"{name} takes no value.", out error);
                    result.Dashboard = false;
                    break;
                case "--no-restart":
                    if (hasInline) return Fail($"{name} takes no value.", out error);
                    result.Cluster.RestartCrashed = false;
                    break;
                case "--dynamic-ports":
                    if (hasInline) return Fail($"{name} takes no value.", out error);
                    dynamicPorts = true;
                    break;
                case "--dashboard-port":
                    if (!TryInt(Value(), 1, 65535, out var dashboardPortValue))
                        return Fail("--dashboard-port needs a port 1..65535.", out error);
                    dashboardPort = dashboardPortValue;
                    break;
                case "--dashboard-otlp-port":
                    if (!TryInt(Value(), 1, 65535, out var dashboardOtlpPortValue))
                        return Fail("--dashboard-otlp-port needs a port 1..65535.", out error);
                    dashboardOtlpPort = dashboardOtlpPortValue;
                    break;
                case "--data-dir":
                    var dir = Value();
                    if (string.IsNullOrWhiteSpace(dir)) return Fail("--data-dir needs a path.", out error);
                    result.Cluster.DataDir = Path.GetFullPath(dir);
                    break;
                case "--brokers":
                    if (!TryInt(Value(), 1, ClusterOptions.BrokerCountMax, out var brokers))
                        return Fail($"--brokers needs a number 1..{ClusterOptions.BrokerCountMax}.", out error);
                    result.Cluster.Brokers = brokers;
                    break;
                case "--gateways":
                    if (!TryInt(Value(), 1, ClusterOptions.GatewayCountMax, out var gateways))
                        return Fail($"--gateways needs a number 1..{ClusterOptions.GatewayCountMax}.", out error);
                    result.Cluster.Gateways = gateways;
                    break;
                case "--kafka-port":
                    if (!TryInt(Value(), 1, 65535, out kafkaPort))
                        return Fail("--kafka-port needs a port 1..65535.", out error);
                    break;
                case "--base-port":
                    // The highest port of the layout is base+291 (gateway 9's grpc).
                    if (!TryInt(Value(), 1, 65535 - 300, out basePort))
                        return Fail($"--base-port needs a port 1..{65535 - 300}.", out error);
                    break;
                case "--port":
                    var spec = Value();
                    if (!TryPortOverride(spec, out var key, out var port))
                        return Fail($"--port needs <service>.<endpoint>=<port>, e.g. broker-2.grpc=7500; got '{spec}'.", out error);
                    overrides[key] = port;
                    break;
                case "--otlp-endpoint":
                    var otlp = Value();
                    if (!IsHttpUrl(otlp))
                        return Fail("--otlp-endpoint needs an http(s) URL, e.g. http://127.0.0.1:4317.", out error);
                    result.Cluster.OtlpEndpoint = otlp;
                    break;
                case "--broker-config":
                    var kv = Value();
                    if (!TryBrokerConfig(kv, out var configName, out var configValue))
                        return Fail($"--broker-config needs <name>=<value>, e.g. num.partitions=3; got '{kv}'.", out error);
                    result.Cluster.BrokerConfigs[configName] = configValue;
                    break;
                case "--environment":
                    var envName = Value();
                    if (string.IsNullOrWhiteSpace(envName)) return Fail("--environment needs a name.", out error);
                    result.Cluster.EnvironmentName = envName;
                    break;
                case "--health-timeout":
                    if (!TryInt(Value(), 1, HealthTimeoutSecondsMax, out var seconds))
                        return Fail($"--health-timeout needs seconds 1..{HealthTimeoutSecondsMax}.", out error);
                    result.HealthTimeout = TimeSpan.FromSeconds(seconds);
                    break;
                default:
                    return Fail($"Unknown option '{arg}'.", out error);
            }
        }

        if (dynamicPorts && (basePort != PortLayout.DefaultBasePort || kafkaPort != PortLayout.DefaultKafkaPort))
            return Fail("--dynamic-ports cannot be combined with --base-port or --kafka-port (use --port to pin one endpoint).", out error);
        result.Cluster.Ports = dynamicPorts
            ? PortLayout.Dynamic(overrides)
            : PortLayout.Fixed(basePort, kafkaPort, overrides);
        result.DashboardPort = dashboardPort ?? (dynamicPorts ? null : DefaultDashboardPort);
        result.DashboardOtlpPort = dashboardOtlpPort ?? (dynamicPorts ? null : DefaultDashboardOtlpPort);
        if (result.DashboardPort is { } dp && result.DashboardPort == result.DashboardOtlpPort)
            return Fail($"The dashboard's http and OTLP ports must differ (both {dp}).", out error);
        return result;
    }

    /// <summary>An absolute http or https URL (--otlp-endpoint here and in `publish`).</summary>
    public static bool IsHttpUrl(string? text) =>
        text is not null && Uri.TryCreate(text, UriKind.Absolute, out var uri) && (uri.Scheme == "http" || uri.Scheme == "https");

    /// <summary>A "name=value" broker config (--broker-config here and in `publish`).</summary>
    public static bool TryBrokerConfig(string? text, out string name, out string value)
    {
        var sep = text?.IndexOf('=', StringComparison.Ordinal) ?? -1;
        name = sep > 0 ? text![..sep] : "";
        value = sep > 0 ? text![(sep + 1)..] : "";
        return sep > 0;
    }

    private static AppHostArguments? Fail(string message, out string? error)
    {
        error = message;
        return null;
    }

    private static bool TryInt(string? text, int min, int max, out int value) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value >= min && value <= max;

    private static bool TryPortOverride(string? spec, out (string, string) key, out int port)
    {
        key = default;
        port = 0;
        if (spec is null)
            return false;
        var eq = spec.IndexOf('=', StringComparison.Ordinal);
        var dot = eq < 0 ? -1 : spec.LastIndexOf('.', eq);
        if (dot <= 0 || dot + 1 >= eq)
            return false;
        key = (spec[..dot], spec[(dot + 1)..eq]);
        return TryInt(spec[(eq + 1)..], 1, 65535, out port);
    }
}
