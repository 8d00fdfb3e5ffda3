using System.Collections.Immutable;
using StreamPlatform.Protos.Configs;

namespace StreamPlatform.Controller.Metadata;

/// <summary>Effective topic config values: the topic's own value, else its broker-level synonym, else the catalog default.</summary>
public static class TopicConfigs
{
    /// <summary>Topic config -> the cluster-wide broker config that supplies its default (Kafka's synonyms).</summary>
    public static readonly ImmutableDictionary<string, string> BrokerSynonyms = new Dictionary<string, string>
    {
        ["retention.ms"] = "log.retention.ms",
        ["segment.bytes"] = "log.segment.bytes",
        ["max.message.bytes"] = "message.max.bytes",
    }.ToImmutableDictionary(StringComparer.Ordinal);

    public static SortedDictionary<string, string> Effective(IReadOnlyDictionary<string, string> topicConfigs, IReadOnlyDictionary<string, string> brokerConfigs)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var def in ConfigCatalog.Topic.Values)
        {
            if (topicConfigs.TryGetValue(def.Name, out var own)) result[def.Name] = own;
            else if (BrokerSynonyms.TryGetValue(def.Name, out var synonym) && brokerConfigs.TryGetValue(synonym, out var fromBroker)) result[def.Name] = fromBroker;
            else if (def.DefaultValue is not null) result[def.Name] = def.DefaultValue;
        }
        return result;
    }
}
