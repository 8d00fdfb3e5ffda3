using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.IntegrationTests.Infrastructure;

/// <summary>
/// A cluster of the class's own on the process harness (<see cref="TestCluster"/>), for test
/// classes that kill -9, stop or restart single services: the harness owns each process, so a
/// kill is a real SIGKILL of the service and a restart reuses its ports and data. Same topology
/// and settings as the shared AppHost cluster. Classes using it stay in <see cref="ClusterCollection"/>
/// so no two clusters do work at the same time.
/// </summary>
public sealed class HarnessClusterFixture : IAsyncLifetime
{
    private TestCluster? _cluster;

    public TestCluster Cluster => _cluster ?? throw new InvalidOperationException("The cluster has not started.");

    public ClusterOrchestrator Orchestrator => Cluster.Orchestrator;

    public string BootstrapServers => Cluster.BootstrapServers;

    public async Task InitializeAsync() => _cluster = await TestCluster.StartAsync();

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
            await _cluster.DisposeAsync();
    }
}
