using System.Globalization;
using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Protos.Configs;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

// DescribeConfigs v0-v4 (up to the codec's highest), answered from the gateway's metadata, no
// remote call. Topics (resource type 2): every ConfigCatalog.Topic config with its effective
// value: set on the topic (DYNAMIC_TOPIC_CONFIG 1), else the cluster-wide broker synonym when set
// (DYNAMIC_DEFAULT_BROKER_CONFIG 3, e.g. log.retention.ms for retention.ms), else the default
// (DEFAULT_CONFIG 5); unknown topic: UNKNOWN_TOPIC_OR_PARTITION (3). Brokers (type 4, name = a
// gateway node id, or "" for the cluster default): ConfigCatalog.Broker with the snapshot's
// broker_configs (DYNAMIC_DEFAULT_BROKER_CONFIG) over the defaults; another name: INVALID_REQUEST.
// Other resource types: INVALID_REQUEST (42) for that resource. configuration_keys narrows the list
// (unknown keys are left out, as Kafka does); synonyms (v1+) when include_synonyms; config_type
// and documentation v3+. Sensitive values are never returned.
public sealed class DescribeConfigsApi(TopicAdmin admin, IOptions<GatewayOptions> options) : ApiHandler<DescribeConfigsRequest>
{
    public const sbyte TopicResource = 2;
    public const sbyte BrokerResource = 4;

    /// <summary>Topic config -> the broker config that supplies its cluster-wide default.</summary>
    private static readonly Dictionary<string, string> BrokerSynonyms = new(StringComparer.Ordinal)
    {
        ["max.message.bytes"] = "message.max.bytes",
        ["retention.ms"] = "log.retention.ms",
        ["segment.bytes"] = "log.segment.bytes",
    };

    public override ApiKey Key => ApiKey.DescribeConfigs;
    public override short MinVersion => 0;
    public override short MaxVersion => Math.Min((short)4, DescribeConfigsResponse.HighestSupportedVersion);

    protected override Task<IKafkaResponse?> HandleAsync(DescribeConfigsRequest request, RequestContext context, CancellationToken cancellationToken)
        => Task.FromResult<IKafkaResponse?>(Build(admin.Watcher.Current, options.Value, request, context.ApiVersion));

    public static DescribeConfigsResponse Build(ClusterMetadata metadata, GatewayOptions self, DescribeConfigsRequest request, short version)
    {
        var response = new DescribeConfigsResponse();
        var brokerConfigs = metadata.Snapshot.BrokerConfigs;
        foreach (var resource in request.Resources)
        {
            var result = new DescribeConfigsResponse.DescribeConfigsResult
            {
                ResourceType = resource.ResourceType, ResourceName = resource.ResourceName,
            };
            response.Results.Add(result);
            var keys = resource.ConfigurationKeys is null ? null : new HashSet<string>(resource.ConfigurationKeys, StringComparer.Ordinal);
            switch (resource.ResourceType)
            {
                case TopicResource:
                    if (!metadata.TopicsByName.TryGetValue(resource.ResourceName, out var topic))
                    {
                        result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                        result.ErrorMessage = $"Topic '{resource.ResourceName}' does not exist.";
                        continue;
                    }
                    foreach (var def in ConfigCatalog.Topic.Values.OrderBy(d => d.Name, StringComparer.Ordinal))
                    {
                        if (keys is not null && !keys.Contains(def.Name)) continue;
                        var synonyms = new List<(string Name, string? Value, ConfigSource Source)>();
                        if (topic.Configs.TryGetValue(def.Name, out var own)) synonyms.Add((def.Name, own, ConfigSource.DynamicTopicConfig));
                        if (BrokerSynonyms.TryGetValue(def.Name, out var brokerName) && brokerConfigs.TryGetValue(brokerName, out var clusterValue))
                            synonyms.Add((brokerName, clusterValue, ConfigSource.DynamicDefaultBrokerConfig));
                        synonyms.Add((def.Name, def.DefaultValue, ConfigSource.DefaultConfig));
                        result.Configs.Add(Entry(def, synonyms, request, version));
                    }
                    break;
                case BrokerResource:
                    var gateways = GatewayMapping.Gateways(metadata, self);
                    if (resource.ResourceName.Length > 0 &&
                        !(int.TryParse(resource.ResourceName, NumberStyles.Integer, CultureInfo.InvariantCulture, out var nodeId)
                          && gateways.Any(g => g.NodeId == nodeId)))
                    {
                        result.ErrorCode = (short)ErrorCode.InvalidRequest;
                        result.ErrorMessage = $"Unexpected broker id '{resource.ResourceName}': expected one of [{string.Join(", ", gateways.Select(g => g.NodeId))}] or an empty string.";
                        continue;
                    }
                    foreach (var def in ConfigCatalog.Broker.Values.OrderBy(d => d.Name, StringComparer.Ordinal))
                    {
                        if (keys is not null && !keys.Contains(def.Name)) continue;
                        var synonyms = new List<(string Name, string? Value, ConfigSource Source)>();
                        if (brokerConfigs.TryGetValue(def.Name, out var set)) synonyms.Add((def.Name, set, ConfigSource.DynamicDefaultBrokerConfig));
                        synonyms.Add((def.Name, def.DefaultValue, ConfigSource.DefaultConfig));
                        result.Configs.Add(Entry(def, synonyms, request, version));
                    }
                    break;
                default:
                    result.ErrorCode = (short)ErrorCode.InvalidRequest;
                    result.ErrorMessage = $"Unsupported resource type {resource.ResourceType}.";
                    break;
            }
        }
        return response;
    }

    /// <summary>One config; <paramref name="synonyms"/> is ordered by precedence, the first one is effective.</summary>
    private static DescribeConfigsResponse.DescribeConfigsResourceResult Entry(ConfigDefinition def,
        List<(string Name, string? Value, ConfigSource Source)> synonyms, DescribeConfigsRequest request, short version)
    {
        var effective = synonyms[0];
        var entry = new DescribeConfigsResponse.DescribeConfigsResourceResult
        {
            Name = def.Name,
            Value = def.Sensitive ? null : effective.Value,
            ReadOnly = def.ReadOnly,
            IsDefault = effective.Source == ConfigSource.DefaultConfig,
            ConfigSource = (sbyte)effective.Source,
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
