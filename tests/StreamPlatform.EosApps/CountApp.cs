using System.Globalization;
using Streamiz.Kafka.Net;
using Streamiz.Kafka.Net.SerDes;
using Streamiz.Kafka.Net.Table;

namespace StreamPlatform.EosApps;

/// <summary>
/// What a new user writes from Streamiz.Kafka.Net's README: stream, group by key, count into an
/// in-memory store (restored from its changelog topic on restart), write the counts (decimal text) to a topic,
/// with processing guarantee exactly-once (a transactional producer per task, offsets committed
/// in the transaction, read_committed consumers). Runs until killed. Prints "STATE old->new".
/// </summary>
public static class CountApp
{
    public static async Task<int> RunAsync(string bootstrap, string applicationId, string input, string output)
    {
        var config = new StreamConfig<StringSerDes, StringSerDes>
        {
            ApplicationId = applicationId,
            BootstrapServers = bootstrap,
            Guarantee = ProcessingGuarantee.EXACTLY_ONCE,
            AutoOffsetReset = Confluent.Kafka.AutoOffsetReset.Earliest,
            // A restarted instance joins at once; the killed one leaves the group after this.
            SessionTimeoutMs = 6000,
            HeartbeatIntervalMs = 1000,
            CommitIntervalMs = 200,
            // Kafka Streams' exactly-once default (librdkafka's is 60 s). Streamiz names its
            // transactional ids after a process id that a restart with in-memory stores does not
            // keep, so the killed instance's open transaction is not fenced by the new one: the
            // coordinator aborts it after this timeout, and read_committed consumers (the new
            // instance's too) wait at the last stable offset until then.
            TransactionTimeoutMs = 10000,
            ReplicationFactor = 3,
            StateDir = Path.Combine(Path.GetTempPath(), "streamplatform-eos-apps", applicationId),
        };

        var builder = new StreamBuilder();
        builder.Stream<string, string>(input)
            .GroupByKey()
            .Count(InMemory.As<string, long>("counts"))
            .ToStream()
            .MapValues((count, _) => count.ToString(CultureInfo.InvariantCulture))
            .To(output);

        var stream = new KafkaStream(builder.Build(), config);
        stream.StateChanged += (from, to) => Console.WriteLine($"STATE {from}->{to}");
        await stream.StartAsync();
        // Until killed: the test ends this process with kill -9, as a crash would.
        await Task.Delay(Timeout.Infinite);
        return 0;
    }
}
