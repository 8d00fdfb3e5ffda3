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
    private readonly object _attachGate = new();
    private ITestOutputHelper? _attached;

    private TestCluster(ClusterOrchestrator orchestrator, MemoryOutputSink output, bool ownsDataDir)
    {
        Orchestrator = orchestrator;
        Output = output;
        KeepDataDir = !ownsDataDir;
    }

    /// <summary>Start/stop/kill/restart single services or the whole cluster here.</summary>
    public ClusterOrchestrator Orchestrator { get; }

    /// <summary>Kafka bootstrap servers of the gateways, e.g. "127.0.0.1:41234".</summary>
    public string BootstrapServers => Orchestrator.BootstrapServers;

    public string DataDir => Orchestrator.DataDir;

    /// <summary>Everything the services and the orchestrator printed.</summary>
    public MemoryOutputSink Output { get; }

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
        // Consumer groups on a 2-core machine: 6 offsets partitions instead of Kafka's 50 (fewer
        // logs to open), and a short first-rebalance delay instead of 3 s so tests do not idle.
        options.BrokerConfigs["offsets.topic.num.partitions"] = "6";
        options.BrokerConfigs["group.initial.rebalance.delay.ms"] = "300";
        options.BrokerConfigs["group.consumer.heartbeat.interval.ms"] = "500";
        // Transactions likewise: 6 __transaction_state partitions instead of 50, and transactions
        // open past their transaction.timeout.ms looked for every second instead of every 10 s.
        options.BrokerConfigs["transaction.state.log.num.partitions"] = "6";
        options.BrokerConfigs["transaction.abort.timed.out.transaction.cleanup.interval.ms"] = "1000";
        configure?.Invoke(options);
        var memory = new MemoryOutputSink();
        TestCluster? cluster = null;
        var sink = new CompositeOutputSink(memory, new DelegateOutputSink(line => cluster?.Forward(line)));
        var orchestratorOptions = new OrchestratorOptions
        {
            Output = sink,
            HealthTimeout = TimeSpan.FromSeconds(60),
            StopGracePeriod = TimeSpan.FromSeconds(10),
        };
        configureOrchestrator?.Invoke(orchestratorOptions);
        var orchestrator = new ClusterOrchestrator(ClusterTopology.Create(options), orchestratorOptions);
        cluster = new TestCluster(orchestrator, memory, ownsDataDir);
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
    public IDisposable AttachOutput(ITestOutputHelper output)
    {
        lock (_attachGate)
            _attached = output;
        return new Detach(this, output);
    }

    /// <summary>Writes everything captured so far (e.g. when a test fails).</summary>
    public void WriteCapturedOutput(ITestOutputHelper output)
    {
        foreach (var line in Output.Lines())
            output.WriteLine(line.ToString());
    }

    public async ValueTask DisposeAsync()
    {
        await Orchestrator.DisposeAsync();
        lock (_attachGate)
            _attached = null;
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

    private void Forward(OutputLine line)
    {
        lock (_attachGate)
        {
            try
            {
                _attached?.WriteLine(line.ToString());
            }
            catch (InvalidOperationException)
            {
                // The test that attached has finished; xunit no longer accepts its output.
                _attached = null;
            }
        }
    }

    private sealed class Detach(TestCluster cluster, ITestOutputHelper output) : IDisposable
    {
        public void Dispose()
        {
            lock (cluster._attachGate)
            {
                if (ReferenceEquals(cluster._attached, output))
                    cluster._attached = null;
            }
        }
    }
}
