namespace StreamPlatform.Broker.Groups;

/// <summary>
/// KIP-848's server-side assignors. Input: each member's subscribed topics, the topics' ids and
/// partition counts, the previous target; output: the new target per member.
/// </summary>
public static class ServerAssignors
{
    public const string Uniform = "uniform";
    public const string Range = "range";
    public static readonly IReadOnlyList<string> Names = [Uniform, Range];

    public sealed record TopicMeta(string Name, Guid Id, int Partitions);

    public static Dictionary<string, TopicAssignment> Assign(string assignor, IReadOnlyDictionary<string, List<string>> subscriptions,
        IReadOnlyDictionary<string, TopicMeta> topics, IReadOnlyDictionary<string, TopicAssignment> previous)
        => assignor == Range ? AssignRange(subscriptions, topics) : AssignUniform(subscriptions, topics, previous);

    /// <summary>
    /// Range: per topic, the subscribed members in member id order get contiguous ranges, the
    /// first (partitions % members) one partition more, as the classic range assignor does.
    /// </summary>
    public static Dictionary<string, TopicAssignment> AssignRange(IReadOnlyDictionary<string, List<string>> subscriptions, IReadOnlyDictionary<string, TopicMeta> topics)
    {
        var result = subscriptions.Keys.ToDictionary(m => m, _ => new TopicAssignment(), StringComparer.Ordinal);
        foreach (var topic in topics.Values.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            var members = subscriptions.Where(kv => kv.Value.Contains(topic.Name)).Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
            if (members.Count == 0) continue;
            int per = topic.Partitions / members.Count, extra = topic.Partitions % members.Count, next = 0;
            for (var i = 0; i < members.Count; i++)
            {
                var n = per + (i < extra ? 1 : 0);
                for (var p = next; p < next + n; p++) result[members[i]].Add(topic.Id, p);
                next += n;
            }
        }
        return result;
    }

    /// <summary>
    /// Uniform: every member ends with the same number of partitions (±1) among the topics it
    /// subscribes to, and partitions stay where they were whenever that balance allows (sticky),
    /// so a joining member takes only what it must from the others.
    /// </summary>
    public static Dictionary<string, TopicAssignment> AssignUniform(IReadOnlyDictionary<string, List<string>> subscriptions,
        IReadOnlyDictionary<string, TopicMeta> topics, IReadOnlyDictionary<string, TopicAssignment> previous)
    {
        var result = subscriptions.Keys.ToDictionary(m => m, _ => new TopicAssignment(), StringComparer.Ordinal);
        if (result.Count == 0) return result;
        var all = topics.Values.OrderBy(t => t.Name, StringComparer.Ordinal)
            .SelectMany(t => Enumerable.Range(0, t.Partitions).Select(p => (Topic: t, Partition: p))).ToList();
        var eligible = all.Where(x => subscriptions.Values.Any(s => s.Contains(x.Topic.Name))).ToList();
        var members = result.Keys.Order(StringComparer.Ordinal).ToList();
        // Most a member may hold: an even share of the partitions, rounded up.
        var cap = (eligible.Count + members.Count - 1) / members.Count;
        var count = members.ToDictionary(m => m, _ => 0, StringComparer.Ordinal);
        var unassigned = new List<(TopicMeta Topic, int Partition)>();
        // Keep phase: a partition stays with its previous owner if still subscribed and under the cap.
        var previousOwner = new Dictionary<(Guid, int), string>();
        foreach (var (member, assignment) in previous)
            foreach (var tp in assignment.All) previousOwner[tp] = member;
        foreach (var x in eligible)
        {
            if (previousOwner.TryGetValue((x.Topic.Id, x.Partition), out var owner) && result.ContainsKey(owner)
                && subscriptions[owner].Contains(x.Topic.Name) && count[owner] < cap)
            {
                result[owner].Add(x.Topic.Id, x.Partition);
                count[owner]++;
            }
            else unassigned.Add(x);
        }
        // With an exact cap some members may now hold cap while others must stay at cap-1: move
        // the surplus back when more members are at cap than the remainder allows.
        var floor = eligible.Count / members.Count;
        var atCapAllowed = eligible.Count - floor * members.Count;
        if (cap > floor)
        {
            var atCap = members.Where(m => count[m] == cap).ToList();
            foreach (var m in atCap.Skip(atCapAllowed))
            {
                var last = result[m].All.Last();
                result[m][last.Topic].Remove(last.Partition);
                if (result[m][last.Topic].Count == 0) result[m].Remove(last.Topic);
                count[m]--;
                unassigned.Add((topics.Values.First(t => t.Id == last.Topic), last.Partition));
            }
        }
        // Assign phase: each remaining partition to the least loaded subscribed member.
        foreach (var x in unassigned)
        {
            var target = members.Where(m => subscriptions[m].Contains(x.Topic.Name))
                .OrderBy(m => count[m]).ThenBy(m => m, StringComparer.Ordinal).FirstOrDefault();
            if (target is null) continue;
            result[target].Add(x.Topic.Id, x.Partition);
            count[target]++;
        }
        return result;
    }
}
