using System.Globalization;
using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Protos.Configs;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

// DescribeConfigs v0-v4 (up to the codec's highest), answered from the gateway's metadata, no
// remote call, as Kafka's ConfigHelper. Sources: a key set nowhere is DEFAULT_CONFIG (5, the
// catalog default); values given at start-up (Controller:BrokerConfigs) STATIC_BROKER_CONFIG (4);
// AlterConfigs on the cluster-wide broker resource (empty name) DYNAMIC_DEFAULT_BROKER_CONFIG (3);
// AlterConfigs on BROKER "<id>" DYNAMIC_BROKER_CONFIG (2, shown for that node id, first synonym);
// topic overrides DYNAMIC_TOPIC_CONFIG (1); group overrides GROUP_CONFIG (8). Synonyms (v1+, when
// include_synonyms) in Kafka's precedence order: the resource's own value, then the broker
// synonym's dynamic default, static and default values; the first one is in force.
// Topics (resource type 2): every ConfigCatalog.Topic config, read_only false; unknown topic:
// UNKNOWN_TOPIC_OR_PARTITION (3), illegal name: INVALID_TOPIC_EXCEPTION (17).
// Brokers (type 4): a gateway node id (the ids clients see as brokers) or a Broker.Service id
// lists every ConfigCatalog.Broker config with read_only = not dynamically updatable, the values
// set on that id first (DYNAMIC_BROKER_CONFIG); the empty name lists
// only the dynamically set cluster defaults (Kafka lists currentDynamicDefaultConfigs there);
// another name: INVALID_REQUEST (42). Groups (type 32, KIP-848): any non-empty group id (Kafka
// does not check the group exists), every ConfigCatalog.Group config, the default being the
// broker's group.* value; empty name: INVALID_REQUEST. BROKER_LOGGER (8) and other types:
// INVALID_REQUEST for that resource. configuration_keys narrows the list (unknown keys are left
// out, as Kafka does); config_type and documentation v3+. A resource without error has a null
// error message. Sensitive values are never returned.
public sealed class DescribeConfigsApi(TopicAdmin admin, IOptions<GatewayOptions> options) : ApiHandler<DescribeConfigsRequest>
{
    public const sbyte TopicResource = 2;
    public const sbyte BrokerResource = 4;
    public const sbyte GroupResource = 32;

    public override ApiKey Key => ApiKey.DescribeConfigs;
    public override short MinVersion => 0;
    public override short MaxVersion => Math.Min((short)4, DescribeConfigsResponse.HighestSupportedVersion);

    protected override Task<IKafkaResponse?> HandleAsync(DescribeConfigsRequest request, RequestContext context, CancellationToken cancellationToken)
        => Task.FromResult<IKafkaResponse?>(Build(admin.Watcher.Current, options.Value, request, context.ApiVersion));

