using System.Collections.Immutable;
using Google.Protobuf;
using StreamPlatform.Protos.Configs;
using StreamPlatform.Protos.Groups;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Metadata;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Controller.Metadata;

public sealed record BrokerState(int BrokerId, string GrpcEndpoint, string Rack, string IncarnationId, long BrokerEpoch, bool Fenced);

public sealed record GatewayState(int NodeId, string KafkaHost, int KafkaPort, string Rack, bool Fenced);

/// <remarks>Record equality compares the ImmutableArrays by reference; compare contents with SequenceEqual.</remarks>
public sealed record PartitionState(int Partition, ImmutableArray<int> Replicas, ImmutableArray<int> Isr, int Leader, int LeaderEpoch, int PartitionEpoch)
{
    /// <summary>Replicas joining in a reassignment in progress (a subset of <see cref="Replicas"/>); empty otherwise.</summary>
    public ImmutableArray<int> Adding { get; init; } = [];
    /// <summary>Replicas leaving once the reassignment completes (a subset of <see cref="Replicas"/>); empty otherwise.</summary>
    public ImmutableArray<int> Removing { get; init; } = [];
    public bool Reassigning => !Adding.IsEmpty || !Removing.IsEmpty;
}

public sealed record TopicState(string Name, Guid TopicId, ImmutableArray<PartitionState> Partitions, ImmutableSortedDictionary<string, string> Configs, bool Internal)
{
    /// <summary>Partition 0's replica count without the replicas a reassignment is removing (as Kafka's CreatePartitions reads it).</summary>
    public int ReplicationFactor => Partitions.IsEmpty ? 0 : Partitions[0].Replicas.Length - Partitions[0].Removing.Length;
}

/// <summary>
/// The metadata state machine. Immutable: <see cref="Apply(MetadataRecord)"/> returns a new state
/// (structural sharing keeps that cheap), so the controller can stage a batch, append it to the
/// log, and only then publish it — a failed append leaves the old state untouched, and the same
/// code replays the log on start (and will apply Raft-committed entries on followers).
/// Deterministic: the result depends only on the records (ids and epochs are chosen by the
/// controller and carried in them).
///
/// Legal transitions (anything else throws <see cref="MetadataStateException"/>):
/// broker: absent|fenced|unfenced --RegisterBroker(epoch above the old one)--> unfenced;
///         unfenced --FenceBroker(current epoch)--> fenced; fenced --UnfenceBroker(current epoch)--> unfenced.
/// gateway: absent|fenced|unfenced --RegisterGateway--> unfenced; unfenced --FenceGateway--> fenced.
/// topic: absent (name and id unused) --CreateTopic--> present --DeleteTopic--> absent;
///         n partitions --CreatePartitions(partitions n, n+1, ... with the topic's replication factor)--> more partitions.
/// partition: leader L epoch e --ChangePartitionLeader(new leader in ISR and unfenced, or -1; epoch e+1)--> epoch e+1, partition epoch + 1;
///         leader epoch e --ChangeIsr(epoch e; ISR changed, non-empty, replicas only, no duplicates; holds the leader when
///         there is one; members added unfenced)--> same leader and epoch, partition epoch + 1.
/// partition: replicas R --ChangeReplicas(current leader epoch; new replicas hold the ISR; adding, removing disjoint subsets)--> replicas R', partition epoch + 1.
/// metadata version: v --SetMetadataVersion(level above v, at most Latest)--> level.
/// broker config: --SetBrokerConfig(catalog key, valid value, dynamic?)--> set (dynamic or static); set --SetBrokerConfig(remove)--> unset;
///         static value --SetBrokerConfig(static_only, value or remove)--> static value changed, a dynamic value unchanged.
/// per-broker config: --SetBrokerConfig(broker_id, dynamic, catalog key not read-only, valid value)--> set for that broker;
///         set --SetBrokerConfig(broker_id, remove)--> unset (an empty broker entry is dropped).
/// group config: --SetGroupConfig(catalog key, valid value)--> set; set --SetGroupConfig(remove)--> unset (an empty group entry is dropped).
/// topic config: present topic --SetTopicConfig(catalog key, valid value)--> set; set --SetTopicConfig(remove)--> unset.
/// producer ids: next n --ProducerIds(registered broker at its current epoch, next above n)--> next.
/// </summary>
public sealed class MetadataState
{
    public static readonly MetadataState Empty = new(
        0,
        ImmutableSortedDictionary<int, BrokerState>.Empty,
        ImmutableSortedDictionary<int, GatewayState>.Empty,
        ImmutableSortedDictionary.Create<string, TopicState>(StringComparer.Ordinal),
        ImmutableDictionary<Guid, string>.Empty,
        ImmutableSortedDictionary.Create<string, string>(StringComparer.Ordinal),
        ImmutableSortedSet.Create<string>(StringComparer.Ordinal),
        ImmutableSortedDictionary.Create<string, string>(StringComparer.Ordinal),
        ImmutableSortedDictionary.Create<string, ImmutableSortedDictionary<string, string>>(StringComparer.Ordinal),
        ImmutableSortedDictionary<int, ImmutableSortedDictionary<string, string>>.Empty,
        MetadataVersions.BeforeReplication,
        nextProducerId: 0);

