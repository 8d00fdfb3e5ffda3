using Grpc.Net.Client;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Broker.Replication;
using StreamPlatform.Broker.Services;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Broker.Transactions;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.UnitTests.Storage;

namespace StreamPlatform.UnitTests.Broker;

/// <summary>
/// One broker's data plane in process (logs, replica manager, BrokerGrpcService) on a temporary
/// directory, fed metadata directly; partitions are single-replica unless a test says otherwise.
/// </summary>
internal sealed class TestBroker : IAsyncDisposable
{
    public const int Me = 1;
    public const long T0 = 1_700_000_000_000;
    private readonly TempDir _dir = new();
    private readonly GrpcChannel _channel = GrpcChannel.ForAddress("http://127.0.0.1:9"); // never called: the watcher is fed by Apply
    private readonly MetadataWatcher _watcher;
    private readonly BrokerMetrics _metrics;
    private long _epoch;

    public TestBroker(ITransactionVerifier? verifier = null, IEnumerable<ITransactionMarkerObserver>? observers = null)
    {
        _watcher = new MetadataWatcher(_channel, "test", NullLogger.Instance, Time);
        Logs = new LogManager(_dir.Path, Time, NullLogger<LogManager>.Instance);
        Logs.LoadAll();
        Replicas = new ReplicaManager(Logs, Options.Create(new BrokerOptions { BrokerId = Me }), Time);
        _watcher.Applied += m => { Logs.ApplyMetadata(m, Me); Replicas.ApplyMetadata(m); };
        _metrics = new BrokerMetrics(Logs);
        Markers = new TransactionMarkerWriter(Replicas, Time, observers ?? [], NullLogger<TransactionMarkerWriter>.Instance);
        Service = new BrokerGrpcService(Logs, Replicas, Options.Create(new BrokerOptions { BrokerId = Me }), Time, _metrics, verifier: verifier, markers: Markers);
    }

    public FakeTimeProvider Time { get; } = new(DateTimeOffset.FromUnixTimeMilliseconds(T0));
    public LogManager Logs { get; }
    public ReplicaManager Replicas { get; }
    public TransactionMarkerWriter Markers { get; }
    public BrokerGrpcService Service { get; }

    public PartitionLog Log(string topic, int partition)
    {
        Assert.True(Logs.TryGetLog(new TopicPartition(topic, partition), out var log));
        return log;
    }

    /// <summary>A topic with one partition per entry of <paramref name="leaders"/>, each led by that broker alone.</summary>
    public static TopicInfo Topic(string name, int[] leaders, int leaderEpoch = 0, Guid? id = null)
    {
        var topic = new TopicInfo { Name = name, TopicId = TopicIds.ToByteString(id ?? Guid.NewGuid()), ReplicationFactor = 1 };
        for (var p = 0; p < leaders.Length; p++)
            topic.Partitions.Add(new PartitionInfo { Partition = p, Leader = leaders[p], LeaderEpoch = leaderEpoch, Replicas = { leaders[p] }, Isr = { leaders[p] } });
        return topic;
    }

    public void Publish(params TopicInfo[] topics)
    {
        var snapshot = new MetadataSnapshot { MetadataEpoch = ++_epoch, ClusterId = "c" };
        snapshot.Brokers.Add(new BrokerInfo { BrokerId = Me, GrpcEndpoint = "http://127.0.0.1:1" });
        snapshot.Brokers.Add(new BrokerInfo { BrokerId = 2, GrpcEndpoint = "http://127.0.0.1:2" });
        snapshot.Topics.Add(topics);
        _watcher.Apply(snapshot);
    }

    public async ValueTask DisposeAsync()
    {
        Logs.CloseAll();
        await _watcher.DisposeAsync();
        _channel.Dispose();
        _metrics.Dispose();
        _dir.Dispose();
    }
}