    public static DescribeConfigsResponse Build(ClusterMetadata metadata, GatewayOptions self, DescribeConfigsRequest request, short version)
    {
        var response = new DescribeConfigsResponse();
        var snapshot = metadata.Snapshot;
        foreach (var resource in request.Resources)
        {
            var result = new DescribeConfigsResponse.DescribeConfigsResult
            {
                ResourceType = resource.ResourceType, ResourceName = resource.ResourceName, ErrorMessage = null,
            };
            response.Results.Add(result);
            // Kafka: a null or empty key list means every config.
            var keys = resource.ConfigurationKeys is null || resource.ConfigurationKeys.Count == 0
                ? null : new HashSet<string>(resource.ConfigurationKeys, StringComparer.Ordinal);
            switch (resource.ResourceType)
            {
                case TopicResource:
                    if (!TopicNames.IsValid(resource.ResourceName))
                    {
                        result.ErrorCode = ErrorCodes.InvalidTopicException;
                        result.ErrorMessage = $"Topic name '{resource.ResourceName}' is illegal.";
                        continue;
                    }
                    if (!metadata.TopicsByName.TryGetValue(resource.ResourceName, out var topic))
                    {
                        result.ErrorCode = ErrorCodes.UnknownTopicOrPartition;
                        continue;
                    }
                    foreach (var def in ConfigCatalog.Topic.Values.OrderBy(d => d.Name, StringComparer.Ordinal))
                    {
                        if (keys is not null && !keys.Contains(def.Name)) continue;
                        var synonyms = new List<Synonym>();
                        if (topic.Configs.TryGetValue(def.Name, out var own)) synonyms.Add(new(def.Name, own, ConfigSource.DynamicTopicConfig));
                        if (ConfigCatalog.TopicBrokerSynonyms.TryGetValue(def.Name, out var brokerName)) BrokerChain(snapshot, brokerName, synonyms);
                        result.Configs.Add(Entry(def, synonyms, def.DefaultValue, readOnly: false, request, version));
                    }
                    break;
                case BrokerResource:
                    var gateways = GatewayMapping.Gateways(metadata, self);
                    if (resource.ResourceName.Length == 0)
                    {
                        // The cluster-wide default resource: only what AlterConfigs set there.
                        foreach (var name in snapshot.DynamicBrokerConfigs.Order(StringComparer.Ordinal))
                        {
                            if (keys is not null && !keys.Contains(name)) continue;
                            if (!ConfigCatalog.Broker.TryGetValue(name, out var def) || !snapshot.BrokerConfigs.TryGetValue(name, out var value)) continue;
                            result.Configs.Add(Entry(def, [new(name, value, ConfigSource.DynamicDefaultBrokerConfig)], def.DefaultValue, def.ReadOnly, request, version));
                        }
                        break;
                    }
                    if (!int.TryParse(resource.ResourceName, NumberStyles.Integer, CultureInfo.InvariantCulture, out var nodeId))
                    {
                        result.ErrorCode = ErrorCodes.InvalidRequest;
                        result.ErrorMessage = $"Broker id must be an integer, but it is: {resource.ResourceName}";
                        continue;
                    }
                    // The ids clients see are gateways; a Broker.Service id is accepted too, since
                    // per-broker configs are recorded by broker id and that broker applies them.
                    if (!gateways.Any(g => g.NodeId == nodeId) && !metadata.BrokersById.ContainsKey(nodeId))
                    {
                        result.ErrorCode = ErrorCodes.InvalidRequest;
                        result.ErrorMessage = $"Unexpected broker id, expected one of [{string.Join(", ", gateways.Select(g => g.NodeId))}] or empty string, but received {resource.ResourceName}";
                        continue;
                    }
                    var perBroker = snapshot.PerBrokerConfigs.FirstOrDefault(b => b.BrokerId == nodeId)?.Configs;
                    foreach (var def in ConfigCatalog.Broker.Values.OrderBy(d => d.Name, StringComparer.Ordinal))
                    {
                        if (keys is not null && !keys.Contains(def.Name)) continue;
                        var synonyms = new List<Synonym>();
                        if (perBroker is not null && perBroker.TryGetValue(def.Name, out var own)) synonyms.Add(new(def.Name, own, ConfigSource.DynamicBrokerConfig));
                        BrokerChain(snapshot, def.Name, synonyms);
                        result.Configs.Add(Entry(def, synonyms, null, def.ReadOnly, request, version));
                    }
                    break;
                case GroupResource:
                    if (resource.ResourceName.Length == 0)
                    {
                        result.ErrorCode = ErrorCodes.InvalidRequest;
                        result.ErrorMessage = "Group name must not be empty";
                        continue;
                    }
                    var groupConfigs = snapshot.GroupConfigs.FirstOrDefault(g => g.Name == resource.ResourceName)?.Configs;
                    foreach (var def in ConfigCatalog.Group.Values.OrderBy(d => d.Name, StringComparer.Ordinal))
                    {
                        if (keys is not null && !keys.Contains(def.Name)) continue;
                        var value = GroupConfigValues.Effective(groupConfigs, snapshot.BrokerConfigs, def.Name).ToString(CultureInfo.InvariantCulture);
                        var source = groupConfigs is not null && groupConfigs.ContainsKey(def.Name) ? ConfigSource.GroupConfig : ConfigSource.DefaultConfig;
                        result.Configs.Add(Entry(def, [new(def.Name, value, source)], value, readOnly: false, request, version));
                    }
                    break;
                default:
                    result.ErrorCode = ErrorCodes.InvalidRequest;
                    result.ErrorMessage = $"Unsupported resource type: {resource.ResourceType}";
                    break;
            }
        }
        return response;
    }