    private MetadataState(
        long epoch,
        ImmutableSortedDictionary<int, BrokerState> brokers,
        ImmutableSortedDictionary<int, GatewayState> gateways,
        ImmutableSortedDictionary<string, TopicState> topics,
        ImmutableDictionary<Guid, string> topicNamesById,
        ImmutableSortedDictionary<string, string> brokerConfigs,
        ImmutableSortedSet<string> dynamicBrokerConfigs,
        ImmutableSortedDictionary<string, string> staticBrokerConfigs,
        ImmutableSortedDictionary<string, ImmutableSortedDictionary<string, string>> groupConfigs,
        ImmutableSortedDictionary<int, ImmutableSortedDictionary<string, string>> perBrokerConfigs,
        int metadataVersion,
        long nextProducerId)
    {
        Epoch = epoch;
        Brokers = brokers;
        Gateways = gateways;
        Topics = topics;
        TopicNamesById = topicNamesById;
        BrokerConfigs = brokerConfigs;
        DynamicBrokerConfigs = dynamicBrokerConfigs;
        StaticBrokerConfigs = staticBrokerConfigs;
        GroupConfigs = groupConfigs;
        PerBrokerConfigs = perBrokerConfigs;
        MetadataVersion = metadataVersion;
        NextProducerId = nextProducerId;
    }

    /// <summary>Number of records applied since the empty state.</summary>
    public long Epoch { get; }
    public ImmutableSortedDictionary<int, BrokerState> Brokers { get; }
    public ImmutableSortedDictionary<int, GatewayState> Gateways { get; }
    /// <summary>Topics by name (ordinal order, so snapshots are deterministic).</summary>
    public ImmutableSortedDictionary<string, TopicState> Topics { get; }
    public ImmutableDictionary<Guid, string> TopicNamesById { get; }
    /// <summary>Cluster-wide broker configs in force: static values overridden by dynamic ones (catalog defaults are not recorded).</summary>
    public ImmutableSortedDictionary<string, string> BrokerConfigs { get; }
    /// <summary>Keys of <see cref="BrokerConfigs"/> set through AlterConfigs: controller restarts keep them over static values.</summary>
    public ImmutableSortedSet<string> DynamicBrokerConfigs { get; }
    /// <summary>Static broker configs (Controller:BrokerConfigs at start-up), also those a dynamic value overrides.</summary>
    public ImmutableSortedDictionary<string, string> StaticBrokerConfigs { get; }
    /// <summary>Explicit group configs by group id (never an empty entry).</summary>
    public ImmutableSortedDictionary<string, ImmutableSortedDictionary<string, string>> GroupConfigs { get; }
    /// <summary>Per-broker dynamic broker configs by broker id (never an empty entry); for that broker they win over <see cref="BrokerConfigs"/>.</summary>
    public ImmutableSortedDictionary<int, ImmutableSortedDictionary<string, string>> PerBrokerConfigs { get; }
    /// <summary>What the records mean (<see cref="MetadataVersions"/>): below <see cref="MetadataVersions.Replication"/>, ISRs were not maintained.</summary>
    public int MetadataVersion { get; }

    public bool TryGetTopic(Guid id, out TopicState topic)
    {
        topic = null!;
        return TopicNamesById.TryGetValue(id, out var name) && Topics.TryGetValue(name, out topic!);
    }

    public bool IsLive(int brokerId) => Brokers.TryGetValue(brokerId, out var b) && !b.Fenced;

    /// <summary>Applies records in order, all or nothing.</summary>
    public MetadataState Apply(IEnumerable<MetadataRecord> records)
    {
        var state = this;
        foreach (var r in records) state = state.Apply(r);
        return state;
    }

    /// <summary>
    /// The first producer id not handed out yet (AllocateProducerIds): every id below it belongs
    /// to a block some broker received, so it is never given again, across restarts too (it is
    /// in the log and in snapshots).
    /// </summary>
    public long NextProducerId { get; }

    public MetadataState Apply(MetadataRecord record) => record.KindCase switch
    {
        MetadataRecord.KindOneofCase.RegisterBroker => RegisterBroker(record.RegisterBroker),
        MetadataRecord.KindOneofCase.FenceBroker => FenceBroker(record.FenceBroker),
        MetadataRecord.KindOneofCase.UnfenceBroker => UnfenceBroker(record.UnfenceBroker),
        MetadataRecord.KindOneofCase.RegisterGateway => RegisterGateway(record.RegisterGateway),
        MetadataRecord.KindOneofCase.FenceGateway => FenceGateway(record.FenceGateway),
        MetadataRecord.KindOneofCase.CreateTopic => CreateTopic(record.CreateTopic),
        MetadataRecord.KindOneofCase.DeleteTopic => DeleteTopic(record.DeleteTopic),
        MetadataRecord.KindOneofCase.ChangePartitionLeader => ChangePartitionLeader(record.ChangePartitionLeader),
        MetadataRecord.KindOneofCase.SetBrokerConfig => SetBrokerConfig(record.SetBrokerConfig),
        MetadataRecord.KindOneofCase.SetTopicConfig => SetTopicConfig(record.SetTopicConfig),
        MetadataRecord.KindOneofCase.SetGroupConfig => SetGroupConfig(record.SetGroupConfig),
        MetadataRecord.KindOneofCase.SetMetadataVersion => SetMetadataVersion(record.SetMetadataVersion),
        MetadataRecord.KindOneofCase.ChangeIsr => ChangeIsr(record.ChangeIsr),
        MetadataRecord.KindOneofCase.CreatePartitions => CreatePartitions(record.CreatePartitions),
        MetadataRecord.KindOneofCase.ChangeReplicas => ChangeReplicas(record.ChangeReplicas),
        MetadataRecord.KindOneofCase.ProducerIds => ProducerIds(record.ProducerIds),
        _ => throw Illegal(ErrorCodes.InvalidRequest, $"Unknown metadata record kind {record.KindCase}."),
    };

