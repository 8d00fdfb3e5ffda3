using System.Globalization;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using StreamPlatform.Controller.Storage;
using StreamPlatform.Protos.Configs;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Controller;
using StreamPlatform.Protos.Grpc.Metadata;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Controller.Metadata;

/// <summary>
/// The single-node metadata quorum. Every change goes the same way: validate the request against
/// the committed state, stage the records on an immutable copy of the state, append them to the
/// log as one entry (fsync = commit), then swap the state and publish the snapshot. A failed
/// append leaves state and watchers untouched. When the quorum becomes Raft, the append becomes
/// "replicate and wait for a majority" and followers apply the same entries through
/// <see cref="MetadataState.Apply(IEnumerable{MetadataRecord})"/>.
///
/// Liveness (heartbeat deadlines) is in memory only: it is not metadata, and after a restart
/// every registered, unfenced broker and gateway gets one full session timeout of grace.
/// </summary>
public sealed partial class MetadataController : IDisposable
{
    private readonly ControllerOptions _options;
    private readonly TimeProvider _time;
    private readonly Random _random;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly Dictionary<int, DateTimeOffset> _brokerDeadlines = [];
    private readonly Dictionary<int, DateTimeOffset> _gatewayDeadlines = [];
    private MetadataLog? _log;
    private volatile MetadataState _state = MetadataState.Empty;
    private volatile bool _ready;
    private string _clusterId = "";
    /// <summary>When the next automatic preferred-leader check runs (leader.imbalance.check.interval.seconds).</summary>
    private DateTimeOffset _nextBalanceAt;

    public MetadataController(ControllerOptions options, TimeProvider time, Random random, ILogger<MetadataController> logger, MetadataPublisher? publisher = null)
    {
        options.Validate();
        _options = options;
        _time = time;
        _random = random;
        _logger = logger;
        Publisher = publisher ?? new MetadataPublisher();
    }

    public MetadataPublisher Publisher { get; }
    /// <summary>Metadata epochs the brokers report having applied (heartbeats).</summary>
    public AppliedEpochs Applied { get; } = new();
    /// <summary>True once the log has been replayed and the first snapshot published.</summary>
    public bool IsReady => _ready;
    public MetadataState State => _state;
    public string ClusterId => _clusterId;
    public ControllerOptions Options => _options;
    /// <summary>Bytes cut off a torn tail during replay (0 when the log was clean).</summary>
    public long TruncatedLogBytes => _log?.TruncatedBytes ?? 0;

    /// <summary>Longest endpoint, host, rack, incarnation id or config value accepted: they are stored in every snapshot.</summary>
    public const int MaxStringChars = 4096;

    private static bool TooLong(params string[] values) => values.Any(v => v.Length > MaxStringChars);

    private TimeSpan BrokerSessionTimeout => TimeSpan.FromMilliseconds(_options.BrokerSessionTimeoutMs);
    private TimeSpan GatewaySessionTimeout => TimeSpan.FromMilliseconds(_options.EffectiveGatewaySessionTimeoutMs);

    /// <summary>Loads the cluster id, replays the log, records configured broker configs, starts session grace.</summary>
    public void Start()
    {
        lock (_gate)
        {
            if (_ready) return;
            var dataDir = Path.GetFullPath(_options.DataDir);
            _clusterId = ClusterIdStore.LoadOrCreate(dataDir, _options.ClusterId, _random);
            var snapshot = MetadataSnapshotFile.TryLoad(dataDir);
            var state = snapshot is null ? MetadataState.Empty : MetadataState.FromSnapshot(snapshot);
            _log = MetadataLog.Open(dataDir, entry =>
            {
                // Entries the snapshot already covers: a crash between writing the snapshot and
                // emptying the log leaves them behind.
                if (snapshot is not null && entry.BaseEpoch < snapshot.MetadataEpoch)
                {
                    if (entry.BaseEpoch + entry.Records.Count > snapshot.MetadataEpoch)
                        throw new InvalidDataException($"Metadata log entry at epoch {entry.BaseEpoch} straddles the snapshot epoch {snapshot.MetadataEpoch}.");
                    return;
                }
                if (entry.BaseEpoch != state.Epoch)
                    throw new InvalidDataException($"Metadata log entry starts at epoch {entry.BaseEpoch} but the state is at {state.Epoch}.");
                state = state.Apply(entry.Records);
            }, _logger, _options.MaxLogEntryBytes);
            _state = state;
            _logger.LogInformation("Metadata log {Path} replayed (snapshot at epoch {SnapshotEpoch}): {Entries} entries, epoch {Epoch}, {Topics} topics, {Brokers} brokers; cluster id {ClusterId}",
                _log.Path, snapshot?.MetadataEpoch ?? 0, _log.EntryCount, state.Epoch, state.Topics.Count, state.Brokers.Count, _clusterId);

            // Broker configs are metadata too (watchers read them from the snapshot), so the
            // configured (static) values go through the log like any other change. Only configured
            // values are recorded: a key configured nowhere is the catalog default (DEFAULT_CONFIG).
            var stage = new MetadataStage(_state);
            var desired = DesiredBrokerConfigs();
            foreach (var (name, value) in desired)
            {
                if (_state.StaticBrokerConfigs.TryGetValue(name, out var current) && current == value) continue;
                // Values set through AlterConfigs (dynamic) stay in force over the static ones, as in Kafka.
                stage.Add(new MetadataRecord { SetBrokerConfig = new SetBrokerConfigRecord { Name = name, Value = value, StaticOnly = _state.DynamicBrokerConfigs.Contains(name) } });
            }
            // A key configured before and no longer configured (also catalog defaults recorded by
            // earlier versions, which recorded every key).
            foreach (var name in _state.StaticBrokerConfigs.Keys.Where(k => !desired.ContainsKey(k)))
                stage.Add(new MetadataRecord { SetBrokerConfig = new SetBrokerConfigRecord { Name = name, Remove = true, StaticOnly = _state.DynamicBrokerConfigs.Contains(name) } });
            StageMetadataVersion(stage);
            if (stage.Records.Count > 0) Commit(stage);
            MaybeCompact();

            var now = _time.GetUtcNow();
            foreach (var b in _state.Brokers.Values.Where(b => !b.Fenced)) _brokerDeadlines[b.BrokerId] = now + BrokerSessionTimeout;
            foreach (var g in _state.Gateways.Values.Where(g => !g.Fenced)) _gatewayDeadlines[g.NodeId] = now + GatewaySessionTimeout;
            _nextBalanceAt = now + BalanceInterval;
            Publisher.Publish(_state.ToSnapshot(_clusterId, _options.NodeId));
            _ready = true;
        }
    }

