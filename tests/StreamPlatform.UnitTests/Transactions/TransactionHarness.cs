using System.Collections.Concurrent;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using StreamPlatform.Broker.Groups;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Broker.Transactions;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Controller;
using StreamPlatform.Protos.Grpc.Groups;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.UnitTests.Controller;
using StreamPlatform.UnitTests.Storage;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Transactions;

/// <summary>
/// A transaction coordinator (broker 1) over a real __transaction_state log in a temp folder,
/// producer ids from the real controller in-process, fake time, and metadata built here: topics
/// "t" and "u" (3 partitions; partition p led by broker 1 + p % 2), __transaction_state with one
/// partition (every id lands on partition 0) led by broker 1, and __consumer_offsets. Partition
/// leaders answer WriteTxnMarkers through <see cref="Leaders"/> (a stand-in for the partition
/// leaders' side, which another part of the broker implements): a marker sent to a broker that
/// is not the partition's actual leader is NOT_LEADER_OR_FOLLOWER, as a real leader answers.
/// </summary>
internal sealed class TransactionHarness : IDisposable
{
    private readonly ControllerHarness _controller = new();
    private readonly TempDir _dir = new();
    private PartitionLog? _log;

    public TransactionHarness()
    {
        var epoch = _controller.RegisterBroker(1);
        ProducerIds = new ProducerIdManager(new ControllerService.ControllerServiceClient(new InProcessController(_controller.Controller)), 1, () => epoch,
            Time, NullLogger<ProducerIdManager>.Instance, waitMs: 5000);
        Metadata = BuildMetadata(leaders: null);
        NewCoordinator();
    }

    public Microsoft.Extensions.Time.Testing.FakeTimeProvider Time => _controller.Time;
    public ProducerIdManager ProducerIds { get; }
    public ClusterMetadata Metadata { get; set; }
    public TransactionConfig Config { get; set; } = new() { StatePartitions = 1, MaxTimeoutMs = 900_000, IdExpirationMs = 604_800_000 };
    public TransactionStateManager States { get; private set; } = null!;
    public TransactionCoordinator Coordinator { get; private set; } = null!;
    public TransactionMarkerSender Markers { get; private set; } = null!;
    /// <summary>The broker that actually leads each partition (the metadata may lag behind it); absent: as the metadata says.</summary>
    public ConcurrentDictionary<TopicPartition, int> ActualLeaders { get; } = new();
    /// <summary>Every marker a leader wrote: (broker, partition, producer id, epoch, commit, coordinator epoch).</summary>
    public ConcurrentQueue<(int Broker, TopicPartition Partition, long ProducerId, short Epoch, bool Commit, int CoordinatorEpoch)> Written { get; } = new();
    /// <summary>When set, leaders answer this error for every marker instead of writing it.</summary>
    public short? LeaderError { get; set; }

    private void NewCoordinator()
    {
        States = new TransactionStateManager(Time, () => Config, NullLogger.Instance) { LoadRunner = action => { action(); return Task.CompletedTask; } };
        Markers = new TransactionMarkerSender(States, () => Metadata, Leaders, Time, NullLogger<TransactionMarkerSender>.Instance);
        Coordinator = new TransactionCoordinator(States, ProducerIds, Markers, (t, p) => Metadata.TryGetPartition(t, p, out _, out _), () => 50,
            NullLogger<TransactionCoordinator>.Instance);
    }

    public static ClusterMetadata BuildMetadata(IReadOnlyDictionary<TopicPartition, int>? leaders)
    {
        var snapshot = new MetadataSnapshot { MetadataEpoch = 1 };
        foreach (var b in new[] { 1, 2, 3 }) snapshot.Brokers.Add(new BrokerInfo { BrokerId = b, GrpcEndpoint = $"http://broker-{b}", BrokerEpoch = 1 });
        void Topic(string name, int partitions, Func<int, int> leaderOf)
        {
            var topic = new TopicInfo { Name = name, TopicId = ByteString.CopyFrom(Guid.NewGuid().ToByteArray()), ReplicationFactor = 1 };
            for (var p = 0; p < partitions; p++)
            {
                var leader = leaders is not null && leaders.TryGetValue(new TopicPartition(name, p), out var l) ? l : leaderOf(p);
                topic.Partitions.Add(new PartitionInfo { Partition = p, Leader = leader, LeaderEpoch = 0 });
            }
            snapshot.Topics.Add(topic);
        }
        Topic("t", 3, p => 1 + p % 2);
        Topic("u", 3, p => 1 + p % 2);
        Topic("__transaction_state", 1, _ => 1);
        Topic("__consumer_offsets", 50, p => 1 + p % 3);
        return new ClusterMetadata(snapshot);
    }

