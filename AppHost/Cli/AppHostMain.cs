using System.Reflection;
using Aspire.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using StreamPlatform.AppHost.Hosting;
using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.AppHost.Cli;

/// <summary>
/// The `dotnet run --project AppHost` entry point: parse the options, build the Aspire application
/// from the cluster's model, run it until Ctrl+C / SIGTERM (Aspire stops every service then).
/// Aspire.Hosting.Testing runs this same entry point (DistributedApplicationTestingBuilder), so
/// tests start exactly the cluster a user starts.
/// </summary>
public static class AppHostMain
{
    public const int ExitOk = 0;
    public const int ExitFailed = 1;
    public const int ExitUsage = 2;

    public static async Task<int> RunAsync(string[] args)
    {
        // `publish --kubernetes <dir>` writes manifests instead of running the cluster.
        if (args.Length > 0 && args[0] == Kubernetes.KubernetesPublishCommand.Verb)
            return Kubernetes.KubernetesPublishCommand.Run(args[1..], Console.Out, Console.Error);

        var defaultDataDir = Path.Combine(RepoRoot(), ".data");
        var parsed = AppHostCommandLine.Parse(args, defaultDataDir, out var error,
            Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT"));
        if (parsed is null)
            return Usage($"error: {error}", defaultDataDir);
        if (parsed.ShowHelp)
        {
            Console.WriteLine(AppHostCommandLine.Usage(defaultDataDir));
            return ExitOk;
        }

        ClusterTopology topology;
        try
        {
            topology = ClusterTopology.Create(parsed.Cluster);
            if (parsed.Clean)
            {
                DataDirectory.Clean(parsed.Cluster.DataDir);
                Console.WriteLine($"Cleaned {Path.GetFullPath(parsed.Cluster.DataDir)}");
            }
        }
        catch (ArgumentException e)
        {
            return Usage($"error: {e.Message}", defaultDataDir);
        }
        catch (OrchestrationException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return ExitFailed;
        }

        // The lock keeps a second AppHost (or a test) off the same data while this one runs.
        using var data = AcquireData(parsed.Cluster.DataDir);
        if (data is null)
            return ExitFailed;

        var app = Build(parsed, topology);
        await app.RunAsync();
        return ExitOk;
    }

    private static DistributedApplication Build(AppHostArguments parsed, ClusterTopology topology)
    {
        var options = new DistributedApplicationOptions
        {
            Args = [.. parsed.AspireArgs],
            DisableDashboard = !parsed.Dashboard,
            // Plain http on 127.0.0.1: a fresh machine has no development certificate.
            AllowUnsecuredTransport = true,
            DashboardApplicationName = "StreamPlatform",
        };
        var builder = DistributedApplication.CreateBuilder(options);

        // Aspire.Hosting.Testing turns the dashboard off while the builder is created: read the
        // effective value back rather than trusting the command line.
        string? dashboardLoginUrl = null;
        if (!options.DisableDashboard)
        {
            var free = PortAllocation.FindFreePorts(2);
            var url = $"http://127.0.0.1:{parsed.DashboardPort ?? free[0]}";
            builder.Configuration["ASPNETCORE_URLS"] = url;
            builder.Configuration["ASPIRE_DASHBOARD_OTLP_ENDPOINT_URL"] = $"http://127.0.0.1:{parsed.DashboardOtlpPort ?? free[1]}";
            builder.Configuration["ASPIRE_ALLOW_UNSECURED_TRANSPORT"] = "true";
            var token = builder.Configuration["AppHost:BrowserToken"];
            dashboardLoginUrl = string.IsNullOrEmpty(token) ? url : $"{url}/login?t={token}";
        }

        builder.AddStreamPlatform(topology, new ClusterTelemetry(!options.DisableDashboard, parsed.Cluster.OtlpEndpoint));
        builder.Services.AddSingleton(new ClusterReadinessOptions(topology, parsed.HealthTimeout, dashboardLoginUrl, Console.Out, Console.Error));
        builder.Services.AddHostedService<ClusterReadiness>();
        if (parsed.Cluster.RestartCrashed)
        {
            builder.Services.TryAddSingleton(TimeProvider.System);
            builder.Services.AddSingleton(new CrashRestarterOptions(topology, new RestartPolicy(), Console.Out));
            builder.Services.AddHostedService<CrashRestarter>();
        }
        return builder.Build();
    }

    private static DataDirectory? AcquireData(string path)
    {
        try
        {
            return DataDirectory.Acquire(path);
        }
        catch (OrchestrationException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return null;
        }
    }

    private static int Usage(string message, string defaultDataDir)
    {
        Console.Error.WriteLine(message);
        Console.Error.WriteLine();
        Console.Error.WriteLine(AppHostCommandLine.Usage(defaultDataDir));
        return ExitUsage;
    }

    /// <summary>The repository root AppHost.csproj recorded at build time (the default data directory is under it).</summary>
    private static string RepoRoot() =>
        typeof(AppHostMain).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "StreamPlatform.RepoRoot")?.Value
        ?? AppContext.BaseDirectory;
}
