using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Protos.Grpc.Clients;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// The real controller, two real brokers and the real gateway host (same wiring as their
/// Program.cs files), in process on loopback ports, under a fresh temporary data directory.
/// <see cref="StartAsync"/> returns once the gateway is registered and its metadata lists both
/// brokers and itself; <see cref="DisposeAsync"/> stops the hosts in reverse order and deletes
/// the data.
/// </summary>
internal sealed class InProcessCluster : IAsyncDisposable
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(20);

    private readonly string _dir;
    private readonly List<WebApplication> _apps = [];
    private readonly List<WebApplication> _brokers = [];

    private InProcessCluster(string dir) => _dir = dir;

    public WebApplication Gateway { get; private set; } = null!;
    public IReadOnlyList<WebApplication> Brokers => _brokers;
    public int KafkaPort { get; private set; }

    /// <param name="dirPrefix">Names the temporary data directory (one per test class helps when one is left behind).</param>
    /// <param name="controllerConfig">Extra controller configuration, e.g. Controller:BrokerConfigs:num.partitions.</param>
    public static async Task<InProcessCluster> StartAsync(string dirPrefix, IReadOnlyDictionary<string, string?>? controllerConfig = null)
    {
        var cluster = new InProcessCluster(Path.Combine(Path.GetTempPath(), dirPrefix + Guid.NewGuid().ToString("N")));
        try
        {
            await cluster.StartHostsAsync(controllerConfig);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>A Kafka client connection to the gateway over TCP.</summary>
    public async Task<PipeClient> ConnectAsync()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(IPAddress.Loopback, KafkaPort);
        return new PipeClient(socket);
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    /// <summary>Builds and starts one host as its Program.cs would (service defaults, application services, endpoints).</summary>
    private async Task<WebApplication> StartHostAsync(Dictionary<string, string?> config, int port, HttpProtocols protocols,
        Action<WebApplicationBuilder> addApplicationServices, Action<WebApplication> mapEndpoints)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.Configuration.AddInMemoryCollection(config);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, port, l => l.Protocols = protocols));
        builder.AddServiceDefaults();
        addApplicationServices(builder);
        var app = builder.Build();
        mapEndpoints(app);
        try
        {
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
        _apps.Add(app);
        return app;
    }

    /// <summary>
    /// Starts a host on a port picked up front (its address must be configured before it starts).
    /// The port was free when picked, but tests run in parallel and outgoing connections take
    /// ephemeral ports too, so it can be taken before Kestrel binds: then pick another.
    /// </summary>
    private static async Task<WebApplication> StartOnPickedPortAsync(Func<int, Task<WebApplication>> start)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await start(FreePort());
            }
            catch (IOException ex) when (ex.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException && attempt < 5)
            {
            }
        }
    }

    private async Task StartHostsAsync(IReadOnlyDictionary<string, string?>? controllerConfig)
    {
        var controllerSettings = new Dictionary<string, string?> { ["Controller:DataDir"] = Path.Combine(_dir, "controller") };
        foreach (var (key, value) in controllerConfig ?? new Dictionary<string, string?>()) controllerSettings[key] = value;
        var controller = await StartHostAsync(controllerSettings, 0, HttpProtocols.Http2,
            b => StreamPlatform.Controller.ControllerServiceExtensions.AddApplicationServices(b),
            app => app.MapGrpcService<StreamPlatform.Controller.Grpc.ControllerGrpcService>());
        var controllerUrl = controller.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();

        foreach (var brokerId in new[] { 1, 2 })
        {
            // The advertised endpoint must be known before the host starts, hence a port picked up front.
            _brokers.Add(await StartOnPickedPortAsync(port => StartHostAsync(new()
            {
                ["Broker:BrokerId"] = brokerId.ToString(),
                ["Broker:DataDir"] = Path.Combine(_dir, $"broker-{brokerId}"),
                ["Broker:AdvertisedGrpcEndpoint"] = $"http://127.0.0.1:{port}",
                ["services:controller:grpc:0"] = controllerUrl,
            }, port, HttpProtocols.Http2,
                b => StreamPlatform.Broker.BrokerServiceExtensions.AddApplicationServices(b),
                app =>
                {
                    app.MapGrpcService<StreamPlatform.Broker.Services.BrokerGrpcService>();
                    app.MapGrpcService<StreamPlatform.Broker.Services.ProduceStreamGrpcService>();
                })));
        }

        Gateway = await StartOnPickedPortAsync(kafkaPort => StartHostAsync(new()
        {
            ["Gateway:NodeId"] = "0",
            ["Gateway:KafkaPort"] = kafkaPort.ToString(),
            ["services:controller:grpc:0"] = controllerUrl,
        }, 0, HttpProtocols.Http1,
            b => StreamPlatform.Gateway.GatewayExtensions.AddApplicationServices(b),
            app =>
            {
                app.MapGrpcService<StreamPlatform.Gateway.GatewayStatusService>();
                app.MapDefaultEndpoints();
            }));
        KafkaPort = Gateway.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<StreamPlatform.Gateway.GatewayOptions>>().Value.KafkaPort;

        // Ready: registered, metadata applied, both brokers and this gateway in it.
        var registration = Gateway.Services.GetRequiredService<GatewayRegistration>();
        var watcher = Gateway.Services.GetRequiredService<MetadataWatcher>();
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < ReadyTimeout)
        {
            var health = await registration.CheckHealthAsync(new HealthCheckContext());
            var m = watcher.Current;
            if (health.Status == HealthStatus.Healthy && m.BrokersById.Values.Count(x => !x.Fenced) == 2 && m.LiveGateways.Count == 1) return;
            await Task.Delay(50);
        }
        throw new TimeoutException("cluster did not become ready");
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = _apps.Count - 1; i >= 0; i--)
        {
            await _apps[i].StopAsync();
            await _apps[i].DisposeAsync();
        }
        _apps.Clear();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
