namespace StreamPlatform.Controller.Metadata;

/// <summary>Kafka's topic name rules.</summary>
public static class TopicNames
{
    /// <summary>Kafka's limit: the name plus a partition suffix must fit a 255-byte file name.</summary>
    public const int MaxLengthChars = 249;

    /// <summary>Null when legal, else why not (INVALID_TOPIC_EXCEPTION).</summary>
    public static string? Validate(string name)
    {
        if (string.IsNullOrEmpty(name)) return "Topic name is empty.";
        if (name is "." or "..") return $"Topic name cannot be \"{name}\".";
        if (name.Length > MaxLengthChars) return $"Topic name is longer than {MaxLengthChars} characters.";
        foreach (var c in name)
        {
            var legal = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '.' or '_' or '-';
            if (!legal) return $"Topic name \"{name}\" contains characters other than ASCII alphanumerics, '.', '_' and '-'.";
        }
        return null;
    }

    /// <summary>'.' and '_' collide in metric names, so Kafka refuses topics that differ only there.</summary>
    public static string CollisionKey(string name) => name.Replace('.', '_');
}
