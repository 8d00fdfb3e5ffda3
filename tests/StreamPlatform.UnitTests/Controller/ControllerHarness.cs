using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Controller.Metadata;
using StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.UnitTests.Controller;

/// <summary>A real controller on a real temp directory with fake time and a seeded random.</summary>
internal sealed class ControllerHarness : IDisposable
{
    private readonly Action<ControllerOptions>? _configure;
    private readonly bool _ownsDir;

    public ControllerHarness(Action<ControllerOptions>? configure = null, string? dataDir = null, FakeTimeProvider? time = null, int seed = 42)
    {
        _configure = configure;
        _ownsDir = dataDir is null;
        DataDir = dataDir ?? Path.Combine(Path.GetTempPath(), "sp-ctl-" + Guid.NewGuid().ToString("N"));
        Time = time ?? new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        Controller = Create(seed);
    }

    public string DataDir { get; }
    public FakeTimeProvider Time { get; }
    public MetadataController Controller { get; private set; }

    private MetadataController Create(int seed)
    {
        var options = new ControllerOptions { DataDir = DataDir };
        _configure?.Invoke(options);
        var controller = new MetadataController(options, Time, new Random(seed), NullLogger<MetadataController>.Instance);
        controller.Start();
        return controller;
    }

    /// <summary>Closes the controller and starts a new one on the same data dir (a process restart).</summary>
    public MetadataController Restart(int seed = 7)
    {
        Controller.Dispose();
        Controller = Create(seed);
        return Controller;
    }

    public long RegisterBroker(int id, string incarnation = "")
    {
        var response = Controller.RegisterBroker(new RegisterBrokerRequest
        {
            BrokerId = id,
            GrpcEndpoint = $"http://127.0.0.1:{17100 + id}",
            IncarnationId = incarnation.Length > 0 ? incarnation : Guid.NewGuid().ToString(),
        });
        Assert.Equal(0, response.ErrorCode);
        return response.BrokerEpoch;
    }

    public CreateTopicResult CreateTopic(string name, int partitions, int replicationFactor, IDictionary<string, string>? configs = null)
    {
        var topic = new CreatableTopic { Name = name, NumPartitions = partitions, ReplicationFactor = replicationFactor };
        if (configs is not null) topic.Configs.Add(configs);
        var request = new CreateTopicsRequest();
        request.Topics.Add(topic);
        return Controller.CreateTopics(request).Results.Single();
    }

    public void Heartbeat(int id, long epoch) => Assert.Equal(0, Controller.BrokerHeartbeat(new BrokerHeartbeatRequest { BrokerId = id, BrokerEpoch = epoch }).ErrorCode);

    public void Dispose()
    {
        Controller.Dispose();
        if (_ownsDir && Directory.Exists(DataDir)) Directory.Delete(DataDir, recursive: true);
    }
}
