using StreamPlatform.AppHost.Cli;
using System.Globalization;
using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.AppHost.Kubernetes;

/// <summary>
/// `dotnet run --project AppHost -- publish --kubernetes &lt;dir&gt; [options]`: writes the
/// Kubernetes manifests of the cluster the AppHost would run (see <see cref="KubernetesManifests"/>).
/// </summary>
public static class KubernetesPublishCommand
{
    public const string Verb = "publish";

    public static string Usage => $$"""
        Usage: dotnet run --project AppHost -- publish --kubernetes <dir> [options]

        Writes Kubernetes manifests for the cluster the AppHost runs locally, generated from the same
        model (services, ports, environment): a Namespace; the controller and the brokers as
        StatefulSets (pods controller-1, broker-1.., ids from the pod ordinal; Kubernetes 1.31+) with
        a PersistentVolumeClaim each at /data and headless Services for their gRPC endpoints; each
        gateway as a Deployment with its own Service (the host:port it advertises to Kafka clients);
        the bootstrap Service "kafka" over all gateways; PodDisruptionBudgets; and kustomization.yaml.
        Apply them with `kubectl apply -k <dir>` (see docs/DEPLOY.md). Files of the same names in
        <dir> are replaced; other files are left alone.

        Options:
          --kubernetes <dir>       Folder to write the manifests to (required; created if missing).
          --brokers <n>            Number of brokers, 1..{{ClusterOptions.BrokerCountMax}}. Default: 3.
          --gateways <n>           Number of gateways, 1..{{ClusterOptions.GatewayCountMax}}. Default: 1.
          --namespace <name>       Kubernetes namespace. Default: {{KubernetesPublishOptions.DefaultNamespace}}.
          --image-registry <r>     Images are <r>/controller, <r>/broker, <r>/gateway.
                                   Default: {{KubernetesPublishOptions.DefaultImageRegistry}}.
          --image-tag <tag>        Image tag. Default: {{KubernetesPublishOptions.DefaultImageTag}}.
          --otlp-endpoint <url>    OTLP (gRPC) endpoint of the OpenTelemetry collector the services
                                   send traces, metrics and logs to, or "none".
                                   Default: {{KubernetesPublishOptions.DefaultOtlpEndpoint}}.
          --broker-config <k>=<v>  Cluster-wide broker config, e.g. --broker-config num.partitions=3. Repeatable.
          --environment <name>     ASPNETCORE_ENVIRONMENT/DOTNET_ENVIRONMENT. Default: Production.
          --cluster-domain <d>     The cluster's DNS domain. Default: {{KubernetesPublishOptions.DefaultClusterDomain}}.
          --storage-size <q>       Size of each controller's and broker's volume claim. Default: 10Gi.
          --storage-class <name>   StorageClass of the claims. Default: the cluster's default class.
          -h, --help               Show this help.

        The committed manifests in deploy/kubernetes are the defaults:
          dotnet run --project AppHost -- publish --kubernetes deploy/kubernetes
        """;

    /// <summary>Runs the command on the arguments after "publish". Returns the process exit code.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter output, TextWriter error)
    {
        var options = Parse(args, out var showHelp, out var message);
        if (showHelp)
        {
            output.WriteLine(Usage);
            return 0;
        }
        if (options is null)
            return Fail(error, message!);
        try
        {
            var written = KubernetesManifests.Write(options, options.OutputDir);
            output.WriteLine($"Wrote {written.Count} files to {Path.GetFullPath(options.OutputDir)}:");
            foreach (var path in written)
                output.WriteLine($"  {Path.GetFileName(path)}");
            output.WriteLine($"Apply them with: kubectl apply -k {options.OutputDir}");
            return 0;
        }
        catch (ArgumentException e)
        {
            return Fail(error, e.Message);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error.WriteLine($"error: cannot write to {options.OutputDir}: {e.Message}");
            return 1;
        }
    }

    private static int Fail(TextWriter error, string message)
    {
        error.WriteLine($"error: {message}");
        error.WriteLine();
        error.WriteLine(Usage);
        return 2;
    }

    /// <summary>Parses the arguments after "publish": --name value or --name=value. Null (and a message) on bad input.</summary>
    public static KubernetesPublishOptions? Parse(IReadOnlyList<string> args, out bool showHelp, out string? error)
    {
        var options = new KubernetesPublishOptions();
        showHelp = false;
        error = null;
        string? outputDir = null;
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            var name = arg;
            string? inline = null;
            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 0)
            {
                name = arg[..eq];
                inline = arg[(eq + 1)..];
            }
            string? Value() => inline ?? (i + 1 < args.Count ? args[++i] : null);

