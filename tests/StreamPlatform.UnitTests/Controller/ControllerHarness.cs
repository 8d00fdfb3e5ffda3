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

    /// <summary>"[1,3,2]": broker ids in order, comparable inside tuples (arrays compare by reference there).</summary>
    public static string Members(IEnumerable<int> ids) => "[" + string.Join(",", ids) + "]";

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

    /// <summary>
    /// A clean restart of a broker: the controlled-shutdown heartbeat (which fences it at once),
    /// then a registration as a new process (new incarnation). Returns the new broker epoch.
    /// </summary>
    public long RestartBroker(int id, string incarnation = "")
    {
        var current = Controller.State.Brokers[id];
        var stop = Controller.BrokerHeartbeat(new BrokerHeartbeatRequest { BrokerId = id, BrokerEpoch = current.BrokerEpoch, WantShutdown = true });
        Assert.True(stop.Fenced);
        return RegisterBroker(id, incarnation);
    }

    public CreateTopicResult CreateTopic(string name, int partitions, int replicationFactor, IDictionary<string, string>? configs = null)
    {
        var topic = new CreatableTopic { Name = name, NumPartitions = partitions, ReplicationFactor = replicationFactor };
        if (configs is not null) topic.Configs.Add(configs);
        var request = new CreateTopicsRequest();
        request.Topics.Add(topic);
        return Controller.CreateTopics(request).Results.Single();
    }

    /// <summary>AlterPartition for one partition as its leader would send it (current epochs unless given).</summary>
    public AlterPartitionItemResult AlterIsr(string topic, int partition, int[] newIsr, int? sender = null, int? leaderEpoch = null, int? partitionEpoch = null)
    {
        var t = Controller.State.Topics[topic];
        var p = t.Partitions[partition];
        var from = sender ?? p.Leader;
        var item = new AlterPartitionItem { Partition = partition, LeaderEpoch = leaderEpoch ?? p.LeaderEpoch, PartitionEpoch = partitionEpoch ?? p.PartitionEpoch };
        item.NewIsr.AddRange(newIsr);
        var request = new AlterPartitionRequest { BrokerId = from, BrokerEpoch = Controller.State.Brokers[from].BrokerEpoch };
        request.Topics.Add(new AlterPartitionTopic { TopicId = StreamPlatform.Protos.Grpc.Clients.TopicIds.ToByteString(t.TopicId), Partitions = { item } });
        var response = Controller.AlterPartition(request);
        Assert.Equal(0, response.ErrorCode);
        return response.Topics.Single().Partitions.Single();
    }

    /// <summary>Lets every broker but <paramref name="silent"/> heartbeat until the session timeout fences the silent ones.</summary>
    public void LetSessionsExpire(params int[] silent)
    {
        for (var i = 0; i < 13; i++)
        {
            Time.Advance(TimeSpan.FromMilliseconds(500));
            foreach (var b in Controller.State.Brokers.Values.Where(b => !b.Fenced && !silent.Contains(b.BrokerId)))
                Heartbeat(b.BrokerId, b.BrokerEpoch);
            Controller.ExpireSessions();
        }
        foreach (var id in silent) Assert.True(Controller.State.Brokers[id].Fenced);
    }

    /// <summary>Creates a topic with an explicit assignment: partition i gets <paramref name="replicas"/>[i].</summary>
    public CreateTopicResult CreateAssigned(string name, IDictionary<string, string>? configs, params int[][] replicas)
    {
        var topic = new CreatableTopic { Name = name, NumPartitions = -1, ReplicationFactor = -1 };
        for (var p = 0; p < replicas.Length; p++) topic.Assignments[p] = new ReplicaList { BrokerIds = { replicas[p] } };
        if (configs is not null) topic.Configs.Add(configs);
        return Controller.CreateTopics(new CreateTopicsRequest { Topics = { topic } }).Results.Single();
    }

    public void Heartbeat(int id, long epoch) => Assert.Equal(0, Controller.BrokerHeartbeat(new BrokerHeartbeatRequest { BrokerId = id, BrokerEpoch = epoch }).ErrorCode);

    public void Dispose()
    {
        Controller.Dispose();
        if (_ownsDir && Directory.Exists(DataDir)) Directory.Delete(DataDir, recursive: true);
    }
}