    private SortedDictionary<string, string> DesiredBrokerConfigs()
    {
        var desired = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in _options.BrokerConfigs) desired[name] = value;
        return desired;
    }

    /// <summary>Appends the staged records as one entry and publishes. Caller holds the lock.</summary>
    private void Commit(MetadataStage stage)
    {
        if (stage.Records.Count == 0) return;
        var entry = new MetadataLogEntry { BaseEpoch = _state.Epoch, AppendTimeMs = _time.GetUtcNow().ToUnixTimeMilliseconds() };
        entry.Records.Add(stage.Records);
        _log!.Append(entry);
        _state = stage.State;
        if (_ready)
        {
            Publisher.Publish(_state.ToSnapshot(_clusterId, _options.NodeId));
            MaybeCompact();
        }
    }

    /// <summary>
    /// Snapshot-then-empty keeps the log (and so replay time) bounded. Order matters: the snapshot
    /// is durable before the log is emptied, and replay skips entries the snapshot covers, so a
    /// crash at any point loses nothing. With Raft this becomes the snapshot that lagging
    /// followers install. Caller holds the lock.
    /// </summary>
    private void MaybeCompact()
    {
        if (_log is null || _log.LengthBytes < _options.SnapshotLogBytes) return;
        try
        {
            MetadataSnapshotFile.Write(Path.GetFullPath(_options.DataDir), _state.ToSnapshot(_clusterId, _options.NodeId));
            _log.Reset();
            _logger.LogInformation("Metadata snapshot written at epoch {Epoch}; log emptied", _state.Epoch);
        }
        catch (IOException ex)
        {
            // The log still holds everything; try again after the next commit.
            _logger.LogError(ex, "Metadata snapshot at epoch {Epoch} failed", _state.Epoch);
        }
    }

    private void EnsureReady()
    {
        if (!_ready) throw new ControllerNotReadyException();
    }

    /// <summary>Fences a broker and takes it out of every partition (<see cref="PartitionElections.OnFence"/>).</summary>
    private static void StageFence(MetadataStage stage, BrokerState broker)
    {
        stage.Add(new MetadataRecord { FenceBroker = new FenceBrokerRecord { BrokerId = broker.BrokerId, BrokerEpoch = broker.BrokerEpoch } });
        foreach (var topic in stage.State.Topics.Values)
            foreach (var p in topic.Partitions)
                if (PartitionElections.OnFence(stage.State, topic, p, broker.BrokerId) is { } change)
                    stage.Add(change);
    }

    /// <summary>
    /// Brings a log written before replication (metadata version below
    /// <see cref="MetadataVersions.Replication"/>) to the current meaning, once: such logs
    /// recorded ISR = all replicas although only the leader ever held records, so every led
    /// partition's ISR narrows to {leader} (a failover then cannot elect an empty replica). A
    /// partition already leaderless keeps its ISR: which replica last led is not recorded, so the
    /// first of them to return leads and the others drop out of its ISR. Then the level is
    /// recorded, so later starts (and new clusters, where this finds no topics) skip it.
    /// </summary>
    private static void StageMetadataVersion(MetadataStage stage)
    {
        if (stage.State.MetadataVersion >= MetadataVersions.Latest) return;
        if (stage.State.MetadataVersion < MetadataVersions.Replication)
            foreach (var topic in stage.State.Topics.Values)
                foreach (var p in topic.Partitions)
                    if (p.Leader >= 0 && PartitionElections.Change(topic, p, p.Leader, [p.Leader]) is { } narrow)
                        stage.Add(narrow);
        stage.Add(new MetadataRecord { SetMetadataVersion = new SetMetadataVersionRecord { Level = MetadataVersions.Latest } });
    }

    // ---- Brokers ------------------------------------------------------------------------

    public RegisterBrokerResponse RegisterBroker(RegisterBrokerRequest request)
    {
        var response = new RegisterBrokerResponse
        {
            HeartbeatIntervalMs = _options.BrokerHeartbeatIntervalMs,
            SessionTimeoutMs = _options.BrokerSessionTimeoutMs,
        };
        lock (_gate)
        {
            EnsureReady();
            if (request.BrokerId < 0) return Fail(response, ErrorCodes.InvalidRequest, $"Broker id {request.BrokerId} is negative.");
            if (string.IsNullOrWhiteSpace(request.GrpcEndpoint)) return Fail(response, ErrorCodes.InvalidRequest, "grpc_endpoint is empty.");
            if (TooLong(request.GrpcEndpoint, request.Rack, request.IncarnationId))
                return Fail(response, ErrorCodes.InvalidRequest, $"A registration string is longer than {MaxStringChars} characters.");

            // A retry of a registration that already succeeded (same process, same address)
            // must not mint a new epoch: the broker may already be using the first one.
            if (_state.Brokers.TryGetValue(request.BrokerId, out var existing) && !existing.Fenced
                && request.IncarnationId.Length > 0 && existing.IncarnationId == request.IncarnationId
                && existing.GrpcEndpoint == request.GrpcEndpoint && existing.Rack == request.Rack)
            {
                _brokerDeadlines[request.BrokerId] = _time.GetUtcNow() + BrokerSessionTimeout;
                response.BrokerEpoch = existing.BrokerEpoch;
                return response;
            }

            // Another process claiming a live broker's id (Kafka's DUPLICATE_BROKER_REGISTRATION):
            // refused while the registered one's session lasts, so a second broker cannot take over
            // a live one's partitions. A broker restarted after a crash (new incarnation) gets in
            // once the old session has expired and been fenced; a clean stop fences at once. An
            // unknown incarnation (a registration restored from a snapshot, which does not keep
            // it) cannot be told apart and is not held against anyone.
            if (existing is { Fenced: false } && existing.IncarnationId.Length > 0 && existing.IncarnationId != request.IncarnationId
                && _brokerDeadlines.TryGetValue(request.BrokerId, out var liveUntil) && liveUntil > _time.GetUtcNow())
            {
                return Fail(response, ErrorCodes.DuplicateBrokerRegistration,
                    $"Broker id {request.BrokerId} is registered by another live process (at {existing.GrpcEndpoint}). " +
                    $"A restarted broker is accepted once that session expires (Controller:BrokerSessionTimeoutMs, {_options.BrokerSessionTimeoutMs} ms, without a heartbeat).");
            }

            var stage = new MetadataStage(_state);
            // The epoch this record produces: above every earlier broker epoch, and unique.
            var brokerEpoch = _state.Epoch + 1;
            try
            {
                stage.Add(new MetadataRecord
                {
                    RegisterBroker = new RegisterBrokerRecord
                    {
                        BrokerId = request.BrokerId,
                        GrpcEndpoint = request.GrpcEndpoint,
                        Rack = request.Rack,
                        IncarnationId = request.IncarnationId,
                        BrokerEpoch = brokerEpoch,
                    },
                });
                foreach (var topic in stage.State.Topics.Values)
                    foreach (var p in topic.Partitions)
                        if (PartitionElections.OnRegister(stage.State, topic, p, request.BrokerId) is { } change)
                            stage.Add(change);
                Commit(stage);
            }
            catch (MetadataStateException ex)
            {
                return Fail(response, ex.ErrorCode, ex.Message);
            }
            catch (IOException ex)
            {
                return Fail(response, ErrorCodes.KafkaStorageError, ex.Message);
            }
            _brokerDeadlines[request.BrokerId] = _time.GetUtcNow() + BrokerSessionTimeout;
            Applied.Forget(request.BrokerId);
            response.BrokerEpoch = brokerEpoch;
            _logger.LogInformation("Broker {BrokerId} registered at {Endpoint} with broker epoch {BrokerEpoch}", request.BrokerId, request.GrpcEndpoint, brokerEpoch);
            return response;
        }
    }

    private static RegisterBrokerResponse Fail(RegisterBrokerResponse r, short code, string message)
    {
        r.ErrorCode = code;
        r.ErrorMessage = message;
        return r;
    }

    public BrokerHeartbeatResponse BrokerHeartbeat(BrokerHeartbeatRequest request)
    {
        lock (_gate)
        {
            EnsureReady();
            if (!_state.Brokers.TryGetValue(request.BrokerId, out var broker))
                return new BrokerHeartbeatResponse { ErrorCode = ErrorCodes.BrokerIdNotRegistered, Fenced = true };
            if (broker.BrokerEpoch != request.BrokerEpoch)
                return new BrokerHeartbeatResponse { ErrorCode = ErrorCodes.StaleBrokerEpoch, Fenced = true };
            if (broker.Fenced)
                return new BrokerHeartbeatResponse { ErrorCode = ErrorCodes.None, Fenced = true, ShouldShutDown = request.WantShutdown };
            if (request.WantShutdown)
            {
                // Controlled shutdown: move its leaderships away now instead of after the session timeout.
                var stage = new MetadataStage(_state);
                try
                {
                    StageFence(stage, broker);
                    Commit(stage);
                }
                catch (IOException)
                {
                    return new BrokerHeartbeatResponse { ErrorCode = ErrorCodes.KafkaStorageError };
                }
                _brokerDeadlines.Remove(request.BrokerId);
                _logger.LogInformation("Broker {BrokerId} fenced for controlled shutdown", request.BrokerId);
                return new BrokerHeartbeatResponse { Fenced = true, ShouldShutDown = true };
            }
            _brokerDeadlines[request.BrokerId] = _time.GetUtcNow() + BrokerSessionTimeout;
            Applied.Report(request.BrokerId, request.MetadataEpoch);
            return new BrokerHeartbeatResponse();
        }
    }

    /// <summary>
    /// Kafka's AlterPartition: a partition leader shrinks or expands its ISR
    /// (<see cref="IsrChanges.Decide"/>). Accepted changes are committed as one log entry; every
    /// result carries the partition's state afterwards (or as it is, on error).
    /// </summary>
    public AlterPartitionResponse AlterPartition(AlterPartitionRequest request)
    {
        lock (_gate)
        {
            EnsureReady();
            if (!_state.Brokers.TryGetValue(request.BrokerId, out var broker) || broker.BrokerEpoch != request.BrokerEpoch)
                return new AlterPartitionResponse { ErrorCode = ErrorCodes.StaleBrokerEpoch };
            var stage = new MetadataStage(_state);
            var response = IsrChanges.Alter(stage, request, _logger);
            try
            {
                Commit(stage);
            }
            catch (IOException ex)
            {
                _logger.LogError(ex, "Could not record the ISR changes of broker {BrokerId}", request.BrokerId);
                return new AlterPartitionResponse { ErrorCode = ErrorCodes.KafkaStorageError };
            }
            foreach (var change in stage.Records.Where(r => r.KindCase == MetadataRecord.KindOneofCase.ChangeIsr))
                _logger.LogInformation("ISR of {Topic}-{Partition} is now [{Isr}] (leader {BrokerId})",
                    _state.TopicNamesById[TopicIds.ToGuid(change.ChangeIsr.TopicId)], change.ChangeIsr.Partition, string.Join(",", change.ChangeIsr.NewIsr.BrokerIds), request.BrokerId);
            IsrChanges.AnswerStates(_state, response);
            return response;
        }
    }

    /// <summary>Kafka's ElectLeaders (<see cref="LeaderElections.Elect"/>): all elections of one request are one log entry.</summary>
    public ElectLeadersResponse ElectLeaders(ElectLeadersRequest request)
    {
        lock (_gate)
        {
            EnsureReady();
            var stage = new MetadataStage(_state);
            var response = LeaderElections.Elect(stage, request);
            if (response.ErrorCode != ErrorCodes.None) return response;
            try
            {
                Commit(stage);
            }
            catch (IOException ex)
            {
                return new ElectLeadersResponse { ErrorCode = ErrorCodes.KafkaStorageError, ErrorMessage = ex.Message };
            }
            if (stage.Records.Count > 0)
                _logger.LogInformation("ElectLeaders ({Type}) moved {Count} leaderships", request.ElectionType == LeaderElections.Unclean ? "unclean" : "preferred", stage.Records.Count);
            response.MetadataEpoch = _state.Epoch;
            return response;
        }
    }

    private TimeSpan BalanceInterval
        => TimeSpan.FromSeconds(long.Parse(BrokerConfig(_state, "leader.imbalance.check.interval.seconds"), CultureInfo.InvariantCulture));

    /// <summary>
    /// Automatic preferred-leader balancing (auto.leader.rebalance.enable), at most once per
    /// leader.imbalance.check.interval.seconds; the hosted service calls it on every tick. Returns
    /// how many leaderships moved back to their preferred replica.
    /// </summary>
    public int BalanceLeadersIfDue()
    {
        lock (_gate)
        {
            if (!_ready) return 0;
            var now = _time.GetUtcNow();
            if (now < _nextBalanceAt) return 0;
            _nextBalanceAt = now + BalanceInterval;
            if (!string.Equals(BrokerConfig(_state, "auto.leader.rebalance.enable"), "true", StringComparison.OrdinalIgnoreCase)) return 0;
            var stage = new MetadataStage(_state);
            var moved = LeaderElections.Rebalance(stage, int.Parse(BrokerConfig(_state, "leader.imbalance.per.broker.percentage"), CultureInfo.InvariantCulture));
            if (moved == 0) return 0;
            try
            {
                Commit(stage);
            }
            catch (IOException ex)
            {
                _logger.LogError(ex, "Could not record the preferred leader elections");
                return 0;
            }
            _logger.LogInformation("Leader balancing moved {Count} leaderships back to their preferred replicas", moved);
            return moved;
        }
    }

    /// <summary>Kafka's CreatePartitions (<see cref="PartitionCreation.Create"/>): one log entry for the request.</summary>
    public CreatePartitionsResponse CreatePartitions(CreatePartitionsRequest request)
    {
        lock (_gate)
        {
            EnsureReady();
            var stage = new MetadataStage(_state);
            var staged = new List<CreatePartitionsTopicResult>();
            var response = PartitionCreation.Create(stage, request, _options, _random, staged);
            if (request.ValidateOnly) return response;
            try
            {
                Commit(stage);
            }
            catch (IOException ex)
            {
                foreach (var r in staged)
                {
                    r.ErrorCode = ErrorCodes.KafkaStorageError;
                    r.ErrorMessage = ex.Message;
                }
            }
            foreach (var r in staged.Where(r => r.ErrorCode == 0))
                _logger.LogInformation("Topic {Topic} now has {Count} partitions", r.Name, _state.Topics[r.Name].Partitions.Length);
            response.MetadataEpoch = _state.Epoch;
            return response;
        }
    }

    /// <summary>Kafka's AlterPartitionReassignments (<see cref="Reassignments.Alter"/>): one log entry for the request.</summary>
    public AlterReassignmentsResponse AlterPartitionReassignments(AlterReassignmentsRequest request)
    {
        lock (_gate)
        {
            EnsureReady();
            var stage = new MetadataStage(_state);
            var response = Reassignments.Alter(stage, request);
            try
            {
                Commit(stage);
            }
            catch (IOException ex)
            {
                foreach (var r in response.Topics.SelectMany(t => t.Partitions).Where(r => r.ErrorCode == 0))
                {
                    r.ErrorCode = ErrorCodes.KafkaStorageError;
                    r.ErrorMessage = ex.Message;
                }
                return response;
            }
            if (stage.Records.Count > 0) _logger.LogInformation("Partition reassignments changed ({Records} records)", stage.Records.Count);
            response.MetadataEpoch = _state.Epoch;
            return response;
        }
    }

    public ListReassignmentsResponse ListPartitionReassignments(ListReassignmentsRequest request)
    {
        EnsureReady();
        return Reassignments.List(_state, request);
    }

    // ---- Gateways -----------------------------------------------------------------------

    public RegisterGatewayResponse RegisterGateway(RegisterGatewayRequest request)
    {
        var response = new RegisterGatewayResponse { HeartbeatIntervalMs = _options.BrokerHeartbeatIntervalMs };
        lock (_gate)
        {
            EnsureReady();
            if (TooLong(request.KafkaHost, request.Rack))
            {
                response.ErrorCode = ErrorCodes.InvalidRequest;
                response.ErrorMessage = $"A registration string is longer than {MaxStringChars} characters.";
                return response;
            }
            var unchanged = _state.Gateways.TryGetValue(request.NodeId, out var g) && !g.Fenced
                && g.KafkaHost == request.KafkaHost && g.KafkaPort == request.KafkaPort && g.Rack == request.Rack;
            if (!unchanged)
            {
                var stage = new MetadataStage(_state);
                try
                {
                    stage.Add(new MetadataRecord
                    {
                        RegisterGateway = new RegisterGatewayRecord { NodeId = request.NodeId, KafkaHost = request.KafkaHost, KafkaPort = request.KafkaPort, Rack = request.Rack },
                    });
                    Commit(stage);
                }
                catch (MetadataStateException ex)
                {
                    response.ErrorCode = ex.ErrorCode;
                    response.ErrorMessage = ex.Message;
                    return response;
                }
                catch (IOException ex)
                {
                    response.ErrorCode = ErrorCodes.KafkaStorageError;
                    response.ErrorMessage = ex.Message;
                    return response;
                }
                _logger.LogInformation("Gateway {NodeId} registered at {Host}:{Port}", request.NodeId, request.KafkaHost, request.KafkaPort);
            }
            _gatewayDeadlines[request.NodeId] = _time.GetUtcNow() + GatewaySessionTimeout;
            return response;
        }
    }

    public GatewayHeartbeatResponse GatewayHeartbeat(GatewayHeartbeatRequest request)
    {
        lock (_gate)
        {
            EnsureReady();
            if (!_state.Gateways.TryGetValue(request.NodeId, out var g))
                return new GatewayHeartbeatResponse { ErrorCode = ErrorCodes.BrokerIdNotRegistered, Fenced = true };
            if (g.Fenced) return new GatewayHeartbeatResponse { Fenced = true };
            _gatewayDeadlines[request.NodeId] = _time.GetUtcNow() + GatewaySessionTimeout;
            return new GatewayHeartbeatResponse();
        }
    }

    /// <summary>Fences every broker and gateway whose session deadline has passed, in one log entry.</summary>
    public void ExpireSessions()
    {
        lock (_gate)
        {
            if (!_ready) return;
            var now = _time.GetUtcNow();
            var stage = new MetadataStage(_state);
            var expiredBrokers = new List<int>();
            var expiredGateways = new List<int>();
            foreach (var b in _state.Brokers.Values)
            {
                if (b.Fenced || !_brokerDeadlines.TryGetValue(b.BrokerId, out var deadline) || deadline > now) continue;
                StageFence(stage, stage.State.Brokers[b.BrokerId]);
                expiredBrokers.Add(b.BrokerId);
            }
            foreach (var g in _state.Gateways.Values)
            {
                if (g.Fenced || !_gatewayDeadlines.TryGetValue(g.NodeId, out var deadline) || deadline > now) continue;
                stage.Add(new MetadataRecord { FenceGateway = new FenceGatewayRecord { NodeId = g.NodeId } });
                expiredGateways.Add(g.NodeId);
            }
            if (stage.Records.Count == 0) return;
            try
            {
                Commit(stage);
            }
            catch (IOException ex)
            {
                // Deadlines stay as they are, so the next check tries again.
                _logger.LogError(ex, "Could not record expired sessions");
                return;
            }
            foreach (var id in expiredBrokers)
            {
                _brokerDeadlines.Remove(id);
                _logger.LogWarning("Broker {BrokerId} fenced: no heartbeat for {TimeoutMs} ms", id, _options.BrokerSessionTimeoutMs);
            }
            foreach (var id in expiredGateways)
            {
                _gatewayDeadlines.Remove(id);
                _logger.LogWarning("Gateway {NodeId} fenced: no heartbeat for {TimeoutMs} ms", id, _options.EffectiveGatewaySessionTimeoutMs);
            }
        }
    }

    // ---- Topics -------------------------------------------------------------------------

    private string BrokerConfig(MetadataState state, string name)
        => state.BrokerConfigs.TryGetValue(name, out var v) ? v : ConfigCatalog.Broker[name].DefaultValue!;

    public CreateTopicsResponse CreateTopics(CreateTopicsRequest request)
    {
        var response = new CreateTopicsResponse();
        lock (_gate)
        {
            EnsureReady();
            var stage = new MetadataStage(_state);
            var duplicates = request.Topics.GroupBy(t => t.Name, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet(StringComparer.Ordinal);
            var created = new List<CreateTopicResult>();
            var partitionsStaged = 0L;
            foreach (var topic in request.Topics)
            {
                var result = new CreateTopicResult { Name = topic.Name };
                response.Results.Add(result);
                if (duplicates.Contains(topic.Name))
                {
                    result.ErrorCode = ErrorCodes.InvalidRequest;
                    result.ErrorMessage = $"Topic '{topic.Name}' appears more than once in the request.";
                    continue;
                }
                try
                {
                    // Checked before any assignment work, so one huge request cannot pin the controller.
                    var requested = topic.Assignments.Count > 0 ? topic.Assignments.Count
                        : topic.NumPartitions == -1 ? int.Parse(BrokerConfig(stage.State, "num.partitions"), CultureInfo.InvariantCulture)
                        : Math.Max(topic.NumPartitions, 0);
                    if (partitionsStaged + requested > _options.MaxPartitionsPerRequest)
                        throw new MetadataStateException(ErrorCodes.ThrottlingQuotaExceeded,
                            $"The request creates more than {_options.MaxPartitionsPerRequest} partitions; create the rest in another request.");
                    var record = BuildCreateTopic(stage.State, topic);
                    partitionsStaged += record.Partitions.Count;
                    stage.Add(new MetadataRecord { CreateTopic = record });
                    if (!request.ValidateOnly) result.TopicId = record.TopicId;
                    result.NumPartitions = record.Partitions.Count;
                    result.ReplicationFactor = record.Partitions[0].Replicas.Count;
                    result.Configs.Add(TopicConfigs.Effective(record.Configs, stage.State.BrokerConfigs));
                    created.Add(result);
                }
                catch (MetadataStateException ex)
                {
                    result.ErrorCode = ex.ErrorCode;
                    result.ErrorMessage = ex.Message;
                }
            }
            if (request.ValidateOnly) return response;
            try
            {
                Commit(stage);
            }
            catch (IOException ex)
            {
                foreach (var r in created)
                {
                    r.ErrorCode = ErrorCodes.KafkaStorageError;
                    r.ErrorMessage = ex.Message;
                    r.TopicId = ByteString.Empty;
                    r.Configs.Clear();
                }
            }
            foreach (var r in created.Where(r => r.ErrorCode == 0))
                _logger.LogInformation("Created topic {Topic} with {Partitions} partitions, replication factor {Rf}", r.Name, r.NumPartitions, r.ReplicationFactor);
            response.MetadataEpoch = _state.Epoch;
            return response;
        }
    }

    /// <summary>
    /// <see cref="CreateTopics"/>, then (when the request asks) waits until every created
    /// partition's leader has applied the creation, so the answer means "writable": a client
    /// producing right after it finds the leader ready (Kafka answers at commit and lets clients
    /// retry; a gateway in front of the brokers would otherwise advertise a leader not ready yet).
    /// </summary>
    public Task<CreateTopicsResponse> CreateTopicsAsync(CreateTopicsRequest request, CancellationToken cancellationToken)
    {
        // Synchronous up to the commit, so "not ready" surfaces as an exception to the caller.
        var response = CreateTopics(request);
        var created = response.Results.Where(r => r.ErrorCode == 0).Select(r => r.Name).ToList();
        if (request.ValidateOnly || created.Count == 0 || request.WaitForLeadersMs <= 0)
        {
            response.LeadersReady = !request.ValidateOnly && created.Count > 0 && LeadersApplied(created, response.MetadataEpoch);
            return Task.FromResult(response);
        }
        return WaitForLeadersAsync(response, created, TimeSpan.FromMilliseconds(request.WaitForLeadersMs), cancellationToken);
    }

    private async Task<CreateTopicsResponse> WaitForLeadersAsync(CreateTopicsResponse response, List<string> created, TimeSpan max, CancellationToken cancellationToken)
    {
        response.LeadersReady = await Applied.WaitAsync(() => LeadersApplied(created, response.MetadataEpoch), max, _time, cancellationToken).ConfigureAwait(false);
        if (!response.LeadersReady)
            _logger.LogWarning("Topics {Topics} created, but not every leader applied them within {WaitMs} ms", string.Join(", ", created), (int)max.TotalMilliseconds);
        return response;
    }

    /// <summary>
    /// Every partition of the named topics has a leader that applied metadata at or after
    /// <paramref name="epoch"/>, or no live leader at all (nothing to wait for). Deleted topics count as done.
    /// </summary>
    public bool LeadersApplied(IEnumerable<string> topics, long epoch)
    {
        var state = _state;
        foreach (var name in topics)
        {
            if (!state.Topics.TryGetValue(name, out var topic)) continue;
            foreach (var p in topic.Partitions)
                if (p.Leader >= 0 && state.IsLive(p.Leader) && Applied.Of(p.Leader) < epoch) return false;
        }
        return true;
    }

    private CreateTopicRecord BuildCreateTopic(MetadataState state, CreatableTopic topic)
    {
        if (TopicNames.Validate(topic.Name) is { } bad) throw new MetadataStateException(ErrorCodes.InvalidTopicException, bad);
        if (state.Topics.ContainsKey(topic.Name)) throw new MetadataStateException(ErrorCodes.TopicAlreadyExists, $"Topic '{topic.Name}' already exists.");
        var key = TopicNames.CollisionKey(topic.Name);
        foreach (var existing in state.Topics.Keys)
            if (TopicNames.CollisionKey(existing) == key)
                throw new MetadataStateException(ErrorCodes.InvalidTopicException, $"Topic '{topic.Name}' collides with existing topic '{existing}': '.' and '_' are interchangeable in metric names.");

        var live = state.Brokers.Values.Where(b => !b.Fenced).Select(b => b.BrokerId).ToArray();
        int[][] assignment;
        if (topic.Assignments.Count > 0)
        {
            if (topic.NumPartitions != -1 || topic.ReplicationFactor != -1)
                throw new MetadataStateException(ErrorCodes.InvalidRequest, "num_partitions and replication_factor must be -1 when an explicit assignment is given.");
            assignment = ValidateAssignment(state, topic);
        }
        else
        {
            var partitions = topic.NumPartitions == -1 ? int.Parse(BrokerConfig(state, "num.partitions"), CultureInfo.InvariantCulture) : topic.NumPartitions;
            if (partitions <= 0) throw new MetadataStateException(ErrorCodes.InvalidPartitions, "Number of partitions must be larger than 0, or -1 to use the default.");
            if (partitions > _options.MaxPartitionsPerTopic)
                throw new MetadataStateException(ErrorCodes.InvalidPartitions, $"Number of partitions {partitions} is above the limit of {_options.MaxPartitionsPerTopic}.");
            var rf = topic.ReplicationFactor == -1 ? int.Parse(BrokerConfig(state, "default.replication.factor"), CultureInfo.InvariantCulture) : topic.ReplicationFactor;
            if (rf <= 0) throw new MetadataStateException(ErrorCodes.InvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default.");
            if (rf > live.Length)
                throw new MetadataStateException(ErrorCodes.InvalidReplicationFactor,
                    $"Unable to replicate the partition {rf} time(s): only {live.Length} broker(s) are live.");
            assignment = ReplicaAssigner.Assign(live, partitions, rf, _random);
        }

        foreach (var (name, value) in topic.Configs)
        {
            if (!ConfigCatalog.Topic.TryGetValue(name, out var def)) throw new MetadataStateException(ErrorCodes.InvalidConfig, $"Unknown topic config '{name}'.");
            if (value.Length > MaxStringChars) throw new MetadataStateException(ErrorCodes.InvalidConfig, $"Value of '{name}' is longer than {MaxStringChars} characters.");
            if (def.Validate(value) is { } why) throw new MetadataStateException(ErrorCodes.InvalidConfig, why);
        }

        var record = new CreateTopicRecord { Name = topic.Name, TopicId = TopicIds.ToByteString(NewTopicId(state)), Internal = topic.Internal && topic.Name.StartsWith("__", StringComparison.Ordinal) };
        record.Configs.Add(topic.Configs);
        for (var p = 0; p < assignment.Length; p++)
        {
            var replicas = assignment[p];
            // ValidateAssignment guarantees a live replica. Every replica is empty, so every live
            // one is in sync (Kafka does the same); a fenced one joins once the leader sees it
            // caught up (AlterPartition).
            var leader = replicas.First(state.IsLive);
            var pr = new PartitionRecord { Partition = p, Leader = leader, LeaderEpoch = 0 };
            pr.Replicas.AddRange(replicas);
            pr.Isr.AddRange(replicas.Where(state.IsLive));
            record.Partitions.Add(pr);
        }
        return record;
    }

    private int[][] ValidateAssignment(MetadataState state, CreatableTopic topic)
    {
        var n = topic.Assignments.Count;
        if (n > _options.MaxPartitionsPerTopic)
            throw new MetadataStateException(ErrorCodes.InvalidPartitions, $"Number of partitions {n} is above the limit of {_options.MaxPartitionsPerTopic}.");
        var result = new int[n][];
        int? rf = null;
        for (var p = 0; p < n; p++)
        {
            if (!topic.Assignments.TryGetValue(p, out var list))
                throw new MetadataStateException(ErrorCodes.InvalidReplicaAssignment, $"Partitions must be numbered 0 to {n - 1}; partition {p} is missing.");
            var replicas = list.BrokerIds.ToArray();
            if (replicas.Length == 0) throw new MetadataStateException(ErrorCodes.InvalidReplicaAssignment, $"Partition {p} has no replicas.");
            if (rf is not null && replicas.Length != rf)
                throw new MetadataStateException(ErrorCodes.InvalidReplicaAssignment, "All partitions must have the same number of replicas.");
            rf = replicas.Length;
            if (replicas.Distinct().Count() != replicas.Length)
                throw new MetadataStateException(ErrorCodes.InvalidReplicaAssignment, $"Partition {p} lists a broker more than once.");
            foreach (var b in replicas)
                if (!state.Brokers.ContainsKey(b))
                    throw new MetadataStateException(ErrorCodes.InvalidReplicaAssignment, $"Partition {p} names broker {b}, which is not registered.");
            if (!replicas.Any(state.IsLive))
                throw new MetadataStateException(ErrorCodes.InvalidReplicaAssignment, $"All brokers of partition {p} are fenced.");
            result[p] = replicas;
        }
        return result;
    }

    private Guid NewTopicId(MetadataState state)
    {
        Span<byte> bytes = stackalloc byte[16];
        while (true)
        {
            _random.NextBytes(bytes);
            bytes[6] = (byte)((bytes[6] & 0x0F) | 0x40);
            bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
            var id = new Guid(bytes, bigEndian: true);
            if (id != Guid.Empty && !state.TopicNamesById.ContainsKey(id)) return id;
        }
    }

    public DeleteTopicsResponse DeleteTopics(DeleteTopicsRequest request)
    {
        var response = new DeleteTopicsResponse();
        lock (_gate)
        {
            EnsureReady();
            var disabled = BrokerConfig(_state, "delete.topic.enable") == "false";
            var stage = new MetadataStage(_state);
            var deleted = new List<DeleteTopicResult>();
            foreach (var target in request.Topics)
            {
                var result = new DeleteTopicResult { Name = target.Name, TopicId = target.TopicId };
                response.Results.Add(result);
                if (disabled)
                {
                    result.ErrorCode = ErrorCodes.TopicDeletionDisabled;
                    result.ErrorMessage = "Topic deletion is disabled (delete.topic.enable=false).";
                    continue;
                }
                TopicState? topic = null;
                // An all-zero id means "by name" (Kafka's DeleteTopics v6 sends the zero uuid with a name).
                var byId = !target.TopicId.IsEmpty && !(target.TopicId.Length == 16 && target.TopicId.Span.IndexOfAnyExcept((byte)0) < 0);
                if (byId)
                {
                    if (target.TopicId.Length != 16 || !stage.State.TryGetTopic(TopicIds.ToGuid(target.TopicId), out topic))
                    {
                        result.ErrorCode = ErrorCodes.UnknownTopicId;
                        result.ErrorMessage = "This server does not host this topic id.";
                        continue;
                    }
                }
                else if (!stage.State.Topics.TryGetValue(target.Name, out topic))
                {
                    result.ErrorCode = ErrorCodes.UnknownTopicOrPartition;
                    result.ErrorMessage = "This server does not host this topic-partition.";
                    continue;
                }
                result.Name = topic.Name;
                result.TopicId = TopicIds.ToByteString(topic.TopicId);
                if (topic.Internal)
                {
                    // Deleting __consumer_offsets would lose every committed offset and group.
                    // Kafka leaves this to its authorizer (a principal without DELETE on the
                    // topic gets TOPIC_AUTHORIZATION_FAILED); without ACLs here, the controller
                    // refuses every client the same way, so no request path can delete them.
                    result.ErrorCode = ErrorCodes.TopicAuthorizationFailed;
                    result.ErrorMessage = $"Topic {topic.Name} is an internal topic and cannot be deleted.";
                    continue;
                }
                stage.Add(new MetadataRecord { DeleteTopic = new DeleteTopicRecord { TopicId = result.TopicId } });
                deleted.Add(result);
            }
            try
            {
                Commit(stage);
            }
            catch (IOException ex)
            {
                foreach (var r in deleted)
                {
                    r.ErrorCode = ErrorCodes.KafkaStorageError;
                    r.ErrorMessage = ex.Message;
                }
            }
            return response;
        }
    }

    public MetadataSnapshot GetMetadata()
    {
        EnsureReady();
        return Publisher.Current!;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _ready = false;
            _log?.Dispose();
            _log = null;
        }
    }
}

/// <summary>An RPC arrived before the metadata log was replayed.</summary>
public sealed class ControllerNotReadyException() : Exception("The controller is still replaying its metadata log.");