            switch (name)
            {
                case "-h" or "--help" or "-?":
                    showHelp = true;
                    return options;
                case "--kubernetes":
                    outputDir = Value();
                    if (string.IsNullOrWhiteSpace(outputDir)) return Fail("--kubernetes needs a folder.", out error);
                    break;
                case "--brokers":
                    if (!TryInt(Value(), 1, ClusterOptions.BrokerCountMax, out var brokers))
                        return Fail($"--brokers needs a number 1..{ClusterOptions.BrokerCountMax}.", out error);
                    options.Cluster.Brokers = brokers;
                    break;
                case "--gateways":
                    if (!TryInt(Value(), 1, ClusterOptions.GatewayCountMax, out var gateways))
                        return Fail($"--gateways needs a number 1..{ClusterOptions.GatewayCountMax}.", out error);
                    options.Cluster.Gateways = gateways;
                    break;
                case "--namespace":
                    var ns = Value();
                    if (!IsDnsLabel(ns)) return Fail($"--namespace needs a DNS label (lower-case letters, digits, '-', at most 63); got '{ns}'.", out error);
                    options.Namespace = ns!;
                    break;
                case "--image-registry":
                    var registry = Value();
                    if (string.IsNullOrWhiteSpace(registry) || registry.Any(char.IsWhiteSpace))
                        return Fail("--image-registry needs a registry path, e.g. ghcr.io/me/streamplatform.", out error);
                    options.ImageRegistry = registry.TrimEnd('/');
                    break;
                case "--image-tag":
                    var tag = Value();
                    if (string.IsNullOrWhiteSpace(tag) || tag.Length > 128 || tag.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-')))
                        return Fail($"--image-tag needs a tag of letters, digits, '_', '.', '-'; got '{tag}'.", out error);
                    options.ImageTag = tag;
                    break;
                case "--otlp-endpoint":
                    var otlp = Value();
                    if (otlp == "none")
                    {
                        options.Cluster.OtlpEndpoint = null;
                        break;
                    }
                    if (!AppHostCommandLine.IsHttpUrl(otlp))
                        return Fail("--otlp-endpoint needs an http(s) URL, e.g. http://otel-collector.observability:4317, or none.", out error);
                    options.Cluster.OtlpEndpoint = otlp;
                    break;
                case "--broker-config":
                    var kv = Value();
                    if (!AppHostCommandLine.TryBrokerConfig(kv, out var configName, out var configValue))
                        return Fail($"--broker-config needs <name>=<value>, e.g. num.partitions=3; got '{kv}'.", out error);
                    options.Cluster.BrokerConfigs[configName] = configValue;
                    break;
                case "--environment":
                    var environment = Value();
                    if (string.IsNullOrWhiteSpace(environment)) return Fail("--environment needs a name.", out error);
                    options.Cluster.EnvironmentName = environment;
                    break;
                case "--cluster-domain":
                    var domain = Value();
                    if (string.IsNullOrWhiteSpace(domain) || domain.Split('.').Any(l => !IsDnsLabel(l)))
                        return Fail($"--cluster-domain needs a DNS name, e.g. cluster.local; got '{domain}'.", out error);
                    options.ClusterDomain = domain;
                    break;
                case "--storage-size":
                    var size = Value();
                    if (!IsQuantity(size)) return Fail($"--storage-size needs a Kubernetes quantity, e.g. 10Gi; got '{size}'.", out error);
                    options.StorageSize = size!;
                    break;
                case "--storage-class":
                    var storageClass = Value();
                    if (string.IsNullOrWhiteSpace(storageClass)) return Fail("--storage-class needs a name.", out error);
                    options.StorageClass = storageClass;
                    break;
                default:
                    return Fail($"Unknown option '{arg}' for publish.", out error);
            }
        }
        if (outputDir is null)
            return Fail("publish needs --kubernetes <dir>: the folder to write the manifests to.", out error);
        options.OutputDir = outputDir;
        return options;
    }

    private static KubernetesPublishOptions? Fail(string message, out string? error)
    {
        error = message;
        return null;
    }

    private static bool TryInt(string? text, int min, int max, out int value) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value >= min && value <= max;

    private static bool IsDnsLabel(string? text) =>
        !string.IsNullOrEmpty(text) && text.Length <= 63 && char.IsAsciiLetterOrDigit(text[0]) && char.IsAsciiLetterOrDigit(text[^1])
        && text.All(c => char.IsAsciiDigit(c) || char.IsAsciiLetterLower(c) || c == '-');

    private static bool IsQuantity(string? text)
    {
        if (string.IsNullOrEmpty(text))
            return false;
        try
        {
            _ = new k8s.Models.ResourceQuantity(text).ToDecimal();
            return true;
        }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
        {
            return false;
        }
    }
}