    private MetadataState With(
        ImmutableSortedDictionary<int, BrokerState>? brokers = null,
        ImmutableSortedDictionary<int, GatewayState>? gateways = null,
        ImmutableSortedDictionary<string, TopicState>? topics = null,
        ImmutableDictionary<Guid, string>? topicNamesById = null,
        ImmutableSortedDictionary<string, string>? brokerConfigs = null,
        ImmutableSortedSet<string>? dynamicBrokerConfigs = null,
        ImmutableSortedDictionary<string, string>? staticBrokerConfigs = null,
        ImmutableSortedDictionary<string, ImmutableSortedDictionary<string, string>>? groupConfigs = null,
        ImmutableSortedDictionary<int, ImmutableSortedDictionary<string, string>>? perBrokerConfigs = null,
        int? metadataVersion = null,
        long? nextProducerId = null)
        => new(Epoch + 1, brokers ?? Brokers, gateways ?? Gateways, topics ?? Topics, topicNamesById ?? TopicNamesById, brokerConfigs ?? BrokerConfigs,
            dynamicBrokerConfigs ?? DynamicBrokerConfigs, staticBrokerConfigs ?? StaticBrokerConfigs, groupConfigs ?? GroupConfigs, perBrokerConfigs ?? PerBrokerConfigs,
            metadataVersion ?? MetadataVersion, nextProducerId ?? NextProducerId);

    private static MetadataStateException Illegal(short code, string message) => new(code, message);

    private MetadataState RegisterBroker(RegisterBrokerRecord r)
    {
        if (r.BrokerId < 0) throw Illegal(ErrorCodes.InvalidRequest, $"Broker id {r.BrokerId} is negative.");
        if (string.IsNullOrWhiteSpace(r.GrpcEndpoint)) throw Illegal(ErrorCodes.InvalidRequest, $"Broker {r.BrokerId} has no grpc endpoint.");
        if (r.BrokerEpoch <= 0) throw Illegal(ErrorCodes.InvalidRequest, $"Broker epoch {r.BrokerEpoch} is not positive.");
        if (Brokers.TryGetValue(r.BrokerId, out var old) && r.BrokerEpoch <= old.BrokerEpoch)
            throw Illegal(ErrorCodes.StaleBrokerEpoch, $"Broker {r.BrokerId} epoch {r.BrokerEpoch} is not above its current epoch {old.BrokerEpoch}.");
        var broker = new BrokerState(r.BrokerId, r.GrpcEndpoint, r.Rack, r.IncarnationId, r.BrokerEpoch, Fenced: false);
        return With(brokers: Brokers.SetItem(r.BrokerId, broker));
    }

    private BrokerState CurrentBroker(int brokerId, long brokerEpoch)
    {
        if (!Brokers.TryGetValue(brokerId, out var b)) throw Illegal(ErrorCodes.BrokerIdNotRegistered, $"Broker {brokerId} is not registered.");
        if (b.BrokerEpoch != brokerEpoch)
            throw Illegal(ErrorCodes.StaleBrokerEpoch, $"Broker {brokerId} epoch {brokerEpoch} is not its current epoch {b.BrokerEpoch}.");
        return b;
    }

    private MetadataState FenceBroker(FenceBrokerRecord r)
    {
        var b = CurrentBroker(r.BrokerId, r.BrokerEpoch);
        if (b.Fenced) throw Illegal(ErrorCodes.InvalidRequest, $"Broker {r.BrokerId} is already fenced.");
        return With(brokers: Brokers.SetItem(r.BrokerId, b with { Fenced = true }));
    }

    private MetadataState UnfenceBroker(UnfenceBrokerRecord r)
    {
        var b = CurrentBroker(r.BrokerId, r.BrokerEpoch);
        if (!b.Fenced) throw Illegal(ErrorCodes.InvalidRequest, $"Broker {r.BrokerId} is not fenced.");
        return With(brokers: Brokers.SetItem(r.BrokerId, b with { Fenced = false }));
    }

