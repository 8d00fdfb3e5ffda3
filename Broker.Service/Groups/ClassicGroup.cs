using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Broker.Groups;

/// <summary>One member of a classic group.</summary>
public sealed class GroupMember
{
    public required string MemberId { get; set; }
    public string? GroupInstanceId { get; init; }
    public string ClientId { get; set; } = "";
    public string ClientHost { get; set; } = "";
    public int RebalanceTimeoutMs { get; set; }
    public int SessionTimeoutMs { get; set; }
    public string ProtocolType { get; set; } = "";
    /// <summary>The protocols the member offered, in its order of preference.</summary>
    public List<(string Name, byte[] Metadata)> Protocols { get; set; } = [];
    public byte[] Assignment { get; set; } = [];

    /// <summary>Its JoinGroup waiting for the rebalance to complete.</summary>
    public TaskCompletionSource<JoinGroupResponse>? AwaitingJoin { get; set; }
    /// <summary>Its SyncGroup waiting for the leader's assignment.</summary>
    public TaskCompletionSource<SyncGroupResponse>? AwaitingSync { get; set; }
    /// <summary>The JoinGroup version, for v9's skip_assignment flag.</summary>
    public short JoinVersion { get; set; }

    /// <summary>Session deadline; every heartbeat (and join, sync, commit) moves it.</summary>
    public ITimer? SessionTimer { get; set; }
    /// <summary>Bumps on every reschedule, so a stale timer callback does nothing.</summary>
    public long SessionEpoch { get; set; }

    public bool IsStatic => GroupInstanceId is not null;

    public byte[]? MetadataFor(string protocol)
    {
        foreach (var (name, metadata) in Protocols) if (name == protocol) return metadata;
        return null;
    }

    public bool SameProtocols(List<(string Name, byte[] Metadata)> other)
    {
        if (other.Count != Protocols.Count) return false;
        for (var i = 0; i < other.Count; i++)
            if (other[i].Name != Protocols[i].Name || !other[i].Metadata.AsSpan().SequenceEqual(Protocols[i].Metadata)) return false;
        return true;
    }
}

/// <summary>
/// A classic group: its state machine, members and committed offsets. Not thread-safe: the
/// coordinator holds its partition's lock around every use.
/// </summary>
public sealed class ClassicGroup(string groupId, long createdMs)
{
    public string GroupId { get; } = groupId;
    public GroupState State { get; private set; } = GroupState.Empty;
    public long CurrentStateTimestampMs { get; private set; } = createdMs;
    public int GenerationId { get; set; }
    public string? ProtocolType { get; set; }
    public string? ProtocolName { get; set; }
    public string? LeaderId { get; set; }
    public Dictionary<string, GroupMember> Members { get; } = new(StringComparer.Ordinal);
    /// <summary>Member ids handed out with MEMBER_ID_REQUIRED and not yet used in a JoinGroup (KIP-394).</summary>
    public Dictionary<string, ITimer> PendingMembers { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, string> StaticMembers { get; } = new(StringComparer.Ordinal);
    public Dictionary<(string Topic, int Partition), CommittedOffset> Offsets { get; } = [];

    /// <summary>The running rebalance's timer (initial delay, join or sync timeout).</summary>
    public ITimer? PhaseTimer { get; set; }
    public long PhaseEpoch { get; set; }
    /// <summary>Still inside group.initial.rebalance.delay.ms; how much of the rebalance timeout is left to extend it by.</summary>
    public bool InInitialDelay { get; set; }
    public int InitialDelayRemainingMs { get; set; }
    public bool NewMemberJoinedDuringDelay { get; set; }

    public bool Is(GroupState state) => State == state;

    /// <summary>
    /// Set while the group runs the consumer protocol (KIP-848). The classic part then stays
    /// Empty and only holds the committed offsets; the two protocols never share members.
    /// </summary>
    public ConsumerGroupState? Consumer { get; set; }

    /// <summary>No members of either protocol: may be deleted, and its offsets expire.</summary>
    public bool IsEmptyOfMembers => State == GroupState.Empty && (Consumer is null || Consumer.Members.Count == 0);

    /// <summary>Moves to <paramref name="to"/>; an illegal transition throws (a coordinator bug must not corrupt state).</summary>
    public void TransitionTo(GroupState to, long nowMs)
    {
        if (!GroupStates.IsLegal(State, to)) throw new IllegalGroupTransitionException(GroupId, State, to);
        State = to;
        CurrentStateTimestampMs = nowMs;
    }

    /// <summary>Restores a loaded state without the transition check (loading is not a transition).</summary>
    internal void RestoreState(GroupState state, long timestampMs)
    {
        State = state;
        CurrentStateTimestampMs = timestampMs;
    }

    public bool HasMember(string memberId) => Members.ContainsKey(memberId);

    /// <summary>Kafka's hasAllMembersJoined: every member is waiting in JoinGroup and no KIP-394 member id is outstanding (true for no members).</summary>
    public bool AllMembersJoined => Members.Values.All(m => m.AwaitingJoin is not null) && PendingMembers.Count == 0;

    public int MaxRebalanceTimeoutMs => Members.Count == 0 ? 0 : Members.Values.Max(m => m.RebalanceTimeoutMs);

    /// <summary>Protocols every member supports.</summary>
    public HashSet<string> CommonProtocols()
    {
        HashSet<string>? common = null;
        foreach (var m in Members.Values)
        {
            var names = m.Protocols.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
            if (common is null) common = names;
            else common.IntersectWith(names);
        }
        return common ?? [];
    }

    /// <summary>Would a member offering these protocols fit (same type, at least one protocol in common)?</summary>
    public bool SupportsProtocols(string protocolType, IEnumerable<string> protocols)
    {
        if (Members.Count == 0 && State == GroupState.Empty)
            return !string.IsNullOrEmpty(protocolType) && protocols.Any();
        if (ProtocolType != protocolType && Members.Count > 0) return false;
        var common = CommonProtocols();
        return protocols.Any(common.Contains);
    }

    /// <summary>Kafka's choice: each member votes for its most preferred protocol among those all support; most votes wins.</summary>
    public string SelectProtocol()
    {
        var common = CommonProtocols();
        var votes = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var m in Members.Values)
        {
            var choice = m.Protocols.First(p => common.Contains(p.Name)).Name;
            votes[choice] = votes.GetValueOrDefault(choice) + 1;
        }
        return votes.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).First().Key;
    }

    /// <summary>Topics a consumer-protocol group's members subscribe to (null when it cannot tell: other protocol types, unreadable metadata).</summary>
    public HashSet<string>? SubscribedTopics()
    {
        if (ProtocolType != "consumer" || ProtocolName is null) return null;
        var topics = new HashSet<string>(StringComparer.Ordinal);
        foreach (var m in Members.Values)
        {
            var metadata = m.MetadataFor(ProtocolName);
            if (metadata is null || metadata.Length < 2) return null;
            try
            {
                var version = (short)((metadata[0] << 8) | metadata[1]);
                if (version < 0) return null;
                var v = Math.Min(version, ConsumerProtocolSubscription.HighestSupportedVersion);
                var reader = new Protos.Kafka.KafkaReader(metadata.AsMemory(2));
                var subscription = new ConsumerProtocolSubscription();
                subscription.Read(ref reader, (short)v);
                topics.UnionWith(subscription.Topics);
            }
            catch (Protos.Kafka.KafkaProtocolException)
            {
                return null;
            }
        }
        return topics;
    }
}
