using Xunit.Abstractions;
using Xunit.Sdk;
using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.IntegrationTests.Infrastructure;

/// <summary>
/// One cluster shared by every test class in <see cref="ClusterCollection"/>: 1 controller,
/// 3 brokers, 1 gateway on dynamic ports with a temp data dir. Tests that stop or kill a
/// service must leave it running again (restart it) for the classes after them.
/// </summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    private readonly IMessageSink _diagnostics;
    private TestCluster? _cluster;

    public ClusterFixture(IMessageSink diagnostics)
    {
        _diagnostics = diagnostics;
    }

    public TestCluster Cluster => _cluster ?? throw new InvalidOperationException("The cluster has not started.");

    public ClusterOrchestrator Orchestrator => Cluster.Orchestrator;

    public string BootstrapServers => Cluster.BootstrapServers;

    public async Task InitializeAsync()
    {
        _cluster = await TestCluster.StartAsync();
        _diagnostics.OnMessage(new DiagnosticMessage(
            $"Shared test cluster started: bootstrap {BootstrapServers}, data {Cluster.DataDir}"));
    }

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
            await _cluster.DisposeAsync();
    }
}

/// <summary>
/// Every class that starts processes joins this collection: they share <see cref="ClusterFixture"/>
/// and never run in parallel with each other (the machine has 2 cores).
/// </summary>
[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "Cluster";
}
