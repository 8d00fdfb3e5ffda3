using Xunit.Abstractions;
using Xunit.Sdk;

namespace StreamPlatform.IntegrationTests.Infrastructure;

/// <summary>
/// One cluster shared by every test class in <see cref="ClusterCollection"/>: 1 controller,
/// 3 brokers, 1 gateway, started through the AppHost with Aspire.Hosting.Testing
/// (<see cref="AppHostCluster"/>) on free ports with a temp data dir. Classes that kill, stop or
/// restart services start their own cluster on the process harness (<see cref="HarnessClusterFixture"/>).
/// </summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    private readonly IMessageSink _diagnostics;
    private AppHostCluster? _cluster;

    public ClusterFixture(IMessageSink diagnostics)
    {
        _diagnostics = diagnostics;
    }

    public AppHostCluster Cluster => _cluster ?? throw new InvalidOperationException("The cluster has not started.");

    public string BootstrapServers => Cluster.BootstrapServers;

    public async Task InitializeAsync()
    {
        _cluster = await AppHostCluster.StartAsync();
        _diagnostics.OnMessage(new DiagnosticMessage(
            $"Shared test cluster started through the AppHost (Aspire): bootstrap {BootstrapServers}, data {Cluster.DataDir}"));
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