    public PartitionLog Log => _log ??= PartitionLog.Open(Path.Combine(_dir.Path, "__transaction_state-0"), new TopicPartition("__transaction_state", 0),
        Guid.Empty, LogConfig.Default, Time, NullLogger.Instance);

    public void Load(int coordinatorEpoch = 0) => States.Load(0, coordinatorEpoch, new OffsetsPartitionStore(Log));

    /// <summary>A coordinator (new, as on another broker) over <paramref name="store"/>, e.g. a replica-layer partition.</summary>
    public void LoadNew(OffsetsPartitionStore store, int coordinatorEpoch)
    {
        if (States.Partitions.Count > 0) States.Unload(0);
        NewCoordinator();
        States.Load(0, coordinatorEpoch, store);
    }

    /// <summary>A failover: this coordinator gives the partition up and a new one (same log, as a replica that caught up) loads it at a newer epoch.</summary>
    public void FailOver(int newEpoch)
    {
        States.Unload(0);
        NewCoordinator();
        Load(newEpoch);
    }

    public void Dispose()
    {
        _log?.Close();
        _dir.Dispose();
        _controller.Dispose();
    }

    public void Advance(int ms) => Time.Advance(TimeSpan.FromMilliseconds(ms));

    // ---------------------------------------------------------------- requests

    public async Task<InitProducerIdResponse> InitAsync(string? id, int timeoutMs = 60_000, long producerId = -1, short epoch = -1, short version = 4)
        => await Coordinator.InitProducerIdAsync(new InitProducerIdRequest { TransactionalId = id, TransactionTimeoutMs = timeoutMs, ProducerId = producerId, ProducerEpoch = epoch },
            version, CancellationToken.None);

    /// <summary>InitProducerId until it is not CONCURRENT_TRANSACTIONS (a fencing abort completes in between), as clients retry.</summary>
    public async Task<InitProducerIdResponse> InitRetryingAsync(string id, int timeoutMs = 60_000)
    {
        for (var i = 0; i < 100; i++)
        {
            var r = await InitAsync(id, timeoutMs);
            if (r.ErrorCode != ErrorCodes.ConcurrentTransactions) return r;
            await SettleAsync();
        }
        throw new TimeoutException("InitProducerId kept answering CONCURRENT_TRANSACTIONS");
    }

    public async Task<short> AddAsync(string id, long producerId, short epoch, params (string Topic, int Partition)[] partitions)
    {
        var request = new AddPartitionsToTxnRequest { V3AndBelowTransactionalId = id, V3AndBelowProducerId = producerId, V3AndBelowProducerEpoch = epoch };
        foreach (var g in partitions.GroupBy(p => p.Topic))
            request.V3AndBelowTopics.Add(new AddPartitionsToTxnRequest.AddPartitionsToTxnTopic { Name = g.Key, Partitions = [.. g.Select(p => p.Partition)] });
        var response = await Coordinator.AddPartitionsToTxnAsync(request, 3, CancellationToken.None);
        var errors = response.ResultsByTopicV3AndBelow.SelectMany(t => t.ResultsByPartition).Select(p => p.PartitionErrorCode).Distinct().ToList();
        Assert.Single(errors);
        return errors[0];
    }

    public Task<EndTxnResponse> EndAsync(string id, long producerId, short epoch, bool commit, short version = 4)
        => Coordinator.EndTxnAsync(new EndTxnRequest { TransactionalId = id, ProducerId = producerId, ProducerEpoch = epoch, Committed = commit }, version, CancellationToken.None);

    public TransactionMetadata Txn(string id)
    {
        Assert.Equal(ErrorCodes.None, States.TryGet(id, out _, out var txn));
        return txn!;
    }

    public TransactionState StateOf(string id)
    {
        var txn = Txn(id);
        lock (txn.Gate) return txn.State;
    }

