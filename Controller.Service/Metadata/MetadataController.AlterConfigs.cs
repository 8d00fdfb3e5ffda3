using StreamPlatform.Protos.Configs;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Controller;
using StreamPlatform.Protos.Grpc.Metadata;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Controller.Metadata;

/// <summary>Kafka's IncrementalAlterConfigs operation codes.</summary>
public enum AlterConfigOp { Set = 0, Delete = 1, Append = 2, Subtract = 3 }

public sealed partial class MetadataController
{
    /// <summary>Kafka ConfigResource.Type codes this controller alters.</summary>
    public const int TopicResource = 2;
    public const int BrokerResource = 4;
    public const int GroupResource = 32;

    /// <summary>Most config entries one resource may carry (a bound on the work of one request).</summary>
    public const int MaxConfigsPerResource = 1000;

    /// <summary>
    /// AlterConfigs / IncrementalAlterConfigs. Each resource is all or nothing: its new explicit
    /// configs are computed and validated against <see cref="ConfigCatalog"/>, then turned into
    /// SetTopicConfig / SetBrokerConfig records; all resources that pass go into one log entry.
    /// Brokers and gateways get the change with the next metadata snapshot and apply it without
    /// a restart. Broker resources: the cluster-wide default (empty name) or one broker id (per-broker
    /// values, applied by that broker over the default); values set here are
    /// dynamic and survive controller restarts over Controller:BrokerConfigs; a config Kafka cannot
    /// update dynamically is INVALID_REQUEST (as Kafka's DynamicBrokerConfig.validate). Group
    /// resources (KIP-848 group configs): a non-empty group id, catalog keys, values checked
    /// together against the broker's group.* bounds (INVALID_CONFIG, as Kafka's GroupConfig.validate).
    /// </summary>
    public AlterConfigsResponse AlterConfigs(AlterConfigsRequest request)
    {
        var response = new AlterConfigsResponse();
        lock (_gate)
        {
            EnsureReady();
            var stage = new MetadataStage(_state);
            var duplicates = request.Resources.GroupBy(r => (r.ResourceType, r.ResourceName)).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet();
            var changed = new List<AlterConfigsResourceResult>();
            foreach (var resource in request.Resources)
            {
                var result = new AlterConfigsResourceResult { ResourceType = resource.ResourceType, ResourceName = resource.ResourceName };
                response.Results.Add(result);
                try
                {
                    if (duplicates.Contains((resource.ResourceType, resource.ResourceName)))
                        throw new MetadataStateException(ErrorCodes.InvalidRequest, $"Resource {resource.ResourceType}/'{resource.ResourceName}' appears more than once in the request.");
                    if (resource.Configs.Count > MaxConfigsPerResource)
                        throw new MetadataStateException(ErrorCodes.InvalidRequest, $"More than {MaxConfigsPerResource} configs for one resource.");
                    var records = resource.ResourceType switch
                    {
                        TopicResource => TopicConfigRecords(stage.State, resource),
                        BrokerResource => BrokerConfigRecords(stage.State, resource),
                        GroupResource => GroupConfigRecords(stage.State, resource),
                        _ => throw new MetadataStateException(ErrorCodes.InvalidRequest, $"Unknown resource type {resource.ResourceType}"),
                    };
                    // Applied to a trial state first, so a resource is staged whole or not at all.
                    var trial = stage.State;
                    foreach (var r in records) trial = trial.Apply(r);
                    foreach (var r in records) stage.Add(r);
                    changed.Add(result);
                }
                catch (MetadataStateException ex)
                {
                    result.ErrorCode = ex.ErrorCode;
                    result.ErrorMessage = ex.Message;
                }
            }
            response.MetadataEpoch = _state.Epoch;
            if (request.ValidateOnly) return response;
            // unclean.leader.election.enable turned on (topic or cluster-wide): leaderless
            // partitions it now covers elect at once, in the same entry (Kafka's controller
            // triggers an unclean election on that change too).
            LeaderElections.ElectUncleanWhereEnabled(stage);
            try
            {
                Commit(stage);
                response.MetadataEpoch = _state.Epoch;
            }
            catch (IOException ex)
            {
                foreach (var r in changed)
                {
                    r.ErrorCode = ErrorCodes.KafkaStorageError;
                    r.ErrorMessage = ex.Message;
                }
            }
            return response;
        }
    }

