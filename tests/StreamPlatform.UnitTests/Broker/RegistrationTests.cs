using System.Net;
using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using StreamPlatform.Broker;
using StreamPlatform.Broker.Services;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Controller;
using StreamPlatform.Controller.Grpc;
using StreamPlatform.Protos.Grpc.Broker;
using StreamPlatform.Protos.Grpc.Controller;
using StreamPlatform.UnitTests.Storage;

namespace StreamPlatform.UnitTests.Broker;

/// <summary>
/// The broker against the real controller, both in process on loopback ports: registration,
/// readiness, metadata-driven log creation, produce over gRPC and a clean shutdown.
/// </summary>
public sealed class RegistrationTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static WebApplicationBuilder Builder(Dictionary<string, string?> config)
    {
        var builder = WebApplication.CreateBuilder();
        builder.Configuration.AddInMemoryCollection(config);
        builder.Logging.ClearProviders();
        return builder;
    }

    private static async Task Eventually(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"Timed out waiting for {what}.");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task Broker_registers_becomes_ready_follows_metadata_and_closes_cleanly()
    {
        var controllerPort = FreePort();
        var brokerPort = FreePort();
        var controllerUrl = $"http://127.0.0.1:{controllerPort}";
        var brokerUrl = $"http://127.0.0.1:{brokerPort}";

        var cb = Builder(new()
        {
            ["Kestrel:Endpoints:grpc:Url"] = controllerUrl,
            ["Kestrel:Endpoints:grpc:Protocols"] = "Http2",
            ["Controller:NodeId"] = "0",
            ["Controller:DataDir"] = Path.Combine(_dir.Path, "controller"),
            ["Controller:ClusterId"] = "registration-test",
        });
        ControllerServiceExtensions.AddApplicationServices(cb);
        await using var controller = cb.Build();
        controller.MapGrpcService<ControllerGrpcService>();
        await controller.StartAsync();

        var bb = Builder(new()
        {
            ["Kestrel:Endpoints:grpc:Url"] = brokerUrl,
            ["Kestrel:Endpoints:grpc:Protocols"] = "Http2",
            ["Broker:BrokerId"] = "1",
            ["Broker:DataDir"] = Path.Combine(_dir.Path, "broker-1"),
            ["services:controller:grpc:0"] = controllerUrl,
        });
        BrokerServiceExtensions.AddApplicationServices(bb);
        await using var broker = bb.Build();
        broker.MapGrpcService<BrokerGrpcService>();
        broker.MapGrpcService<ProduceStreamGrpcService>();
        await broker.StartAsync();

        var health = broker.Services.GetRequiredService<HealthCheckService>();
        await Eventually(async () => (await health.CheckHealthAsync()).Status == HealthStatus.Healthy, "the broker to be ready");

        using var controllerChannel = GrpcChannel.ForAddress(controllerUrl);
        var controllerClient = new ControllerService.ControllerServiceClient(controllerChannel);
        var metadata = await controllerClient.GetMetadataAsync(new GetMetadataRequest());
        var registered = Assert.Single(metadata.Brokers);
        Assert.Equal((1, brokerUrl, false), (registered.BrokerId, registered.GrpcEndpoint, registered.Fenced));

        var created = await controllerClient.CreateTopicsAsync(new CreateTopicsRequest { Topics = { new CreatableTopic { Name = "orders", NumPartitions = 2, ReplicationFactor = 1 } } });
        Assert.Equal(0, Assert.Single(created.Results).ErrorCode);
        var logs = broker.Services.GetRequiredService<LogManager>();
        await Eventually(() => Task.FromResult(logs.TryGetLog(new TopicPartition("orders", 1), out _)), "the log of orders-1");

        using var brokerChannel = GrpcChannel.ForAddress(brokerUrl);
        var brokerClient = new BrokerService.BrokerServiceClient(brokerChannel);
        var produced = await brokerClient.ProduceAsync(new ProduceRequest
        {
            Acks = -1,
            Partitions = { new PartitionProduce { Topic = "orders", Partition = 1, Records = ByteString.CopyFrom(TestBatches.Build(1_700_000_000_000, "o1")) } },
        });
        Assert.Equal((0, 0L), (produced.Results[0].ErrorCode, produced.Results[0].BaseOffset));

        await broker.StopAsync();
        Assert.True(File.Exists(Path.Combine(_dir.Path, "broker-1", "orders-1", PartitionLog.CleanShutdownFile)));
        await controller.StopAsync();
    }
}
