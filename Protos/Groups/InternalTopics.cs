namespace StreamPlatform.Protos.Groups;

/// <summary>
/// Kafka's internal topics (Topic.isInternal): the topics its coordinators own. Clients may not
/// produce to them (INVALID_TOPIC_EXCEPTION, as Kafka's ReplicaManager answers; the coordinators
/// append to their own logs directly) nor delete them (refused by the controller), and Metadata
/// reports them with is_internal = true. The rule is by name, as Kafka's, so a topic of such a
/// name is internal however it was created.
/// </summary>
public static class InternalTopics
{
    public const string TransactionState = "__transaction_state";
    public const string ShareGroupState = "__share_group_state";

    private static readonly HashSet<string> Names = [OffsetsTopic.Name, TransactionState, ShareGroupState];

    public static bool IsInternal(string topic) => Names.Contains(topic);
}