    private MetadataState RegisterGateway(RegisterGatewayRecord r)
    {
        if (r.NodeId < 0) throw Illegal(ErrorCodes.InvalidRequest, $"Gateway node id {r.NodeId} is negative.");
        if (string.IsNullOrWhiteSpace(r.KafkaHost)) throw Illegal(ErrorCodes.InvalidRequest, $"Gateway {r.NodeId} has no Kafka host.");
        if (r.KafkaPort is <= 0 or > 65535) throw Illegal(ErrorCodes.InvalidRequest, $"Gateway {r.NodeId} Kafka port {r.KafkaPort} is out of range.");
        return With(gateways: Gateways.SetItem(r.NodeId, new GatewayState(r.NodeId, r.KafkaHost, r.KafkaPort, r.Rack, Fenced: false)));
    }

    private MetadataState FenceGateway(FenceGatewayRecord r)
    {
        if (!Gateways.TryGetValue(r.NodeId, out var g)) throw Illegal(ErrorCodes.InvalidRequest, $"Gateway {r.NodeId} is not registered.");
        if (g.Fenced) throw Illegal(ErrorCodes.InvalidRequest, $"Gateway {r.NodeId} is already fenced.");
        return With(gateways: Gateways.SetItem(r.NodeId, g with { Fenced = true }));
    }

    private static Guid ParseTopicId(ByteString bytes)
    {
        if (bytes.Length != 16) throw Illegal(ErrorCodes.InvalidRequest, $"Topic id has {bytes.Length} bytes, not 16.");
        var id = TopicIds.ToGuid(bytes);
        if (id == Guid.Empty) throw Illegal(ErrorCodes.InvalidRequest, "Topic id is the zero uuid.");
        return id;
    }

    private MetadataState CreateTopic(CreateTopicRecord r)
    {
        if (TopicNames.Validate(r.Name) is { } why) throw Illegal(ErrorCodes.InvalidTopicException, why);
        if (Topics.ContainsKey(r.Name)) throw Illegal(ErrorCodes.TopicAlreadyExists, $"Topic '{r.Name}' already exists.");
        var id = ParseTopicId(r.TopicId);
        if (TopicNamesById.ContainsKey(id)) throw Illegal(ErrorCodes.TopicAlreadyExists, $"Topic id {id} is already used.");
        if (r.Partitions.Count == 0) throw Illegal(ErrorCodes.InvalidPartitions, $"Topic '{r.Name}' has no partitions.");
        foreach (var (key, value) in r.Configs)
        {
            if (!ConfigCatalog.Topic.TryGetValue(key, out var def)) throw Illegal(ErrorCodes.InvalidConfig, $"Unknown topic config '{key}'.");
            if (def.Validate(value) is { } bad) throw Illegal(ErrorCodes.InvalidConfig, bad);
        }
        var partitions = ImmutableArray.CreateBuilder<PartitionState>(r.Partitions.Count);
        var rf = r.Partitions[0].Replicas.Count;
        for (var i = 0; i < r.Partitions.Count; i++) partitions.Add(NewPartition(r.Partitions[i], i, rf));
        var topic = new TopicState(r.Name, id, partitions.MoveToImmutable(),
            r.Configs.ToImmutableSortedDictionary(StringComparer.Ordinal), r.Internal || InternalTopics.IsInternal(r.Name));
        return With(topics: Topics.Add(r.Name, topic), topicNamesById: TopicNamesById.Add(id, r.Name));
    }

    /// <summary>A partition as created (CreateTopic, CreatePartitions): at <paramref name="index"/>, with <paramref name="rf"/> registered replicas.</summary>
    private PartitionState NewPartition(PartitionRecord p, int index, int rf)
    {
        if (p.Partition != index) throw Illegal(ErrorCodes.InvalidReplicaAssignment, $"Partition {p.Partition} is at index {index}.");
        var replicas = p.Replicas.ToImmutableArray();
        if (replicas.Length == 0 || replicas.Length != rf)
            throw Illegal(ErrorCodes.InvalidReplicaAssignment, $"Partition {index} has {replicas.Length} replicas; every partition needs {rf} (at least 1).");
        if (replicas.Distinct().Count() != replicas.Length) throw Illegal(ErrorCodes.InvalidReplicaAssignment, $"Partition {index} lists a replica twice.");
        foreach (var b in replicas)
            if (!Brokers.ContainsKey(b)) throw Illegal(ErrorCodes.InvalidReplicaAssignment, $"Partition {index} replica {b} is not a registered broker.");
        var isr = CheckIsr(p.Isr, replicas, index);
        CheckLeader(p.Leader, isr, index);
        if (p.LeaderEpoch < 0) throw Illegal(ErrorCodes.InvalidRequest, $"Partition {index} leader epoch {p.LeaderEpoch} is negative.");
        return new PartitionState(index, replicas, isr, p.Leader, p.LeaderEpoch, PartitionEpoch: 0);
    }

    private MetadataState CreatePartitions(CreatePartitionsRecord r)
    {
        var id = ParseTopicId(r.TopicId);
        if (!TryGetTopic(id, out var topic)) throw Illegal(ErrorCodes.UnknownTopicId, $"Topic id {id} does not exist.");
        if (r.Partitions.Count == 0) throw Illegal(ErrorCodes.InvalidPartitions, $"Topic '{topic.Name}': no partitions to add.");
        var partitions = topic.Partitions.ToBuilder();
        foreach (var p in r.Partitions) partitions.Add(NewPartition(p, partitions.Count, topic.ReplicationFactor));
        return With(topics: Topics.SetItem(topic.Name, topic with { Partitions = partitions.ToImmutable() }));
    }