    private readonly record struct Synonym(string Name, string? Value, ConfigSource Source);

    /// <summary>
    /// A broker config's values below the resource's own, in Kafka's precedence order: dynamic
    /// cluster default, static, default (a default of null is not a synonym, as in Kafka).
    /// </summary>
    private static void BrokerChain(StreamPlatform.Protos.Grpc.MetadataSnapshot snapshot, string name, List<Synonym> synonyms)
    {
        if (snapshot.DynamicBrokerConfigs.Contains(name) && snapshot.BrokerConfigs.TryGetValue(name, out var dynamicValue))
            synonyms.Add(new(name, dynamicValue, ConfigSource.DynamicDefaultBrokerConfig));
        // A value in force that is not dynamic is static (also in metadata from a controller that
        // did not publish static values apart).
        if (snapshot.StaticBrokerConfigs.TryGetValue(name, out var staticValue)
            || (!snapshot.DynamicBrokerConfigs.Contains(name) && snapshot.BrokerConfigs.TryGetValue(name, out staticValue)))
            synonyms.Add(new(name, staticValue, ConfigSource.StaticBrokerConfig));
        if (ConfigCatalog.Broker.TryGetValue(name, out var def) && def.DefaultValue is not null)
            synonyms.Add(new(name, def.DefaultValue, ConfigSource.DefaultConfig));
    }

    /// <summary>
    /// One config. <paramref name="synonyms"/> is ordered by precedence: the first one is in force
    /// and its source is the config's; none means DEFAULT_CONFIG with <paramref name="fallback"/>.
    /// </summary>
    private static DescribeConfigsResponse.DescribeConfigsResourceResult Entry(ConfigDefinition def,
        List<Synonym> synonyms, string? fallback, bool readOnly, DescribeConfigsRequest request, short version)
    {
        var (value, source) = synonyms.Count > 0 ? (synonyms[0].Value, synonyms[0].Source) : (fallback, ConfigSource.DefaultConfig);
        var entry = new DescribeConfigsResponse.DescribeConfigsResourceResult
        {
            Name = def.Name,
            Value = def.Sensitive ? null : value,
            ReadOnly = readOnly,
            IsDefault = source == ConfigSource.DefaultConfig,
            ConfigSource = (sbyte)source,
            IsSensitive = def.Sensitive,
            ConfigType = KafkaConfigType(def.Type),
            Documentation = request.IncludeDocumentation ? def.Documentation : null,
        };
        if (request.IncludeSynonyms && version >= 1)
        {
            foreach (var s in synonyms)
                entry.Synonyms.Add(new DescribeConfigsResponse.DescribeConfigsSynonym
                {
                    Name = s.Name, Value = def.Sensitive ? null : s.Value, Source = (sbyte)s.Source,
                });
        }
        return entry;
    }

    /// <summary>Kafka's DescribeConfigs config_type codes (0 is UNKNOWN, 4 SHORT is unused here).</summary>
    public static sbyte KafkaConfigType(ConfigType type) => type switch
    {
        ConfigType.Boolean => 1,
        ConfigType.String => 2,
        ConfigType.Int => 3,
        ConfigType.Long => 5,
        ConfigType.Double => 6,
        ConfigType.List => 7,
        ConfigType.Class => 8,
        ConfigType.Password => 9,
        _ => 0,
    };
}
