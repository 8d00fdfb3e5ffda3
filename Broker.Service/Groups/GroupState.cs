namespace StreamPlatform.Broker.Groups;

/// <summary>The classic protocol's group states, as Kafka names them (ListGroups/DescribeGroups show these names).</summary>
public enum GroupState
{
    /// <summary>No members; offsets may still be committed (simple consumers) and kept until they expire.</summary>
    Empty,
    /// <summary>Waiting for members to (re)join; heartbeats answer REBALANCE_IN_PROGRESS.</summary>
    PreparingRebalance,
    /// <summary>Joined; waiting for the leader's assignment in SyncGroup.</summary>
    CompletingRebalance,
    /// <summary>Assignment distributed; members heartbeat.</summary>
    Stable,
    /// <summary>Deleted, or its partition moved away; every request sees it gone.</summary>
    Dead,
}

public static class GroupStates
{
    /// <summary>
    /// Every legal transition (target -> allowed sources), Kafka's table:
    /// Empty from PreparingRebalance (the rebalance ended with nobody left);
    /// PreparingRebalance from Empty, Stable, CompletingRebalance;
    /// CompletingRebalance from PreparingRebalance;
    /// Stable from CompletingRebalance;
    /// Dead from every state (Dead to Dead included, so unloading twice is harmless).
    /// </summary>
    public static bool IsLegal(GroupState from, GroupState to) => to switch
    {
        GroupState.Empty => from == GroupState.PreparingRebalance,
        GroupState.PreparingRebalance => from is GroupState.Empty or GroupState.Stable or GroupState.CompletingRebalance,
        GroupState.CompletingRebalance => from == GroupState.PreparingRebalance,
        GroupState.Stable => from == GroupState.CompletingRebalance,
        GroupState.Dead => true,
        _ => false,
    };

    public static string Name(GroupState state) => state.ToString();

    public static bool TryParse(string name, out GroupState state)
        => Enum.TryParse(name, ignoreCase: true, out state) && Enum.IsDefined(state);
}

/// <summary>An illegal transition was attempted: a coordinator bug, never a client's fault.</summary>
public sealed class IllegalGroupTransitionException(string groupId, GroupState from, GroupState to)
    : InvalidOperationException($"Group {groupId}: illegal transition {from} -> {to}.");
