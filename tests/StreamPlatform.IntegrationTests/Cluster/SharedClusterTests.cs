using System.Diagnostics;
using System.Net;
using StreamPlatform.AppHost.Orchestration;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Cluster;

/// <summary>The shared cluster: health of every service, and single-service restart and kill.</summary>
[Collection(ClusterCollection.Name)]
public sealed class SharedClusterTests : IDisposable, IClassFixture<HarnessClusterFixture>
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(5) };

    private readonly HarnessClusterFixture _fixture;
    private readonly IDisposable _attach;

    public SharedClusterTests(HarnessClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    [Fact]
    public async Task EveryServiceAnswersHealthAndAlive()
    {
        var services = _fixture.Orchestrator.Services;
        Assert.Equal(["controller-1", "broker-1", "broker-2", "broker-3", "gateway-1"], services.Select(s => s.Name));
        foreach (var service in services)
        {
            Assert.Equal(ServiceState.Running, service.State);
            Assert.Equal(HttpStatusCode.OK, await StatusAsync(service, "/health"));
            Assert.Equal(HttpStatusCode.OK, await StatusAsync(service, "/alive"));
        }
        Assert.Matches(@"^127\.0\.0\.1:\d+$", _fixture.BootstrapServers);
        Assert.Equal(_fixture.Orchestrator["gateway-1"].KafkaAddress, _fixture.BootstrapServers);
    }

    [Fact]
    public async Task RestartOfOneBrokerGivesANewHealthyProcessAndLeavesTheOthersAlone()
    {
        var orchestrator = _fixture.Orchestrator;
        var broker = orchestrator["broker-2"];
        var oldPid = broker.ProcessId!.Value;
        var othersBefore = orchestrator.Services.Where(s => s != broker).ToDictionary(s => s.Name, s => s.ProcessId);
        var starts = broker.StartCount;

        await orchestrator.RestartServiceAsync("broker-2");

        Assert.Equal(ServiceState.Running, broker.State);
        Assert.NotEqual(oldPid, broker.ProcessId);
        Assert.Equal(starts + 1, broker.StartCount);
        Assert.Equal(0, broker.ExitCode ?? 0);
        Assert.False(IsAlive(oldPid), $"old broker-2 process {oldPid} still runs");
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(broker, "/health"));
        Assert.Equal(othersBefore, orchestrator.Services.Where(s => s != broker).ToDictionary(s => s.Name, s => s.ProcessId));
    }

    [Fact]
    public async Task KilledBrokerStopsAnsweringAndComesBackOnItsPortsAndData()
    {
        var orchestrator = _fixture.Orchestrator;
        var broker = orchestrator["broker-3"];
        var oldPid = broker.ProcessId!.Value;
        var marker = Path.Combine(broker.DataDirectory!, "kept-across-restart");
        await File.WriteAllTextAsync(marker, "x");

        await orchestrator.KillServiceAsync("broker-3");
        Assert.Equal(ServiceState.Stopped, broker.State);
        Assert.False(IsAlive(oldPid));
        // SIGKILL: the process did not exit by itself.
        Assert.NotEqual(0, broker.ExitCode);
        await Assert.ThrowsAsync<HttpRequestException>(() => StatusAsync(broker, "/health"));

        await orchestrator.StartServiceAsync("broker-3");
        Assert.Equal(ServiceState.Running, broker.State);
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(broker, "/health"));
        Assert.True(File.Exists(marker));
    }

    [Fact]
    public async Task StartAsyncOnARunningClusterStartsOnlyWhatIsDown()
    {
        var orchestrator = _fixture.Orchestrator;
        await orchestrator.KillServiceAsync("broker-1");
        var others = orchestrator.Services.Where(s => s.Name != "broker-1").ToDictionary(s => s.Name, s => s.ProcessId);

        await orchestrator.StartAsync();

        Assert.All(orchestrator.Services, s => Assert.Equal(ServiceState.Running, s.State));
        Assert.True(orchestrator["broker-1"].IsProcessAlive);
        Assert.Equal(others, orchestrator.Services.Where(s => s.Name != "broker-1").ToDictionary(s => s.Name, s => s.ProcessId));
    }

    [Fact]
    public void ServicesGetTheEnvironmentTheArchitectureDocumentDescribes()
    {
        // Read the real process environment (Linux /proc), not the orchestrator's intent.
        var orchestrator = _fixture.Orchestrator;
        var controller = orchestrator.Controller;
        var broker = orchestrator["broker-1"];
        var gateway = orchestrator["gateway-1"];
        var env = ReadEnvironment(broker.ProcessId!.Value);

        Assert.Equal("1", env["Broker__BrokerId"]);
        Assert.Equal(broker.DataDirectory, env["Broker__DataDir"]);
        Assert.Equal($"http://127.0.0.1:{broker.Resource.GetEndpoint("grpc").Port}", env["Broker__AdvertisedGrpcEndpoint"]);
        Assert.Equal($"http://127.0.0.1:{broker.Resource.GetEndpoint("http").Port}", env["Kestrel__Endpoints__http__Url"]);
        Assert.Equal("Http2", env["Kestrel__Endpoints__grpc__Protocols"]);
        Assert.Equal(controller.GrpcEndpoint.ToString().TrimEnd('/'), env["services__controller__grpc__0"]);
        Assert.Equal("broker", env["OTEL_SERVICE_NAME"]);
        Assert.Equal("service.instance.id=broker-1", env["OTEL_RESOURCE_ATTRIBUTES"]);

        var gatewayEnv = ReadEnvironment(gateway.ProcessId!.Value);
        Assert.Equal(_fixture.BootstrapServers, $"{gatewayEnv["Gateway__KafkaListenAddress"]}:{gatewayEnv["Gateway__KafkaPort"]}");
        Assert.Equal("1", gatewayEnv["Gateway__NodeId"]);

        var controllerEnv = ReadEnvironment(controller.ProcessId!.Value);
        Assert.Equal(controller.DataDirectory, controllerEnv["Controller__DataDir"]);
        Assert.False(controllerEnv.ContainsKey("services__controller__grpc__0"));
    }

    private static async Task<HttpStatusCode> StatusAsync(ServiceInstance service, string path)
    {
        using var response = await Http.GetAsync(new Uri(service.HttpEndpoint, path));
        return response.StatusCode;
    }

    internal static bool IsAlive(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    internal static Dictionary<string, string> ReadEnvironment(int pid)
    {
        var raw = File.ReadAllText($"/proc/{pid}/environ");
        return raw.Split('\0', StringSplitOptions.RemoveEmptyEntries)
            .Select(kv => kv.Split('=', 2))
            .Where(kv => kv.Length == 2)
            .GroupBy(kv => kv[0])
            .ToDictionary(g => g.Key, g => g.Last()[1]);
    }
}
