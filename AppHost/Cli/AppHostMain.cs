using System.Runtime.InteropServices;
using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.AppHost.Cli;

/// <summary>The `dotnet run --project AppHost` entry point: parse, start health-gated, wait for Ctrl+C, stop.</summary>
public static class AppHostMain
{
    public const int ExitOk = 0;
    public const int ExitFailed = 1;
    public const int ExitUsage = 2;

    public static async Task<int> RunAsync(string[] args)
    {
        ServiceBinaries binaries;
        try
        {
            binaries = ServiceBinaries.FromBuild();
        }
        catch (InvalidOperationException e)
        {
            Console.Error.WriteLine(e.Message);
            return ExitFailed;
        }
        var defaultDataDir = Path.Combine(binaries.RepoRoot, ".data");
        var parsed = AppHostCommandLine.Parse(args, defaultDataDir, out var error,
            Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT"));
        if (parsed is null)
        {
            Console.Error.WriteLine($"error: {error}");
            Console.Error.WriteLine();
            Console.Error.WriteLine(AppHostCommandLine.Usage(defaultDataDir));
            return ExitUsage;
        }
        if (parsed.ShowHelp)
        {
            Console.WriteLine(AppHostCommandLine.Usage(defaultDataDir));
            return ExitOk;
        }

        ClusterTopology topology;
        try
        {
            topology = ClusterTopology.Create(parsed.Cluster);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            Console.Error.WriteLine();
            Console.Error.WriteLine(AppHostCommandLine.Usage(defaultDataDir));
            return ExitUsage;
        }

        using var stopping = new CancellationTokenSource();
        var signalCount = 0;
        void OnStopSignal(PosixSignalContext context)
        {
            // First signal: orderly stop (gateways, brokers, controller). Second: kill everything now.
            context.Cancel = true;
            if (Interlocked.Increment(ref signalCount) == 1)
            {
                Console.WriteLine("[apphost] stop requested (press Ctrl+C again to kill every service at once)");
                stopping.Cancel();
            }
            else
            {
                Console.WriteLine("[apphost] killing all services");
                ProcessControl.KillAllChildren();
                Environment.Exit(130);
            }
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnStopSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnStopSignal);
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, OnStopSignal);

        try
        {
            if (parsed.Clean)
            {
                DataDirectory.Clean(parsed.Cluster.DataDir);
                Console.WriteLine($"[apphost] cleaned {Path.GetFullPath(parsed.Cluster.DataDir)}");
            }

            await using var orchestrator = new ClusterOrchestrator(topology, new OrchestratorOptions
            {
                Binaries = binaries,
                HealthTimeout = parsed.HealthTimeout,
            });
            try
            {
                await orchestrator.StartAsync(stopping.Token);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return ExitOk;
            }

            PrintBanner(orchestrator);
            try
            {
                await Task.Delay(Timeout.Infinite, stopping.Token);
            }
            catch (OperationCanceledException)
            {
            }
            await orchestrator.StopAsync();
            return ExitOk;
        }
        catch (OrchestrationException e)
        {
            Console.Error.WriteLine($"[apphost] error: {e.Message}");
            return ExitFailed;
        }
    }

    private static void PrintBanner(ClusterOrchestrator orchestrator)
    {
        var lines = new List<string>
        {
            "",
            "StreamPlatform is running.",
            $"  Kafka bootstrap servers: {orchestrator.BootstrapServers}",
            $"    e.g. kcat -b {orchestrator.BootstrapServers} -L",
            $"  Data directory: {orchestrator.DataDir}",
            "  Services:",
        };
        foreach (var s in orchestrator.Services)
        {
            var kafka = s.KafkaAddress is { } k ? $"  kafka {k}" : "";
            lines.Add($"    {s.Name,-11} pid {s.ProcessId,-7} http {s.HttpEndpoint}  grpc {s.GrpcEndpoint}{kafka}");
        }
        lines.Add(orchestrator.RestartCrashed
            ? "  A service that crashes is restarted after a backoff (--no-restart leaves it down)."
            : "  A service that crashes stays down (--no-restart).");
        lines.Add($"  Stop: press Ctrl+C (or kill -TERM {Environment.ProcessId}); the data directory is kept (--clean wipes it).");
        lines.Add("");
        Console.WriteLine(string.Join(Environment.NewLine, lines));
    }
}
