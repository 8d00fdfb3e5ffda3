using System.Net;
using System.Net.Sockets;
using StreamPlatform.AppHost.Orchestration;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Cluster;

/// <summary>Clusters of their own: full stop/start on the same data, no leaked processes, clear start errors.</summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterLifecycleTests(ITestOutputHelper output)
{
    [Fact]
    public async Task DisposeStopsEveryProcessAndWholeClusterRestartKeepsTheData()
    {
        var cluster = await TestCluster.StartAsync(o => o.Brokers = 2);
        IReadOnlyList<int> pids;
        try
        {
            using var attach = cluster.AttachOutput(output);
            var orchestrator = cluster.Orchestrator;
            var marker = Path.Combine(orchestrator["broker-1"].DataDirectory!, "kept");
            await File.WriteAllTextAsync(marker, "x");
            var firstPids = orchestrator.LiveProcessIds;
            Assert.Equal(4, firstPids.Count);

            // Whole-cluster restart: same ports, same data directory.
            await orchestrator.StopAsync();
            Assert.All(firstPids, pid => Assert.False(SharedClusterTests.IsAlive(pid), $"pid {pid} survived StopAsync"));
            Assert.All(orchestrator.Services, s => Assert.Equal(ServiceState.Stopped, s.State));
            await orchestrator.StartAsync();
            Assert.All(orchestrator.Services, s => Assert.Equal(ServiceState.Running, s.State));
            Assert.True(File.Exists(marker));

            pids = orchestrator.LiveProcessIds;
            Assert.Equal(4, pids.Count);
            Assert.Empty(pids.Intersect(firstPids));
        }
        finally
        {
            await cluster.DisposeAsync();
        }

        Assert.All(pids, pid => Assert.False(SharedClusterTests.IsAlive(pid), $"pid {pid} survived DisposeAsync"));
        Assert.False(Directory.Exists(cluster.DataDir));
    }

    [Fact]
    public async Task ANewClusterOnTheDataOfAnOldOneSeesIt()
    {
        var first = await TestCluster.StartAsync(o => o.Brokers = 1);
        first.KeepDataDir = true;
        var dataDir = first.DataDir;
        await File.WriteAllTextAsync(Path.Combine(first.Orchestrator["broker-1"].DataDirectory!, "kept"), "x");
        await first.DisposeAsync();

        var second = await TestCluster.StartAsync(o => o.Brokers = 1, dataDir);
        second.KeepDataDir = false;
        await using (second)
        {
            Assert.True(File.Exists(Path.Combine(second.Orchestrator["broker-1"].DataDirectory!, "kept")));
            Assert.All(second.Orchestrator.Services, s => Assert.Equal(ServiceState.Running, s.State));
        }
    }

    [Fact]
    public async Task TwoClustersCannotShareADataDirectory()
    {
        await using var first = await TestCluster.StartAsync(o => o.Brokers = 1);
        var error = await Assert.ThrowsAsync<OrchestrationException>(() => TestCluster.StartAsync(o => o.Brokers = 1, first.DataDir));
        Assert.Contains("in use", error.Message);
        Assert.All(first.Orchestrator.Services, s => Assert.Equal(ServiceState.Running, s.State));
    }

    [Fact]
    public async Task APortInUseFailsBeforeAnythingStarts()
    {
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((IPEndPoint)squatter.LocalEndpoint).Port;
        var before = ProcessControl.LiveChildIds.Count;
        var free = PortAllocation.FindFreePorts(6);

        var error = await Assert.ThrowsAsync<OrchestrationException>(() => TestCluster.StartAsync(o =>
        {
            o.Brokers = 1;
            o.Ports = PortLayout.Fixed(basePort: 0, kafkaPort: 0, new Dictionary<(string, string), int>
            {
                [("controller-1", "http")] = free[0],
                [("controller-1", "grpc")] = free[1],
                [("broker-1", "http")] = port,
                [("broker-1", "grpc")] = free[2],
                [("gateway-1", "kafka")] = free[3],
                [("gateway-1", "http")] = free[4],
                [("gateway-1", "grpc")] = free[5],
            });
        }));
        output.WriteLine(error.Message);
        Assert.Contains($"{port} (broker-1 http)", error.Message);
        Assert.Equal(before, ProcessControl.LiveChildIds.Count);
    }

    [Fact]
    public async Task AServiceThatCrashesOnStartFailsTheStartWithItsOutput()
    {
        var before = ProcessControl.LiveChildIds.Count;
        // A URL Kestrel cannot parse: the real controller process fails during startup.
        var error = await Assert.ThrowsAsync<OrchestrationException>(() => TestCluster.StartAsync(o =>
        {
            o.Brokers = 1;
            o.WithEnvironment("controller-1", "Kestrel__Endpoints__http__Url", "not a url");
        }));
        output.WriteLine(error.Message);
        Assert.Contains("controller-1 exited with code", error.Message);
        Assert.Contains("Last lines of controller-1's output", error.Message);
        Assert.Equal(before, ProcessControl.LiveChildIds.Count);
    }
}
