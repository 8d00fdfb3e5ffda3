using System.Globalization;

namespace StreamPlatform.Protos.Configs;

/// <summary>
/// Effective values and cross-checks of group configs (KIP-848 GROUP config resources), shared by
/// the controller (AlterConfigs), the gateway (DescribeConfigs) and the group coordinator.
/// </summary>
public static class GroupConfigValues
{
    // Share groups are not served, so their bounds are not broker configs here: Kafka's defaults
    // of group.share.{min,max}.session.timeout.ms, ...heartbeat.interval.ms, ...record.lock.duration.ms.
    private static readonly Dictionary<string, (int Min, string MinName, int Max, string MaxName)> ShareBounds = new(StringComparer.Ordinal)
    {
        ["share.session.timeout.ms"] = (45_000, "group.share.min.session.timeout.ms", 60_000, "group.share.max.session.timeout.ms"),
        ["share.heartbeat.interval.ms"] = (5_000, "group.share.min.heartbeat.interval.ms", 15_000, "group.share.max.heartbeat.interval.ms"),
        ["share.record.lock.duration.ms"] = (15_000, "group.share.min.record.lock.duration.ms", 60_000, "group.share.max.record.lock.duration.ms"),
    };

    /// <summary>The group's value of <paramref name="name"/>: set on the group, else the broker default, else the catalog default.</summary>
    public static int Effective(IReadOnlyDictionary<string, string>? groupConfigs, IReadOnlyDictionary<string, string> brokerConfigs, string name)
    {
        if (groupConfigs is not null && groupConfigs.TryGetValue(name, out var own) && TryInt(own, out var ownValue)) return ownValue;
        return DefaultFor(brokerConfigs, name);
    }

    /// <summary>The value a group without its own setting gets: the broker's group.* config.</summary>
    public static int DefaultFor(IReadOnlyDictionary<string, string> brokerConfigs, string name)
    {
        var broker = ConfigCatalog.GroupBrokerDefaults[name];
        return TryInt(ConfigCatalog.EffectiveBrokerValue(brokerConfigs, broker), out var v) ? v : int.Parse(ConfigCatalog.Group[name].DefaultValue!, CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Null when the group's explicit configs (each already valid on its own) fit together and
    /// within the broker's bounds, else the reason (INVALID_CONFIG), worded as Kafka's GroupConfig.
    /// As Kafka's GroupConfig.validate, a key the group does not set counts with the catalog
    /// (Kafka) default, not the broker's configured value.
    /// </summary>
    public static string? Validate(IReadOnlyDictionary<string, string> groupConfigs, IReadOnlyDictionary<string, string> brokerConfigs)
    {
        int Value(string name) => groupConfigs.TryGetValue(name, out var own) && TryInt(own, out var v) ? v
            : int.Parse(ConfigCatalog.Group[name].DefaultValue!, CultureInfo.InvariantCulture);
        int Broker(string name) => TryInt(ConfigCatalog.EffectiveBrokerValue(brokerConfigs, name), out var v) ? v : 0;
        string? Within(string name, int min, string minName, int max, string maxName)
        {
            var v = Value(name);
            if (v < min) return $"{name} must be greater than or equal to {minName}";
            if (v > max) return $"{name} must be less than or equal to {maxName}";
            return null;
        }
        return Within("consumer.heartbeat.interval.ms", Broker("group.consumer.min.heartbeat.interval.ms"), "group.consumer.min.heartbeat.interval.ms",
                   Broker("group.consumer.max.heartbeat.interval.ms"), "group.consumer.max.heartbeat.interval.ms")
            ?? Within("consumer.session.timeout.ms", Broker("group.consumer.min.session.timeout.ms"), "group.consumer.min.session.timeout.ms",
                   Broker("group.consumer.max.session.timeout.ms"), "group.consumer.max.session.timeout.ms")
            ?? ShareBounds.Select(b => Within(b.Key, b.Value.Min, b.Value.MinName, b.Value.Max, b.Value.MaxName)).FirstOrDefault(e => e is not null)
            ?? (Value("consumer.session.timeout.ms") <= Value("consumer.heartbeat.interval.ms") ? "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms" : null)
            ?? (Value("share.session.timeout.ms") <= Value("share.heartbeat.interval.ms") ? "share.session.timeout.ms must be greater than share.heartbeat.interval.ms" : null);
    }

    private static bool TryInt(string? value, out int result) => int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out result);
}