    private static ImmutableArray<int> CheckIsr(IEnumerable<int> isrIn, ImmutableArray<int> replicas, int partition)
    {
        var isr = isrIn.ToImmutableArray();
        if (isr.IsEmpty) throw Illegal(ErrorCodes.InvalidRequest, $"Partition {partition} has an empty ISR.");
        if (isr.Distinct().Count() != isr.Length) throw Illegal(ErrorCodes.InvalidRequest, $"Partition {partition} ISR lists a broker twice.");
        foreach (var b in isr)
            if (!replicas.Contains(b)) throw Illegal(ErrorCodes.InvalidRequest, $"Partition {partition} ISR member {b} is not a replica.");
        return isr;
    }

    private void CheckLeader(int leader, ImmutableArray<int> isr, int partition)
    {
        if (leader == -1) return;
        if (!isr.Contains(leader)) throw Illegal(ErrorCodes.InvalidRequest, $"Partition {partition} leader {leader} is not in the ISR.");
        if (!IsLive(leader)) throw Illegal(ErrorCodes.InvalidRequest, $"Partition {partition} leader {leader} is not a live broker.");
    }

    private MetadataState DeleteTopic(DeleteTopicRecord r)
    {
        var id = ParseTopicId(r.TopicId);
        if (!TryGetTopic(id, out var topic)) throw Illegal(ErrorCodes.UnknownTopicId, $"Topic id {id} does not exist.");
        return With(topics: Topics.Remove(topic.Name), topicNamesById: TopicNamesById.Remove(id));
    }

    private MetadataState ChangePartitionLeader(ChangePartitionLeaderRecord r)
    {
        var id = ParseTopicId(r.TopicId);
        if (!TryGetTopic(id, out var topic)) throw Illegal(ErrorCodes.UnknownTopicId, $"Topic id {id} does not exist.");
        if ((uint)r.Partition >= (uint)topic.Partitions.Length)
            throw Illegal(ErrorCodes.UnknownTopicOrPartition, $"Topic '{topic.Name}' has no partition {r.Partition}.");
        var p = topic.Partitions[r.Partition];
        if (r.NewLeaderEpoch != p.LeaderEpoch + 1)
            throw Illegal(ErrorCodes.InvalidRequest, $"Partition {topic.Name}-{r.Partition} new leader epoch {r.NewLeaderEpoch} is not {p.LeaderEpoch + 1}.");
        var isr = r.NewIsr is null ? p.Isr : CheckIsr(r.NewIsr.BrokerIds, p.Replicas, r.Partition);
        CheckLeader(r.NewLeader, isr, r.Partition);
        var changed = p with { Leader = r.NewLeader, LeaderEpoch = r.NewLeaderEpoch, Isr = isr, PartitionEpoch = p.PartitionEpoch + 1 };
        var newTopic = topic with { Partitions = topic.Partitions.SetItem(r.Partition, changed) };
        return With(topics: Topics.SetItem(topic.Name, newTopic));
    }

    private MetadataState ChangeIsr(ChangeIsrRecord r)
    {
        var id = ParseTopicId(r.TopicId);
        if (!TryGetTopic(id, out var topic)) throw Illegal(ErrorCodes.UnknownTopicId, $"Topic id {id} does not exist.");
        if ((uint)r.Partition >= (uint)topic.Partitions.Length)
            throw Illegal(ErrorCodes.UnknownTopicOrPartition, $"Topic '{topic.Name}' has no partition {r.Partition}.");
        var p = topic.Partitions[r.Partition];
        if (r.LeaderEpoch != p.LeaderEpoch)
            throw Illegal(ErrorCodes.FencedLeaderEpoch, $"Partition {topic.Name}-{r.Partition} ISR change in leader epoch {r.LeaderEpoch}, but the leader epoch is {p.LeaderEpoch}.");
        if (r.NewIsr is null) throw Illegal(ErrorCodes.InvalidRequest, $"Partition {topic.Name}-{r.Partition} ISR change without an ISR.");
        var isr = CheckIsr(r.NewIsr.BrokerIds, p.Replicas, r.Partition);
        if (isr.SequenceEqual(p.Isr)) throw Illegal(ErrorCodes.InvalidRequest, $"Partition {topic.Name}-{r.Partition} ISR change leaves the ISR as it is.");
        // A member joining must be able to serve: a fenced broker would make the high watermark
        // wait for a replica that is not fetching.
        foreach (var b in isr)
            if (!p.Isr.Contains(b) && !IsLive(b))
                throw Illegal(ErrorCodes.IneligibleReplica, $"Partition {topic.Name}-{r.Partition} ISR cannot gain broker {b}: it is fenced.");
        if (p.Leader >= 0 && !isr.Contains(p.Leader))
            throw Illegal(ErrorCodes.InvalidRequest, $"Partition {topic.Name}-{r.Partition} new ISR lacks the leader {p.Leader}.");
        var changed = p with { Isr = isr, PartitionEpoch = p.PartitionEpoch + 1 };
        return With(topics: Topics.SetItem(topic.Name, topic with { Partitions = topic.Partitions.SetItem(r.Partition, changed) }));
    }

