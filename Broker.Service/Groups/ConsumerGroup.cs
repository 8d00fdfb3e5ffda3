namespace StreamPlatform.Broker.Groups;

/// <summary>A topic's partitions, by topic id (KIP-848 assignments name topics by id).</summary>
public sealed class TopicAssignment : Dictionary<Guid, SortedSet<int>>
{
    public TopicAssignment() { }

    public TopicAssignment(IEnumerable<KeyValuePair<Guid, SortedSet<int>>> items)
    {
        foreach (var (k, v) in items) if (v.Count > 0) this[k] = new SortedSet<int>(v);
    }

    public IEnumerable<(Guid Topic, int Partition)> All => this.SelectMany(kv => kv.Value.Select(p => (kv.Key, p)));

    public int PartitionCount => Values.Sum(v => v.Count);

    public void Add(Guid topic, int partition)
    {
        if (!TryGetValue(topic, out var set)) this[topic] = set = [];
        set.Add(partition);
    }

    public bool Contains(Guid topic, int partition) => TryGetValue(topic, out var set) && set.Contains(partition);

    public static TopicAssignment Of(IEnumerable<(Guid Topic, int Partition)> items)
    {
        var a = new TopicAssignment();
        foreach (var (t, p) in items) a.Add(t, p);
        return a;
    }

    public bool SameAs(TopicAssignment other) => All.ToHashSet().SetEquals(other.All);
}

/// <summary>Where a member is in its reconciliation towards the group's target assignment (KIP-848).</summary>
public enum ConsumerMemberState
{
    /// <summary>At the assignment epoch with its whole target.</summary>
    Stable,
    /// <summary>Must give up partitions first; keeps its epoch until it reports them revoked.</summary>
    UnrevokedPartitions,
    /// <summary>At the assignment epoch, but some target partitions are still owned by others.</summary>
    UnreleasedPartitions,
}

/// <summary>One member of a KIP-848 consumer group.</summary>
public sealed class ConsumerMember
{
    public required string MemberId { get; init; }
    public string? InstanceId { get; set; }
    public string? RackId { get; set; }
    public string ClientId { get; set; } = "";
    public string ClientHost { get; set; } = "";
    public int RebalanceTimeoutMs { get; set; }
    public List<string> SubscribedTopics { get; set; } = [];
    public string? ServerAssignor { get; set; }
    public int MemberEpoch { get; set; }
    public int PreviousMemberEpoch { get; set; } = -1;
    public TopicAssignment Assigned { get; set; } = [];
    public TopicAssignment PendingRevocation { get; set; } = [];
    public ConsumerMemberState State { get; set; }
    /// <summary>The assignment changed since the last heartbeat answer: the next one carries it.</summary>
    public bool AssignmentChanged { get; set; } = true;
    public ITimer? SessionTimer { get; set; }
    public ITimer? RevocationTimer { get; set; }
    public long TimerEpoch { get; set; }
}

/// <summary>
/// The KIP-848 state of a group (group.protocol=consumer): the server assigns. The group epoch
/// moves on every change of members, subscriptions or subscribed topics' partition counts; the
/// target assignment is recomputed at once for it (so the assignment epoch equals the group
/// epoch); members then reconcile one heartbeat at a time.
/// </summary>
public sealed class ConsumerGroupState
{
    public int GroupEpoch { get; set; }
    public int AssignmentEpoch { get; set; }
    public string AssignorName { get; set; } = ServerAssignors.Uniform;
    public Dictionary<string, ConsumerMember> Members { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, TopicAssignment> Target { get; set; } = new(StringComparer.Ordinal);
    /// <summary>Partition counts of the subscribed topics the target was computed from.</summary>
    public Dictionary<string, int> SubscriptionMetadata { get; set; } = new(StringComparer.Ordinal);
    /// <summary>
    /// The group's records in __consumer_offsets as last written, by (record type, member id; ""
    /// for group-level ones): a write skips unchanged records and tombstones those no longer due
    /// (removed members, and legacy records after a load).
    /// </summary>
    public Dictionary<(short Type, string MemberId), byte[]> Written { get; set; } = [];

    /// <summary>Kafka's consumer group states: Empty, Assigning, Reconciling, Stable.</summary>
    public string StateName =>
        Members.Count == 0 ? "Empty"
        : AssignmentEpoch < GroupEpoch ? "Assigning"
        : Members.Values.Any(m => m.MemberEpoch != AssignmentEpoch || m.State != ConsumerMemberState.Stable) ? "Reconciling"
        : "Stable";

    /// <summary>Is this partition held (assigned or being revoked) by a member other than <paramref name="except"/>?</summary>
    public bool OwnedByOther(string except, Guid topic, int partition)
        => Members.Values.Any(m => m.MemberId != except && (m.Assigned.Contains(topic, partition) || m.PendingRevocation.Contains(topic, partition)));
}
