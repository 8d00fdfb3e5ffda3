using System.Diagnostics.Metrics;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Controller.Hosting;
using StreamPlatform.Controller.Metadata;

namespace StreamPlatform.UnitTests.Controller;

public sealed class HostingTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sp-ctl-host-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Health_is_unhealthy_until_replayed_and_the_background_loop_fences_silent_brokers()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        using var controller = new MetadataController(new ControllerOptions { DataDir = _dir }, time, new Random(1), NullLogger<MetadataController>.Instance);
        var health = new MetadataLogHealthCheck(controller);
        Assert.Equal(HealthStatus.Unhealthy, (await health.CheckHealthAsync(new HealthCheckContext())).Status);
        Assert.Throws<ControllerNotReadyException>(() => controller.GetMetadata());

        using var metrics = new ControllerMetrics(controller);
        using var service = new ControllerHostedService(controller, metrics, time, NullLogger<ControllerHostedService>.Instance);
        await service.StartAsync(CancellationToken.None);
        Assert.Equal(HealthStatus.Healthy, (await health.CheckHealthAsync(new HealthCheckContext())).Status);

        var reg = controller.RegisterBroker(new() { BrokerId = 1, GrpcEndpoint = "http://127.0.0.1:17101" });
        Assert.Equal(0, reg.ErrorCode);
        // Step time in check-interval increments so the PeriodicTimer fires as it would in real time.
        for (var i = 0; i < 60 && !controller.State.Brokers[1].Fenced; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            await Task.Delay(5);
        }
        for (var i = 0; i < 200 && !controller.State.Brokers[1].Fenced; i++) await Task.Delay(10);
        Assert.True(controller.State.Brokers[1].Fenced);
        await service.StopAsync(CancellationToken.None);
    }

    [Fact]
    public void Meter_reports_epoch_brokers_and_topics()
    {
        var time = new FakeTimeProvider();
        using var controller = new MetadataController(new ControllerOptions { DataDir = _dir }, time, new Random(1), NullLogger<MetadataController>.Instance);
        controller.Start();
        controller.RegisterBroker(new() { BrokerId = 1, GrpcEndpoint = "http://127.0.0.1:17101" });
        controller.CreateTopics(new() { Topics = { new StreamPlatform.Protos.Grpc.Controller.CreatableTopic { Name = "t", NumPartitions = 2, ReplicationFactor = 1 } } });
        using var metrics = new ControllerMetrics(controller);
        var values = new Dictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "StreamPlatform.Controller") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => values[instrument.Name] = value);
        listener.SetMeasurementEventCallback<int>((instrument, value, _, _) => values[instrument.Name] = value);
        listener.Start();
        listener.RecordObservableInstruments();
        Assert.Equal(controller.State.Epoch, values["streamplatform.controller.metadata_epoch"]);
        Assert.Equal(1, values["streamplatform.controller.brokers.live"]);
        Assert.Equal(1, values["streamplatform.controller.topics"]);
        Assert.Equal(0, values["streamplatform.controller.partitions.offline"]);
        Assert.Equal(0, values["streamplatform.controller.partitions.under_replicated"]);
        Assert.Equal(0, values["streamplatform.controller.partitions.preferred_imbalance"]);
        Assert.Equal(0, values["streamplatform.controller.partitions.reassigning"]);

        // A second broker, a topic on [2, 1] whose leader shrank its ISR, and 2 gone: one
        // partition led by its non-preferred replica, under-replicated (1 is out of the ISR).
        controller.RegisterBroker(new() { BrokerId = 2, GrpcEndpoint = "http://127.0.0.1:17102" });
        controller.CreateTopics(new() { Topics = { new StreamPlatform.Protos.Grpc.Controller.CreatableTopic
        {
            Name = "u", NumPartitions = -1, ReplicationFactor = -1,
            Assignments = { [0] = new StreamPlatform.Protos.Grpc.Controller.ReplicaList { BrokerIds = { 2, 1 } } },
        } } });
        Assert.Equal(0, controller.BrokerHeartbeat(new() { BrokerId = 2, BrokerEpoch = controller.State.Brokers[2].BrokerEpoch, WantShutdown = true }).ErrorCode);
        listener.RecordObservableInstruments();
        Assert.Equal(1, values["streamplatform.controller.partitions.under_replicated"]);
        Assert.Equal(1, values["streamplatform.controller.partitions.preferred_imbalance"]);
    }
}
