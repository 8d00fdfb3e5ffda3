using Microsoft.Extensions.Logging.Abstractions;
using StreamPlatform.Gateway;
using StreamPlatform.Gateway.Apis;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Gateway.Coordinators;
using StreamPlatform.Protos.Groups;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.ServiceDefaults;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// The gateway's real transaction handlers and router over a metadata view the test sets, with
/// brokers 1 and 2 as <see cref="BodyServiceStandIn"/> endpoints (broker 3: fenced; broker 4:
/// live in the metadata but nothing listens at its endpoint). __transaction_state and
/// __consumer_offsets have <see cref="InternalPartitions"/> partitions each, partition i led by
/// broker 1 when i is even, broker 2 when odd; topic "orders" has 3 partitions led by 1, 2 and
/// the fenced 3.
/// </summary>
internal sealed class TransactionRoutingKit : IAsyncDisposable
{
    public const int InternalPartitions = 4;
    public const string DeadEndpoint = "http://127.0.0.1:9";

    private readonly ControllerConnection _nowhere;
    public GatewayOptions Options { get; } = new() { NodeId = 10, BrokerCallMarginMs = 2_000 };
    public MetadataWatcher Watcher { get; }
    public TopicAdmin Admin { get; }
    public CoordinatorTopics Topics { get; }
    public CoordinatorRouter Router { get; }
    public GatewayMetrics Metrics { get; } = new();
    public BodyServiceStandIn Broker1 { get; }
    public BodyServiceStandIn Broker2 { get; }

    private TransactionRoutingKit(BodyServiceStandIn broker1, BodyServiceStandIn broker2)
    {
        Broker1 = broker1;
        Broker2 = broker2;
        _nowhere = new ControllerConnection(GrpcChannels.Create(new Uri(DeadEndpoint)));
        Watcher = new MetadataWatcher(_nowhere.Channel, "test", NullLogger.Instance);
        var o = Microsoft.Extensions.Options.Options.Create(Options);
        Admin = new TopicAdmin(_nowhere, Watcher, o, TimeProvider.System, NullLogger<TopicAdmin>.Instance);
        Topics = new CoordinatorTopics(Admin, TimeProvider.System, NullLogger<CoordinatorTopics>.Instance);
        Router = new CoordinatorRouter(Topics, o, TimeProvider.System, NullLogger<CoordinatorRouter>.Instance);
    }

    public static async Task<TransactionRoutingKit> StartAsync(bool withInternalTopics = true)
    {
        var b1 = await BodyServiceStandIn.StartAsync(1);
        var b2 = await BodyServiceStandIn.StartAsync(2);
        var kit = new TransactionRoutingKit(b1, b2);
        kit.Watcher.Apply(kit.Snapshot(withInternalTopics));
        return kit;
    }

    public BodyServiceStandIn StandIn(int brokerId) => brokerId == 1 ? Broker1 : Broker2;

    /// <summary>The stand-in that coordinates <paramref name="key"/> in this kit's layout.</summary>
    public BodyServiceStandIn CoordinatorOf(string key)
        => OffsetsTopic.PartitionFor(key, InternalPartitions) % 2 == 0 ? Broker1 : Broker2;

    public MetadataSnapshot Snapshot(bool withInternalTopics)
    {
        var snapshot = new MetadataSnapshot
        {
            MetadataEpoch = 3,
            ClusterId = "test-cluster",
            Brokers =
            {
                new BrokerInfo { BrokerId = 1, GrpcEndpoint = Broker1.Endpoint, BrokerEpoch = 1 },
                new BrokerInfo { BrokerId = 2, GrpcEndpoint = Broker2.Endpoint, BrokerEpoch = 1 },
                new BrokerInfo { BrokerId = 3, GrpcEndpoint = DeadEndpoint, BrokerEpoch = 1, Fenced = true },
            },
            Gateways = { new GatewayInfo { NodeId = 10, KafkaHost = "127.0.0.1", KafkaPort = 19092 } },
        };
        var orders = new TopicInfo { Name = "orders", TopicId = TopicIds.ToByteString(Guid.NewGuid()), ReplicationFactor = 1 };
        orders.Partitions.Add(new PartitionInfo { Partition = 0, Leader = 1, LeaderEpoch = 1, Replicas = { 1 }, Isr = { 1 } });
        orders.Partitions.Add(new PartitionInfo { Partition = 1, Leader = 2, LeaderEpoch = 1, Replicas = { 2 }, Isr = { 2 } });
        orders.Partitions.Add(new PartitionInfo { Partition = 2, Leader = 3, LeaderEpoch = 1, Replicas = { 3 }, Isr = { 3 } });
        snapshot.Topics.Add(orders);
        if (withInternalTopics)
        {
            foreach (var name in new[] { TransactionStateTopic.Name, OffsetsTopic.Name })
            {
                var topic = new TopicInfo { Name = name, TopicId = TopicIds.ToByteString(Guid.NewGuid()), ReplicationFactor = 1 };
                for (var i = 0; i < InternalPartitions; i++)
                {
                    var leader = i % 2 == 0 ? 1 : 2;
                    topic.Partitions.Add(new PartitionInfo { Partition = i, Leader = leader, LeaderEpoch = 1, Replicas = { leader }, Isr = { leader } });
                }
                snapshot.Topics.Add(topic);
            }
        }
        return snapshot;
    }

    /// <summary>Adds a live broker 4 whose endpoint nobody listens on.</summary>
    public void AddUnreachableBroker(int brokerId = 4)
    {
        var snapshot = Watcher.Current.Snapshot.Clone();
        snapshot.MetadataEpoch++;
        snapshot.Brokers.Add(new BrokerInfo { BrokerId = brokerId, GrpcEndpoint = DeadEndpoint, BrokerEpoch = 1 });
        Watcher.Apply(snapshot);
    }

    public PipeClient Client(params IApiHandler[] handlers) => new(new ApiRegistry(handlers), Options, Metrics);

    public async ValueTask DisposeAsync()
    {
        Router.Dispose();
        Topics.Dispose();
        await Watcher.DisposeAsync();
        _nowhere.Dispose();
        Metrics.Dispose();
        await Broker1.DisposeAsync();
        await Broker2.DisposeAsync();
    }
}