    private static List<MetadataRecord> TopicConfigRecords(MetadataState state, AlterConfigsResource resource)
    {
        if (!state.Topics.TryGetValue(resource.ResourceName, out var topic))
            throw new MetadataStateException(ErrorCodes.UnknownTopicOrPartition, $"Topic '{resource.ResourceName}' does not exist.");
        var effective = TopicConfigs.Effective(topic.Configs, state.BrokerConfigs);
        var updated = NewExplicitConfigs(topic.Configs, effective, resource, ConfigCatalog.Topic, ErrorCodes.InvalidConfig);
        var id = TopicIds.ToByteString(topic.TopicId);
        var records = new List<MetadataRecord>();
        foreach (var (name, value) in updated)
            if (!topic.Configs.TryGetValue(name, out var old) || old != value)
                records.Add(new MetadataRecord { SetTopicConfig = new SetTopicConfigRecord { TopicId = id, Name = name, Value = value } });
        foreach (var name in topic.Configs.Keys.Where(k => !updated.ContainsKey(k)))
            records.Add(new MetadataRecord { SetTopicConfig = new SetTopicConfigRecord { TopicId = id, Name = name, Remove = true } });
        return records;
    }

    private static List<MetadataRecord> BrokerConfigRecords(MetadataState state, AlterConfigsResource resource)
    {
        // Kafka keeps a cluster-wide default (empty name) and per-broker values (name = broker id).
        if (resource.ResourceName.Length > 0) return PerBrokerConfigRecords(state, resource);
        var dynamic = state.DynamicBrokerConfigs.ToDictionary(k => k, k => state.BrokerConfigs[k], StringComparer.Ordinal);
        var updated = NewExplicitConfigs(dynamic, state.BrokerConfigs, resource, ConfigCatalog.Broker, ErrorCodes.InvalidRequest);
        var staticValues = state.StaticBrokerConfigs;
        var records = new List<MetadataRecord>();
        foreach (var (name, value) in updated)
            if (!dynamic.TryGetValue(name, out var old) || old != value)
                records.Add(new MetadataRecord { SetBrokerConfig = new SetBrokerConfigRecord { Name = name, Value = value, Dynamic = true } });
        // A dynamic value deleted: back to the static (configured or default) value.
        foreach (var name in dynamic.Keys.Where(k => !updated.ContainsKey(k)))
            records.Add(new MetadataRecord
            {
                SetBrokerConfig = staticValues.TryGetValue(name, out var value)
                    ? new SetBrokerConfigRecord { Name = name, Value = value }
                    : new SetBrokerConfigRecord { Name = name, Remove = true },
            });
        return records;
    }

    /// <summary>
    /// BROKER "&lt;id&gt;": dynamic values for that broker id only, as Kafka's controller: the name
    /// must parse as a non-negative base-10 int (INVALID_REQUEST), the broker need not be
    /// registered; same catalog checks as the cluster-wide default. DELETE drops the per-broker
    /// value, so the cluster-wide one applies again.
    /// </summary>
    private static List<MetadataRecord> PerBrokerConfigRecords(MetadataState state, AlterConfigsResource resource)
    {
        if (!int.TryParse(resource.ResourceName, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var brokerId))
            throw new MetadataStateException(ErrorCodes.InvalidRequest, "Unable to parse broker name as a base 10 number.");
        if (brokerId < 0) throw new MetadataStateException(ErrorCodes.InvalidRequest, "Invalid negative broker ID.");
        var current = state.PerBrokerConfigs.TryGetValue(brokerId, out var b) ? (IReadOnlyDictionary<string, string>)b : new Dictionary<string, string>();
        var effective = new Dictionary<string, string>(state.BrokerConfigs, StringComparer.Ordinal);
        foreach (var (name, value) in current) effective[name] = value;
        var updated = NewExplicitConfigs(current, effective, resource, ConfigCatalog.Broker, ErrorCodes.InvalidRequest);
        var records = new List<MetadataRecord>();
        foreach (var (name, value) in updated)
            if (!current.TryGetValue(name, out var old) || old != value)
                records.Add(new MetadataRecord { SetBrokerConfig = new SetBrokerConfigRecord { BrokerId = brokerId, Name = name, Value = value, Dynamic = true } });
        foreach (var name in current.Keys.Where(k => !updated.ContainsKey(k)))
            records.Add(new MetadataRecord { SetBrokerConfig = new SetBrokerConfigRecord { BrokerId = brokerId, Name = name, Remove = true } });
        return records;
    }