    private MetadataState ChangeReplicas(ChangeReplicasRecord r)
    {
        var id = ParseTopicId(r.TopicId);
        if (!TryGetTopic(id, out var topic)) throw Illegal(ErrorCodes.UnknownTopicId, $"Topic id {id} does not exist.");
        if ((uint)r.Partition >= (uint)topic.Partitions.Length)
            throw Illegal(ErrorCodes.UnknownTopicOrPartition, $"Topic '{topic.Name}' has no partition {r.Partition}.");
        var p = topic.Partitions[r.Partition];
        var name = $"{topic.Name}-{r.Partition}";
        if (r.LeaderEpoch != p.LeaderEpoch)
            throw Illegal(ErrorCodes.FencedLeaderEpoch, $"Partition {name} replica change in leader epoch {r.LeaderEpoch}, but the leader epoch is {p.LeaderEpoch}.");
        var replicas = r.Replicas.ToImmutableArray();
        if (replicas.IsEmpty) throw Illegal(ErrorCodes.InvalidReplicaAssignment, $"Partition {name} would have no replicas.");
        if (replicas.Distinct().Count() != replicas.Length) throw Illegal(ErrorCodes.InvalidReplicaAssignment, $"Partition {name} lists a replica twice.");
        foreach (var b in replicas)
            if (!Brokers.ContainsKey(b)) throw Illegal(ErrorCodes.InvalidReplicaAssignment, $"Partition {name} replica {b} is not a registered broker.");
        var adding = r.AddingReplicas.ToImmutableArray();
        var removing = r.RemovingReplicas.ToImmutableArray();
        if (adding.Any(b => !replicas.Contains(b)) || removing.Any(b => !replicas.Contains(b)) || adding.Intersect(removing).Any()
            || adding.Distinct().Count() != adding.Length || removing.Distinct().Count() != removing.Length)
            throw Illegal(ErrorCodes.InvalidReplicaAssignment, $"Partition {name}: adding and removing replicas must be distinct replicas, none in both.");
        if (removing.Length == replicas.Length) throw Illegal(ErrorCodes.InvalidReplicaAssignment, $"Partition {name} would remove every replica.");
        foreach (var b in p.Isr)
            if (!replicas.Contains(b)) throw Illegal(ErrorCodes.InvalidRequest, $"Partition {name} ISR member {b} would not be a replica.");
        var changed = p with { Replicas = replicas, Adding = adding, Removing = removing, PartitionEpoch = p.PartitionEpoch + 1 };
        return With(topics: Topics.SetItem(topic.Name, topic with { Partitions = topic.Partitions.SetItem(r.Partition, changed) }));
    }

    /// <summary>Kafka's ProducerIdControlManager.replay: a block only moves the next id forward.</summary>
    private MetadataState ProducerIds(ProducerIdsRecord r)
    {
        CurrentBroker(r.BrokerId, r.BrokerEpoch);
        if (r.NextProducerId <= NextProducerId)
            throw Illegal(ErrorCodes.InvalidRequest, $"Next producer id {r.NextProducerId} is not above the current one {NextProducerId}.");
        return With(nextProducerId: r.NextProducerId);
    }

    private MetadataState SetMetadataVersion(SetMetadataVersionRecord r)
    {
        if (r.Level <= MetadataVersion || r.Level > MetadataVersions.Latest)
            throw Illegal(ErrorCodes.InvalidRequest, $"Metadata version {r.Level}: must be above {MetadataVersion} and at most {MetadataVersions.Latest}.");
        return With(metadataVersion: r.Level);
    }

    private MetadataState SetBrokerConfig(SetBrokerConfigRecord r)
    {
        if (!ConfigCatalog.Broker.TryGetValue(r.Name, out var def)) throw Illegal(ErrorCodes.InvalidConfig, $"Unknown broker config '{r.Name}'.");
        if (r.HasBrokerId) return SetPerBrokerConfig(r, def);
        if (r.StaticOnly)
        {
            if (r.Dynamic) throw Illegal(ErrorCodes.InvalidRequest, $"Broker config '{r.Name}': a static-only change cannot be dynamic.");
            if (r.Remove && !StaticBrokerConfigs.ContainsKey(r.Name)) throw Illegal(ErrorCodes.InvalidConfig, $"Broker config '{r.Name}' has no static value.");
            if (!r.Remove && def.Validate(r.Value) is { } invalid) throw Illegal(ErrorCodes.InvalidConfig, invalid);
            var statics = r.Remove ? StaticBrokerConfigs.Remove(r.Name) : StaticBrokerConfigs.SetItem(r.Name, r.Value);
            // Without a dynamic value the static one is the value in force.
            var inForce = DynamicBrokerConfigs.Contains(r.Name) ? BrokerConfigs
                : r.Remove ? BrokerConfigs.Remove(r.Name) : BrokerConfigs.SetItem(r.Name, r.Value);
            return With(brokerConfigs: inForce, staticBrokerConfigs: statics);
        }
        if (r.Remove)
        {
            if (!BrokerConfigs.ContainsKey(r.Name)) throw Illegal(ErrorCodes.InvalidConfig, $"Broker config '{r.Name}' is not set.");
            return With(brokerConfigs: BrokerConfigs.Remove(r.Name), dynamicBrokerConfigs: DynamicBrokerConfigs.Remove(r.Name),
                staticBrokerConfigs: StaticBrokerConfigs.Remove(r.Name));
        }
        if (def.Validate(r.Value) is { } bad) throw Illegal(ErrorCodes.InvalidConfig, bad);
        if (r.Dynamic && def.ReadOnly) throw Illegal(ErrorCodes.InvalidConfig, $"Broker config '{r.Name}' is read-only: it cannot be altered dynamically.");
        return r.Dynamic
            ? With(brokerConfigs: BrokerConfigs.SetItem(r.Name, r.Value), dynamicBrokerConfigs: DynamicBrokerConfigs.Add(r.Name))
            : With(brokerConfigs: BrokerConfigs.SetItem(r.Name, r.Value), dynamicBrokerConfigs: DynamicBrokerConfigs.Remove(r.Name),
                staticBrokerConfigs: StaticBrokerConfigs.SetItem(r.Name, r.Value));
    }

