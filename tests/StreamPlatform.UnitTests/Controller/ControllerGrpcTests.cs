using System.Net;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using StreamPlatform.Controller;
using StreamPlatform.Controller.Grpc;
using StreamPlatform.Controller.Metadata;
using StreamPlatform.Protos.Grpc.Controller;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Controller;

/// <summary>The real controller host (same wiring as Program.cs) on loopback ports, called over gRPC.</summary>
public sealed class ControllerGrpcTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sp-ctl-grpc-" + Guid.NewGuid().ToString("N"));
    private WebApplication _app = null!;
    private GrpcChannel _channel = null!;
    private string _httpAddress = "";

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Controller:DataDir"] = _dir,
            ["Controller:BrokerConfigs:num.partitions"] = "3",
        });
        builder.WebHost.UseKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http1);
            k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2);
        });
        builder.AddServiceDefaults();
        builder.AddApplicationServices();
        _app = builder.Build();
        _app.MapGrpcService<ControllerGrpcService>();
        _app.MapDefaultEndpoints();
        await _app.StartAsync();
        var addresses = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.ToArray();
        _httpAddress = addresses[0];
        _channel = GrpcChannel.ForAddress(addresses[1]);
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _app.DisposeAsync();
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Register_heartbeat_create_get_and_watch_over_grpc_then_the_watch_ends_cleanly_on_shutdown()
    {
        using (var http = new HttpClient())
            Assert.Equal("Healthy", await http.GetStringAsync(_httpAddress + "/health"));

        var client = new ControllerService.ControllerServiceClient(_channel);
        using var watch = client.WatchMetadata(new WatchMetadataRequest { Watcher = "test", KnownEpoch = 0 });
        Assert.True(await watch.ResponseStream.MoveNext(CancellationToken.None));
        var initial = watch.ResponseStream.Current.Snapshot;
        Assert.Equal(22, initial.ClusterId.Length);
        Assert.Equal("3", initial.BrokerConfigs["num.partitions"]);

        var reg = await client.RegisterBrokerAsync(new RegisterBrokerRequest { BrokerId = 1, GrpcEndpoint = "http://127.0.0.1:17101", IncarnationId = "i1" });
        Assert.Equal((0, 500, 6000), (reg.ErrorCode, reg.HeartbeatIntervalMs, reg.SessionTimeoutMs));
        Assert.Equal(0, (await client.BrokerHeartbeatAsync(new BrokerHeartbeatRequest { BrokerId = 1, BrokerEpoch = reg.BrokerEpoch })).ErrorCode);
        var stale = await client.BrokerHeartbeatAsync(new BrokerHeartbeatRequest { BrokerId = 1, BrokerEpoch = reg.BrokerEpoch - 1 });
        Assert.Equal((ErrorCodes.StaleBrokerEpoch, true), ((short)stale.ErrorCode, stale.Fenced));
        Assert.Equal(0, (await client.RegisterGatewayAsync(new RegisterGatewayRequest { NodeId = 0, KafkaHost = "127.0.0.1", KafkaPort = 9092 })).ErrorCode);

        var created = await client.CreateTopicsAsync(new CreateTopicsRequest { Topics = { new CreatableTopic { Name = "orders", NumPartitions = -1, ReplicationFactor = -1 } } });
        Assert.Equal((0, 3), (created.Results[0].ErrorCode, created.Results[0].NumPartitions));

        var metadata = await client.GetMetadataAsync(new GetMetadataRequest());
        Assert.Equal("orders", Assert.Single(metadata.Topics).Name);
        Assert.Single(metadata.Gateways);

        // The watcher sees the changes in epoch order, possibly coalesced, ending at the current epoch.
        var epochs = new List<long>();
        while (epochs.Count == 0 || epochs[^1] < metadata.MetadataEpoch)
        {
            Assert.True(await watch.ResponseStream.MoveNext(CancellationToken.None));
            epochs.Add(watch.ResponseStream.Current.Snapshot.MetadataEpoch);
        }
        Assert.Equal(epochs.Order(), epochs);
        Assert.Equal(metadata, watch.ResponseStream.Current.Snapshot);

        var stopping = _app.StopAsync();
        Assert.False(await watch.ResponseStream.MoveNext(CancellationToken.None)); // ends with OK, not an error
        await stopping.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Errors_over_grpc_carry_kafka_codes()
    {
        var client = new ControllerService.ControllerServiceClient(_channel);
        var response = await client.DeleteTopicsAsync(new DeleteTopicsRequest { Topics = { new TopicRef { Name = "missing" } } });
        Assert.Equal(ErrorCodes.UnknownTopicOrPartition, (short)response.Results[0].ErrorCode);
        var invalid = await client.CreateTopicsAsync(new CreateTopicsRequest { Topics = { new CreatableTopic { Name = "bad/name", NumPartitions = 1, ReplicationFactor = 1 } } });
        Assert.Equal(ErrorCodes.InvalidTopicException, (short)invalid.Results[0].ErrorCode);
        var alter = await client.AlterPartitionAsync(new AlterPartitionRequest { BrokerId = 5, BrokerEpoch = 1 });
        Assert.Equal(ErrorCodes.StaleBrokerEpoch, (short)alter.ErrorCode);
    }

    [Fact]
    public async Task Alter_partition_over_grpc_changes_the_isr_and_answers_the_new_state()
    {
        var client = new ControllerService.ControllerServiceClient(_channel);
        var b1 = await client.RegisterBrokerAsync(new RegisterBrokerRequest { BrokerId = 1, GrpcEndpoint = "http://127.0.0.1:17101", IncarnationId = "i1" });
        await client.RegisterBrokerAsync(new RegisterBrokerRequest { BrokerId = 2, GrpcEndpoint = "http://127.0.0.1:17102", IncarnationId = "i2" });
        var created = await client.CreateTopicsAsync(new CreateTopicsRequest
        {
            Topics = { new CreatableTopic { Name = "r", NumPartitions = -1, ReplicationFactor = -1, Assignments = { [0] = new ReplicaList { BrokerIds = { 1, 2 } } } } },
        });
        Assert.Equal(0, created.Results[0].ErrorCode);
        var response = await client.AlterPartitionAsync(new AlterPartitionRequest
        {
            BrokerId = 1,
            BrokerEpoch = b1.BrokerEpoch,
            Topics = { new AlterPartitionTopic { TopicId = created.Results[0].TopicId, Partitions = { new AlterPartitionItem { Partition = 0, NewIsr = { 1 } } } } },
        });
        var item = response.Topics.Single().Partitions.Single();
        Assert.Equal((0, 0, 1, 0, 1), (response.ErrorCode, item.ErrorCode, item.LeaderId, item.LeaderEpoch, item.PartitionEpoch));
        Assert.Equal([1], item.Isr);
        var metadata = await client.GetMetadataAsync(new GetMetadataRequest());
        Assert.Equal([1], metadata.Topics.Single().Partitions.Single().Isr);
        Assert.Equal(StreamPlatform.Controller.Metadata.MetadataVersions.Replication, metadata.MetadataVersion);
    }
}
