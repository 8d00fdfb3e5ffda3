using StreamPlatform.AppHost.Orchestration;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Infrastructure;

/// <summary>
/// A real cluster for tests: the AppHost orchestration on free ports, data in a temp folder,
/// output captured in memory (and, while a test attaches, copied to its ITestOutputHelper).
/// Dispose stops every process and deletes the temp data (unless <see cref="KeepDataDir"/>).
/// </summary>
public sealed class TestCluster : IAsyncDisposable
{
    private readonly CapturedOutput _output;

    private TestCluster(ClusterOrchestrator orchestrator, CapturedOutput output, bool ownsDataDir)
    {
        Orchestrator = orchestrator;
        _output = output;
        KeepDataDir = !ownsDataDir;
    }

    /// <summary>Start/stop/kill/restart single services or the whole cluster here.</summary>
    public ClusterOrchestrator Orchestrator { get; }

    /// <summary>Kafka bootstrap servers of the gateways, e.g. "127.0.0.1:41234".</summary>
    public string BootstrapServers => Orchestrator.BootstrapServers;

    public string DataDir => Orchestrator.DataDir;

    /// <summary>Everything the services and the orchestrator printed.</summary>
    public MemoryOutputSink Output => _output.Memory;

    /// <summary>When true, dispose leaves the data folder (to start another cluster on it).</summary>
    public bool KeepDataDir { get; set; }

    /// <summary>
    /// Starts a cluster (default: 1 controller, 3 brokers, 1 gateway) on dynamic ports. Pass
    /// <paramref name="dataDir"/> to reuse the data of an earlier cluster; otherwise a fresh temp
    /// folder is used and deleted on dispose. Throws (with the services' last output) if the
    /// cluster does not become healthy; nothing is left running then.
    /// Crashed services are not restarted (<see cref="ClusterOptions.RestartCrashed"/> off) unless
    /// <paramref name="configure"/> turns it on: a test that kills a service decides when it returns.
    /// <paramref name="configureOrchestrator"/> adjusts the orchestrator (e.g. its restart policy).
    /// </summary>
    public static async Task<TestCluster> StartAsync(Action<ClusterOptions>? configure = null, string? dataDir = null,
        CancellationToken cancellationToken = default, Action<OrchestratorOptions>? configureOrchestrator = null)
    {
        var ownsDataDir = dataDir is null;
        dataDir ??= Path.Combine(Path.GetTempPath(), "streamplatform-tests", Guid.NewGuid().ToString("N"));
        var options = new ClusterOptions { DataDir = dataDir, Ports = PortLayout.DynamicPorts, RestartCrashed = false };
        foreach (var (name, value) in TestClusterSettings.BrokerConfigs)
            options.BrokerConfigs[name] = value;
        configure?.Invoke(options);
        var captured = new CapturedOutput();
        var orchestratorOptions = new OrchestratorOptions
        {
            Output = captured,
            HealthTimeout = TimeSpan.FromSeconds(60),
            StopGracePeriod = TimeSpan.FromSeconds(10),
        };
        configureOrchestrator?.Invoke(orchestratorOptions);
        var orchestrator = new ClusterOrchestrator(ClusterTopology.Create(options), orchestratorOptions);
        var cluster = new TestCluster(orchestrator, captured, ownsDataDir);
        try
        {
            await orchestrator.StartAsync(cancellationToken);
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
        return cluster;
    }

    /// <summary>Copies output to <paramref name="output"/> until the returned handle is disposed (end of the test).</summary>
    public IDisposable AttachOutput(ITestOutputHelper output) => _output.Attach(output);

    /// <summary>Writes everything captured so far (e.g. when a test fails).</summary>
    public void WriteCapturedOutput(ITestOutputHelper output) => _output.WriteTo(output);

    public async ValueTask DisposeAsync()
    {
        await Orchestrator.DisposeAsync();
        _output.Detach();
        if (!KeepDataDir)
        {
            try
            {
                Directory.Delete(DataDir, recursive: true);
            }
            catch (DirectoryNotFoundException)
            {
            }
            catch (IOException)
            {
                // Best effort: a temp folder left behind is harmless.
            }
        }
    }
}
