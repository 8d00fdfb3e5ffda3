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

    public static async Task<ClusterHost> StartAsync(PerfOptions options)
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "streamplatform-bench", Guid.NewGuid().ToString("N"));
        var clusterOptions = new ClusterOptions
        {
            DataDir = dataDir,
            Ports = PortLayout.DynamicPorts,
            Brokers = options.Brokers,
            Gateways = 1,
        };
        foreach (var kind in new[] { ServiceKind.Controller, ServiceKind.Broker, ServiceKind.Gateway })
            clusterOptions.WithEnvironment(kind, "Logging__LogLevel__Default", "Warning");

        var memory = new MemoryOutputSink();
        IOutputSink sink = options.ShowClusterLog
            ? new CompositeOutputSink(memory, new DelegateOutputSink(line => Console.Error.WriteLine(line.ToString())))
            : memory;
        var binaries = ServiceBinaries.FromBuild();
        Console.Error.WriteLine($"perf: starting a cluster ({options.Brokers} broker(s), {binaries.Configuration} build) in {dataDir}");
        if (!string.Equals(binaries.Configuration, "Release", StringComparison.OrdinalIgnoreCase))
            Console.Error.WriteLine($"perf: WARNING: the services are a {binaries.Configuration} build; figures are only meaningful with -c Release.");
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
        Console.Error.WriteLine($"perf: cluster up, bootstrap {orchestrator.BootstrapServers}; pids {pids}");
        return host;
    }

    public async ValueTask DisposeAsync()
    {
        var dataDir = _orchestrator.DataDir;
        await _orchestrator.DisposeAsync();
        var errors = _output.Lines().Where(l => l.Text.Contains("fail:", StringComparison.Ordinal) || l.Text.Contains("crit:", StringComparison.Ordinal)).Take(20).ToList();
        foreach (var line in errors)
            Console.Error.WriteLine("cluster: " + line);
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