    private MetadataState SetPerBrokerConfig(SetBrokerConfigRecord r, ConfigDefinition def)
    {
        if (r.BrokerId < 0) throw Illegal(ErrorCodes.InvalidRequest, $"Broker id {r.BrokerId} is negative.");
        if (r.StaticOnly) throw Illegal(ErrorCodes.InvalidRequest, $"Broker config '{r.Name}' for broker {r.BrokerId}: per-broker values are dynamic only.");
        var current = PerBrokerConfigs.TryGetValue(r.BrokerId, out var b) ? b : ImmutableSortedDictionary.Create<string, string>(StringComparer.Ordinal);
        if (r.Remove)
        {
            if (!current.ContainsKey(r.Name)) throw Illegal(ErrorCodes.InvalidConfig, $"Broker {r.BrokerId} has no config '{r.Name}' set.");
            var left = current.Remove(r.Name);
            return With(perBrokerConfigs: left.IsEmpty ? PerBrokerConfigs.Remove(r.BrokerId) : PerBrokerConfigs.SetItem(r.BrokerId, left));
        }
        if (!r.Dynamic) throw Illegal(ErrorCodes.InvalidRequest, $"Broker config '{r.Name}' for broker {r.BrokerId}: per-broker values are dynamic only.");
        if (def.Validate(r.Value) is { } bad) throw Illegal(ErrorCodes.InvalidConfig, bad);
        if (def.ReadOnly) throw Illegal(ErrorCodes.InvalidConfig, $"Broker config '{r.Name}' is read-only: it cannot be altered dynamically.");
        return With(perBrokerConfigs: PerBrokerConfigs.SetItem(r.BrokerId, current.SetItem(r.Name, r.Value)));
    }

    private MetadataState SetGroupConfig(SetGroupConfigRecord r)
    {
        if (string.IsNullOrEmpty(r.GroupId)) throw Illegal(ErrorCodes.InvalidRequest, "Default group resources are not allowed.");
        if (!ConfigCatalog.Group.TryGetValue(r.Name, out var def)) throw Illegal(ErrorCodes.InvalidConfig, $"Unknown group config name: {r.Name}");
        var current = GroupConfigs.TryGetValue(r.GroupId, out var g) ? g : ImmutableSortedDictionary.Create<string, string>(StringComparer.Ordinal);
        if (r.Remove)
        {
            if (!current.ContainsKey(r.Name)) throw Illegal(ErrorCodes.InvalidConfig, $"Group '{r.GroupId}' has no config '{r.Name}' set.");
            var left = current.Remove(r.Name);
            return With(groupConfigs: left.IsEmpty ? GroupConfigs.Remove(r.GroupId) : GroupConfigs.SetItem(r.GroupId, left));
        }
        if (def.Validate(r.Value) is { } bad) throw Illegal(ErrorCodes.InvalidConfig, bad);
        return With(groupConfigs: GroupConfigs.SetItem(r.GroupId, current.SetItem(r.Name, r.Value)));
    }

    private MetadataState SetTopicConfig(SetTopicConfigRecord r)
    {
        var id = ParseTopicId(r.TopicId);
        if (!TryGetTopic(id, out var topic)) throw Illegal(ErrorCodes.UnknownTopicId, $"Topic id {id} does not exist.");
        if (!ConfigCatalog.Topic.TryGetValue(r.Name, out var def)) throw Illegal(ErrorCodes.InvalidConfig, $"Unknown topic config '{r.Name}'.");
        if (r.Remove)
        {
            if (!topic.Configs.ContainsKey(r.Name)) throw Illegal(ErrorCodes.InvalidConfig, $"Topic '{topic.Name}' has no config '{r.Name}' set.");
            return With(topics: Topics.SetItem(topic.Name, topic with { Configs = topic.Configs.Remove(r.Name) }));
        }
        if (def.Validate(r.Value) is { } bad) throw Illegal(ErrorCodes.InvalidConfig, bad);
        return With(topics: Topics.SetItem(topic.Name, topic with { Configs = topic.Configs.SetItem(r.Name, r.Value) }));
    }