    private static List<MetadataRecord> GroupConfigRecords(MetadataState state, AlterConfigsResource resource)
    {
        if (resource.ResourceName.Length == 0)
            throw new MetadataStateException(ErrorCodes.InvalidRequest, "Default group resources are not allowed.");
        var current = state.GroupConfigs.TryGetValue(resource.ResourceName, out var g) ? (IReadOnlyDictionary<string, string>)g : new Dictionary<string, string>();
        var updated = NewExplicitConfigs(current, current, resource, ConfigCatalog.Group, ErrorCodes.InvalidConfig);
        if (GroupConfigValues.Validate(updated, state.BrokerConfigs) is { } why)
            throw new MetadataStateException(ErrorCodes.InvalidConfig, why);
        var records = new List<MetadataRecord>();
        foreach (var (name, value) in updated)
            if (!current.TryGetValue(name, out var old) || old != value)
                records.Add(new MetadataRecord { SetGroupConfig = new SetGroupConfigRecord { GroupId = resource.ResourceName, Name = name, Value = value } });
        foreach (var name in current.Keys.Where(k => !updated.ContainsKey(k)))
            records.Add(new MetadataRecord { SetGroupConfig = new SetGroupConfigRecord { GroupId = resource.ResourceName, Name = name, Remove = true } });
        return records;
    }

    /// <summary>
    /// The resource's explicit configs after the request: <paramref name="current"/> with each
    /// op applied in order (or, for replace_all, only the listed SETs). APPEND/SUBTRACT start
    /// from the effective value and work on comma-separated list configs only.
    /// </summary>
    private static SortedDictionary<string, string> NewExplicitConfigs(IReadOnlyDictionary<string, string> current, IReadOnlyDictionary<string, string> effective,
        AlterConfigsResource resource, IReadOnlyDictionary<string, ConfigDefinition> catalog, short readOnlyError)
    {
        var result = resource.ReplaceAll
            ? new SortedDictionary<string, string>(StringComparer.Ordinal)
            : new SortedDictionary<string, string>(current.ToDictionary(), StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var config in resource.Configs)
        {
            if (!seen.Add(config.Name)) throw new MetadataStateException(ErrorCodes.InvalidRequest, $"Config '{config.Name}' appears more than once.");
            if (!catalog.TryGetValue(config.Name, out var def)) throw new MetadataStateException(ErrorCodes.InvalidConfig, $"Unknown config '{config.Name}'.");
            // Kafka's words for a broker config that is not dynamically updatable (INVALID_REQUEST, KAFKA-13609).
            if (def.ReadOnly) throw new MetadataStateException(readOnlyError, $"Cannot update these configs dynamically: Set({config.Name})");
            var op = (AlterConfigOp)config.Op;
            if (resource.ReplaceAll && op != AlterConfigOp.Set)
                throw new MetadataStateException(ErrorCodes.InvalidRequest, "AlterConfigs (replace_all) takes SET entries only.");
            if (op is not (AlterConfigOp.Set or AlterConfigOp.Delete or AlterConfigOp.Append or AlterConfigOp.Subtract))
                throw new MetadataStateException(ErrorCodes.InvalidRequest, $"Unknown config operation {config.Op} for '{config.Name}'.");
            if (op != AlterConfigOp.Delete && !config.HasValue)
                throw new MetadataStateException(ErrorCodes.InvalidRequest, $"A null value is only allowed with DELETE ('{config.Name}').");
            switch (op)
            {
                case AlterConfigOp.Set:
                    result[config.Name] = config.Value;
                    break;
                case AlterConfigOp.Delete:
                    result.Remove(config.Name);
                    break;
                default:
                    if (def.Type != ConfigType.List)
                        throw new MetadataStateException(ErrorCodes.InvalidConfig, $"APPEND and SUBTRACT apply to list configs; '{config.Name}' is a {def.Type}.");
                    var items = ListItems(result.TryGetValue(config.Name, out var own) ? own : effective.TryGetValue(config.Name, out var eff) ? eff : def.DefaultValue);
                    foreach (var item in ListItems(config.Value))
                    {
                        if (op == AlterConfigOp.Append && !items.Contains(item)) items.Add(item);
                        else if (op == AlterConfigOp.Subtract) items.Remove(item);
                    }
                    result[config.Name] = string.Join(',', items);
                    break;
            }
        }
        foreach (var (name, value) in result)
            if (catalog[name].Validate(value) is { } why) throw new MetadataStateException(ErrorCodes.InvalidConfig, $"Config '{name}': {why}");
        return result;
    }

    private static List<string> ListItems(string? value)
        => string.IsNullOrWhiteSpace(value) ? [] : value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();
}
