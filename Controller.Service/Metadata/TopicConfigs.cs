using StreamPlatform.Protos.Configs;

namespace StreamPlatform.Controller.Metadata;

/// <summary>Effective topic config values: the topic's own value, else its broker-level synonym, else the catalog default.</summary>
public static class TopicConfigs
{
    public static SortedDictionary<string, string> Effective(IReadOnlyDictionary<string, string> topicConfigs, IReadOnlyDictionary<string, string> brokerConfigs)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var def in ConfigCatalog.Topic.Values)
        {
            if (topicConfigs.TryGetValue(def.Name, out var own)) result[def.Name] = own;
            else if (ConfigCatalog.TopicBrokerSynonyms.TryGetValue(def.Name, out var synonym) && brokerConfigs.TryGetValue(synonym, out var fromBroker)) result[def.Name] = fromBroker;
            else if (def.DefaultValue is not null) result[def.Name] = def.DefaultValue;
        }
        return result;
    }
}