    /// <summary>Lets background marker sending finish: runs pending work and moves fake time past retry backoffs, until nothing is in flight.</summary>
    public async Task SettleAsync()
    {
        for (var i = 0; i < 500; i++)
        {
            await Task.Delay(1);
            if (Markers.InFlight == 0) return;
            Time.Advance(TransactionMarkerSender.BackoffMax);
        }
        throw new TimeoutException("marker sending did not settle");
    }

    // ---------------------------------------------------------------- partition leaders (WriteTxnMarkers)

    private CallInvoker Leaders(string endpoint) => new LeaderInvoker(this, int.Parse(endpoint["http://broker-".Length..], System.Globalization.CultureInfo.InvariantCulture));

    private sealed class LeaderInvoker(TransactionHarness harness, int brokerId) : CallInvoker
    {
        public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
        {
            if (request is not KafkaGroupRequest kafka) throw new NotSupportedException(method.FullName);
            Task<KafkaGroupResponse> response = method.Name switch
            {
                "WriteTxnMarkers" => Task.FromResult(harness.WriteMarkers(brokerId, kafka)),
                // The coordinator (broker 1) answering another broker's verification, through the wire form.
                "AddPartitionsToTxn" when brokerId == 1 => harness.AddPartitionsRemoteAsync(kafka),
                _ => throw new NotSupportedException(method.FullName),
            };
            return new AsyncUnaryCall<TResponse>(response.ContinueWith(t => (TResponse)(object)t.Result, TaskScheduler.Default), Task.FromResult(new Metadata()),
                () => Status.DefaultSuccess, () => [], () => { });
        }

        public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
            => throw new NotSupportedException(method.FullName);

        public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
            => throw new NotSupportedException(method.FullName);

        public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options)
            => throw new NotSupportedException(method.FullName);

        public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options)
            => throw new NotSupportedException(method.FullName);
    }

    private async Task<KafkaGroupResponse> AddPartitionsRemoteAsync(KafkaGroupRequest kafka)
    {
        var (request, version) = GroupCoordinatorGrpcService.Decode<AddPartitionsToTxnRequest>(kafka);
        return GroupCoordinatorGrpcService.Encode(await Coordinator.AddPartitionsToTxnAsync(request, version, CancellationToken.None), version);
    }

    /// <summary>A verifier on broker <paramref name="brokerId"/> (broker 1 is the coordinator: others ask it over "gRPC").</summary>
    public TransactionVerifier Verifier(int brokerId)
        => new(Coordinator, () => Metadata, Leaders, brokerId, 5000, NullLogger<TransactionVerifier>.Instance);

    private KafkaGroupResponse WriteMarkers(int brokerId, KafkaGroupRequest kafka)
    {
        var (request, version) = GroupCoordinatorGrpcService.Decode<WriteTxnMarkersRequest>(kafka);
        var response = new WriteTxnMarkersResponse();
        foreach (var marker in request.Markers)
        {
            var result = new WriteTxnMarkersResponse.WritableTxnMarkerResult { ProducerId = marker.ProducerId };
            foreach (var topic in marker.Topics)
            {
                var topicResult = new WriteTxnMarkersResponse.WritableTxnMarkerTopicResult { Name = topic.Name };
                foreach (var p in topic.PartitionIndexes)
                {
                    var tp = new TopicPartition(topic.Name, p);
                    Metadata.TryGetPartition(topic.Name, p, out _, out var info);
                    var leader = ActualLeaders.TryGetValue(tp, out var actual) ? actual : info.Leader;
                    var error = LeaderError ?? (leader == brokerId ? ErrorCodes.None : ErrorCodes.NotLeaderOrFollower);
                    if (error == ErrorCodes.None) Written.Enqueue((brokerId, tp, marker.ProducerId, marker.ProducerEpoch, marker.TransactionResult, marker.CoordinatorEpoch));
                    topicResult.Partitions.Add(new WriteTxnMarkersResponse.WritableTxnMarkerPartitionResult { PartitionIndex = p, ErrorCode = error });
                }
                result.Topics.Add(topicResult);
            }
            response.Markers.Add(result);
        }
        return GroupCoordinatorGrpcService.Encode(response, version);
    }
}
