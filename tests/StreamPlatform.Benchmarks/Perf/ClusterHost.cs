using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.Benchmarks.Perf;

/// <summary>
/// A cluster for the benchmark, started through the AppHost orchestration library: dynamic ports,
/// a temp data folder (deleted on dispose), services from this build's configuration
/// (<see cref="ServiceBinaries.FromBuild"/>; run the tool with -c Release). Services log at
/// Warning so console output costs no CPU the figures would miss.
/// </summary>
public sealed class ClusterHost : IAsyncDisposable
{
    private readonly ClusterOrchestrator _orchestrator;
    private readonly MemoryOutputSink _output;

    private ClusterHost(ClusterOrchestrator orchestrator, MemoryOutputSink output)
    {
        _orchestrator = orchestrator;
        _output = output;
    }

    public string BootstrapServers => _orchestrator.BootstrapServers;

    /// <summary>The orchestrator, for commands that kill and restart services (fault).</summary>
    public ClusterOrchestrator Orchestrator => _orchestrator;

    /// <summary>Service name -> process id of the services running now.</summary>
    public IReadOnlyDictionary<string, int> ProcessIds =>
        _orchestrator.Services.Where(s => s.ProcessId is not null).ToDictionary(s => s.Name, s => s.ProcessId!.Value);

    public static Task<ClusterHost> StartAsync(PerfOptions options) => StartAsync("perf", options.Brokers, options.ShowClusterLog);

    /// <param name="tool">Prefix of the progress lines ("perf", "fault").</param>
    /// <param name="configure">Adjusts the cluster's options after the defaults here (e.g. the fault settings).</param>
    public static async Task<ClusterHost> StartAsync(string tool, int brokers, bool showClusterLog, Action<ClusterOptions>? configure = null)
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "streamplatform-bench", Guid.NewGuid().ToString("N"));
        var clusterOptions = new ClusterOptions
        {
            DataDir = dataDir,
            Ports = PortLayout.DynamicPorts,
            Brokers = brokers,
            Gateways = 1,
            // A crash during a measured run must show as a failed run, not be healed mid-figure.
            RestartCrashed = false,
        };
        foreach (var kind in new[] { ServiceKind.Controller, ServiceKind.Broker, ServiceKind.Gateway })
            clusterOptions.WithEnvironment(kind, "Logging__LogLevel__Default", "Warning");
        configure?.Invoke(clusterOptions);

        var memory = new MemoryOutputSink();
        IOutputSink sink = showClusterLog
            ? new CompositeOutputSink(memory, new DelegateOutputSink(line => Console.Error.WriteLine(line.ToString())))
            : memory;
        var binaries = ServiceBinaries.FromBuild();
        Console.Error.WriteLine($"{tool}: starting a cluster ({brokers} broker(s), {binaries.Configuration} build) in {dataDir}");
        if (!string.Equals(binaries.Configuration, "Release", StringComparison.OrdinalIgnoreCase))
            Console.Error.WriteLine($"{tool}: WARNING: the services are a {binaries.Configuration} build; figures are only meaningful with -c Release.");
        var orchestrator = new ClusterOrchestrator(ClusterTopology.Create(clusterOptions), new OrchestratorOptions
        {
            Output = sink,
            HealthTimeout = TimeSpan.FromSeconds(120),
            StopGracePeriod = TimeSpan.FromSeconds(10),
        });
        var host = new ClusterHost(orchestrator, memory);
        try
        {
            await orchestrator.StartAsync();
        }
        catch
        {
            Console.Error.WriteLine(memory.Dump());
            await host.DisposeAsync();
            throw;
        }
        // Process ids, so a profiler (dotnet-trace collect -p PID) can attach during a run.
        var pids = string.Join(", ", orchestrator.Services.Select(s => $"{s.Name}={s.ProcessId}"));
        Console.Error.WriteLine($"{tool}: cluster up, bootstrap {orchestrator.BootstrapServers}; pids {pids}");
        return host;
    }

    public async ValueTask DisposeAsync()
    {
        var dataDir = _orchestrator.DataDir;
        await _orchestrator.DisposeAsync();
        // Errors the services logged during the run: counted, the first few shown (they may
        // explain a figure, and logging them cost CPU during the run).
        var errors = _output.Lines().Where(l => l.Text.Contains(" fail: ", StringComparison.Ordinal) || l.Text.Contains(" crit: ", StringComparison.Ordinal)).ToList();
        if (errors.Count > 0)
        {
            Console.Error.WriteLine($"cluster: the services logged {errors.Count} error line(s); distinct first ones:");
            foreach (var text in errors.Select(l => $"[{l.Source}] {l.Text}").Select(t => t.Length > 240 ? t[..240] + "..." : t)
                         .DistinctBy(t => t.Length > 90 ? t[40..90] : t).Take(8))
                Console.Error.WriteLine("cluster:   " + text);
        }
        try
        {
            Directory.Delete(dataDir, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"perf: could not delete {dataDir}: {e.Message}");
        }
    }
}
