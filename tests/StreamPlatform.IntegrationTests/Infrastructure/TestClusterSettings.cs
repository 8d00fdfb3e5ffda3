namespace StreamPlatform.IntegrationTests.Infrastructure;

/// <summary>
/// Broker settings every test cluster runs with, whether started through the AppHost (Aspire) or
/// the process harness: sized for a 2-core machine and for tests that should not idle.
/// </summary>
public static class TestClusterSettings
{
    public static IReadOnlyDictionary<string, string> BrokerConfigs { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        // Consumer groups: 6 offsets partitions instead of Kafka's 50 (fewer logs to open), and a
        // short first-rebalance delay instead of 3 s.
        ["offsets.topic.num.partitions"] = "6",
        ["group.initial.rebalance.delay.ms"] = "300",
        ["group.consumer.heartbeat.interval.ms"] = "500",
        // Transactions likewise: 6 __transaction_state partitions instead of 50, and transactions
        // open past their transaction.timeout.ms looked for every second instead of every 10 s.
        ["transaction.state.log.num.partitions"] = "6",
        ["transaction.abort.timed.out.transaction.cleanup.interval.ms"] = "1000",
    };
}
