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
}

/// <summary>Hand-rolled parser (System.CommandLine is not in the package feed): --name value or --name=value.</summary>
public static class AppHostCommandLine
{
    private const int HealthTimeoutSecondsMax = 3600;

    public static string Usage(string defaultDataDir) => Usage(defaultDataDir, new RestartPolicy());

    private static string Format(TimeSpan span) => RestartPolicy.Format(span);

    private static string Usage(string defaultDataDir, RestartPolicy restart) => $$"""
        Usage: dotnet run --project AppHost [-- options]

        Starts a StreamPlatform cluster on this machine: 1 controller, then the brokers, then the
        gateways, each as its own process, waiting for each to answer /health before starting the
        next. Service output is shown prefixed with [name]. A service that crashes is started again
        (see --no-restart). Ctrl+C (or SIGTERM) stops everything.

        Options:
          --data-dir <path>        Where the controller and brokers keep their data, one sub-folder
                                   each (controller/, broker-1/, ...). Default: {{defaultDataDir}}
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
          --health-timeout <s>     Seconds each service may take to become healthy. Default: 90.
          --no-restart             Leave a crashed service down. By default a service whose process
                                   ends without being asked to (crash, kill -9, non-zero exit) is
                                   started again on the same ports and data after a backoff of {{Format(restart.BackoffMin)}},
                                   doubling to {{Format(restart.BackoffMax)}} (back to {{Format(restart.BackoffMin)}} once it stayed healthy for {{Format(restart.BackoffResetAfterHealthy)}});
                                   after {{restart.RestartLimitCount}} restarts within {{Format(restart.RestartLimitWindow)}} the AppHost gives up on it and
                                   says so. Ctrl+C never causes a restart.
          -h, --help               Show this help.

        Clients connect to the gateways: bootstrap servers 127.0.0.1:<kafka-port> (127.0.0.1:9092 by default).
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
        error = null;

        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
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
                case "--no-restart":
                    if (hasInline) return Fail($"{name} takes no value.", out error);
                    result.Cluster.RestartCrashed = false;
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
                    if (otlp is null || !Uri.TryCreate(otlp, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
                        return Fail("--otlp-endpoint needs an http(s) URL, e.g. http://127.0.0.1:4317.", out error);
                    result.Cluster.OtlpEndpoint = otlp;
                    break;
                case "--broker-config":
                    var kv = Value();
                    var sep = kv?.IndexOf('=', StringComparison.Ordinal) ?? -1;
                    if (kv is null || sep <= 0)
                        return Fail($"--broker-config needs <name>=<value>, e.g. num.partitions=3; got '{kv}'.", out error);
                    result.Cluster.BrokerConfigs[kv[..sep]] = kv[(sep + 1)..];
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

        result.Cluster.Ports = PortLayout.Fixed(basePort, kafkaPort, overrides);
        return result;
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