    /// <summary>Rebuilds the state a snapshot file captured (the inverse of <see cref="ToSnapshot"/>).</summary>
    public static MetadataState FromSnapshot(MetadataSnapshot s)
    {
        var brokers = s.Brokers.ToImmutableSortedDictionary(b => b.BrokerId,
            b => new BrokerState(b.BrokerId, b.GrpcEndpoint, b.Rack, IncarnationId: "", b.BrokerEpoch, b.Fenced));
        var gateways = s.Gateways.ToImmutableSortedDictionary(g => g.NodeId,
            g => new GatewayState(g.NodeId, g.KafkaHost, g.KafkaPort, g.Rack, g.Fenced));
        var topics = s.Topics.Select(t => new TopicState(
            t.Name,
            TopicIds.ToGuid(t.TopicId),
            t.Partitions.Select(p => new PartitionState(p.Partition, p.Replicas.ToImmutableArray(), p.Isr.ToImmutableArray(), p.Leader, p.LeaderEpoch, p.PartitionEpoch)
            {
                Adding = p.AddingReplicas.ToImmutableArray(),
                Removing = p.RemovingReplicas.ToImmutableArray(),
            }).ToImmutableArray(),
            t.Configs.ToImmutableSortedDictionary(StringComparer.Ordinal),
            t.Internal || InternalTopics.IsInternal(t.Name))).ToArray();
        return new MetadataState(
            s.MetadataEpoch,
            brokers,
            gateways,
            topics.ToImmutableSortedDictionary(t => t.Name, t => t, StringComparer.Ordinal),
            topics.ToImmutableDictionary(t => t.TopicId, t => t.Name),
            s.BrokerConfigs.ToImmutableSortedDictionary(StringComparer.Ordinal),
            s.DynamicBrokerConfigs.ToImmutableSortedSet(StringComparer.Ordinal),
            // Snapshots written before static values were kept apart: every non-dynamic value was static.
            (s.StaticBrokerConfigs.Count > 0 ? s.StaticBrokerConfigs : s.BrokerConfigs.Where(kv => !s.DynamicBrokerConfigs.Contains(kv.Key)))
                .ToImmutableSortedDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
            s.GroupConfigs.ToImmutableSortedDictionary(g => g.Name, g => g.Configs.ToImmutableSortedDictionary(StringComparer.Ordinal), StringComparer.Ordinal),
            s.PerBrokerConfigs.Where(b => b.Configs.Count > 0)
                .ToImmutableSortedDictionary(b => b.BrokerId, b => b.Configs.ToImmutableSortedDictionary(StringComparer.Ordinal)),
            s.MetadataVersion,
            s.NextProducerId);
    }

    /// <summary>The wire form every watcher receives. Built once per committed state and shared read-only.</summary>
    public MetadataSnapshot ToSnapshot(string clusterId, int controllerId)
    {
        var snapshot = new MetadataSnapshot { MetadataEpoch = Epoch, ClusterId = clusterId, ControllerId = controllerId, MetadataVersion = MetadataVersion, NextProducerId = NextProducerId };
        foreach (var b in Brokers.Values)
            snapshot.Brokers.Add(new BrokerInfo { BrokerId = b.BrokerId, GrpcEndpoint = b.GrpcEndpoint, Rack = b.Rack, Fenced = b.Fenced, BrokerEpoch = b.BrokerEpoch });
        foreach (var g in Gateways.Values)
            snapshot.Gateways.Add(new GatewayInfo { NodeId = g.NodeId, KafkaHost = g.KafkaHost, KafkaPort = g.KafkaPort, Rack = g.Rack, Fenced = g.Fenced });
        foreach (var t in Topics.Values)
        {
            var info = new TopicInfo { Name = t.Name, TopicId = TopicIds.ToByteString(t.TopicId), ReplicationFactor = t.ReplicationFactor, Internal = t.Internal };
            info.Configs.Add(t.Configs);
            foreach (var p in t.Partitions)
            {
                var pi = new PartitionInfo { Partition = p.Partition, Leader = p.Leader, LeaderEpoch = p.LeaderEpoch, PartitionEpoch = p.PartitionEpoch };
                pi.Replicas.AddRange(p.Replicas);
                pi.Isr.AddRange(p.Isr);
                pi.AddingReplicas.AddRange(p.Adding);
                pi.RemovingReplicas.AddRange(p.Removing);
                info.Partitions.Add(pi);
            }
            snapshot.Topics.Add(info);
        }
        snapshot.BrokerConfigs.Add(BrokerConfigs);
        snapshot.DynamicBrokerConfigs.AddRange(DynamicBrokerConfigs);
        snapshot.StaticBrokerConfigs.Add(StaticBrokerConfigs);
        foreach (var (groupId, configs) in GroupConfigs)
        {
            var set = new ConfigSet { Name = groupId };
            set.Configs.Add(configs);
            snapshot.GroupConfigs.Add(set);
        }
        foreach (var (brokerId, configs) in PerBrokerConfigs)
        {
            var set = new BrokerConfigSet { BrokerId = brokerId };
            set.Configs.Add(configs);
            snapshot.PerBrokerConfigs.Add(set);
        }
        return snapshot;
    }
}
