using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Transactions;

/// <summary>
/// Issue 13's transaction acceptance with Confluent.Kafka (librdkafka) against the shared
/// cluster: read_committed hides aborted and open transactions (last stable offset), a second
/// producer with the same transactional.id fences the first, a transaction left open past its
/// timeout is aborted by the coordinator, and SendOffsetsToTransaction commits a group's offsets
/// only when the transaction commits. Topics and transactional ids are unique per test.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class TransactionTests : IDisposable
{
    private static readonly TimeSpan Operation = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(30);

    private readonly ClusterFixture _fixture;
    private readonly ITestOutputHelper _output;
    private readonly IDisposable _attach;

    public TransactionTests(ClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _output = output;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    private string Bootstrap => _fixture.BootstrapServers;

    [Fact]
    public async Task Aborted_transactions_are_never_seen_by_read_committed_consumers_and_are_seen_by_read_uncommitted_ones()
    {
        var topic = KafkaHelpers.UniqueTopic("txn-abort");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 2, replicationFactor: 3);
        using (var producer = TransactionalProducer(UniqueId("abort")))
        {
            producer.InitTransactions(Operation);
            SendInTransaction(producer, topic, "c1", 10, commit: true);
            SendInTransaction(producer, topic, "a", 10, commit: false);
            SendInTransaction(producer, topic, "c2", 10, commit: true);
        }

        var committed = Read(topic, 2, 20, IsolationLevel.ReadCommitted);
        foreach (var p in new[] { 0, 1 })
        {
            // Per partition: the first committed transaction's records, then the second's; nothing of the aborted one.
            var expected = Values("c1", 10).Where((_, i) => i % 2 == p).Concat(Values("c2", 10).Where((_, i) => i % 2 == p));
            Assert.Equal(expected, committed.Where(r => r.Partition == p).Select(r => r.Value));
        }
        Assert.Equal(20, committed.Count);

        var uncommitted = Read(topic, 2, 30, IsolationLevel.ReadUncommitted);
        Assert.Equal(30, uncommitted.Count);
        foreach (var p in new[] { 0, 1 })
        {
            var mine = uncommitted.Where(r => r.Partition == p).ToList();
            var expected = new[] { "c1", "a", "c2" }.SelectMany(prefix => Values(prefix, 10).Where((_, i) => i % 2 == p));
            Assert.Equal(expected, mine.Select(r => r.Value));
            // Each transaction ends with a control batch (its commit or abort marker) that takes one
            // offset: 5 records at 0-4, marker 5, 5 records at 6-10, marker 11, 5 records at 12-16.
            Assert.Equal([0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16], mine.Select(r => r.Offset));
        }
    }

    [Fact]
    public async Task An_open_transaction_holds_read_committed_consumers_at_the_last_stable_offset_until_it_commits()
    {
        var topic = KafkaHelpers.UniqueTopic("txn-lso");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 1, replicationFactor: 3);
        using var first = TransactionalProducer(UniqueId("lso-a"));
        using var open = TransactionalProducer(UniqueId("lso-b"));
        first.InitTransactions(Operation);
        open.InitTransactions(Operation);

        SendInTransaction(first, topic, "before", 5, commit: true, partitions: 1);
        open.BeginTransaction();
        foreach (var v in Values("open", 5))
            open.Produce(new TopicPartition(topic, 0), new Message<string, string> { Key = v, Value = v });
        Assert.Equal(0, open.Flush(Operation));
        SendInTransaction(first, topic, "after", 5, commit: true, partitions: 1);

        // read_uncommitted sees all 15; read_committed stops at the first record of the open transaction.
        var uncommitted = Read(topic, 1, 15, IsolationLevel.ReadUncommitted);
        Assert.Equal(Values("before", 5).Concat(Values("open", 5)).Concat(Values("after", 5)), uncommitted.Select(r => r.Value));
        var firstOpenOffset = uncommitted.First(r => r.Value.StartsWith("open-", StringComparison.Ordinal)).Offset;
        var held = Read(topic, 1, 5, IsolationLevel.ReadCommitted);
        Assert.Equal(Values("before", 5), held.Select(r => r.Value));

        // ListOffsets latest with read_committed is the last stable offset; read_uncommitted the high watermark.
        using var admin = KafkaHelpers.Admin(Bootstrap);
        Assert.Equal(firstOpenOffset, await LatestOffsetAsync(admin, topic, IsolationLevel.ReadCommitted));
        var highWatermark = await LatestOffsetAsync(admin, topic, IsolationLevel.ReadUncommitted);
        Assert.True(highWatermark > uncommitted[^1].Offset, $"high watermark {highWatermark} is not past the last record {uncommitted[^1].Offset}");

        open.CommitTransaction(Operation);
        var released = Read(topic, 1, 15, IsolationLevel.ReadCommitted);
        Assert.Equal(uncommitted.Select(r => (r.Offset, r.Value)), released.Select(r => (r.Offset, r.Value)));
        var stable = await LatestOffsetAsync(admin, topic, IsolationLevel.ReadCommitted);
        Assert.Equal(await LatestOffsetAsync(admin, topic, IsolationLevel.ReadUncommitted), stable);
    }

    [Fact]
    public async Task A_second_producer_with_the_same_transactional_id_fences_the_first_and_aborts_its_open_transaction()
    {
        var topic = KafkaHelpers.UniqueTopic("txn-fence");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 1, replicationFactor: 3);
        var id = UniqueId("fence");
        using var zombie = TransactionalProducer(id);
        zombie.InitTransactions(Operation);
        SendInTransaction(zombie, topic, "first", 3, commit: true, partitions: 1);
        zombie.BeginTransaction();
        foreach (var v in Values("zombie", 3))
            zombie.Produce(new TopicPartition(topic, 0), new Message<string, string> { Key = v, Value = v });
        Assert.Equal(0, zombie.Flush(Operation));

        using var successor = TransactionalProducer(id);
        // Bumps the epoch of the id: the zombie's open transaction is aborted, the zombie fenced.
        successor.InitTransactions(Operation);

        var fenced = Assert.ThrowsAny<KafkaException>(() => zombie.CommitTransaction(Operation));
        _output.WriteLine($"zombie commit: {fenced.Error.Code} fatal={fenced.Error.IsFatal}: {fenced.Message}");
        Assert.True(fenced.Error.IsFatal, $"a fenced producer's error must be fatal: {fenced.Error.Code} {fenced.Message}");
        Assert.Contains(fenced.Error.Code, new[] { ErrorCode.Local_Fenced, ErrorCode.ProducerFenced, ErrorCode.InvalidProducerEpoch });

        SendInTransaction(successor, topic, "second", 3, commit: true, partitions: 1);
        var committed = Read(topic, 1, 6, IsolationLevel.ReadCommitted);
        Assert.Equal(Values("first", 3).Concat(Values("second", 3)), committed.Select(r => r.Value));
        var all = Read(topic, 1, 9, IsolationLevel.ReadUncommitted);
        Assert.Equal(Values("first", 3).Concat(Values("zombie", 3)).Concat(Values("second", 3)), all.Select(r => r.Value));
    }

    [Fact]
    public async Task A_transaction_left_open_past_its_timeout_is_aborted_and_read_committed_consumers_move_past_it()
    {
        var topic = KafkaHelpers.UniqueTopic("txn-timeout");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 1, replicationFactor: 3);
        const int timeoutMs = 3000;
        using var stale = TransactionalProducer(UniqueId("timeout-stale"), timeoutMs);
        using var live = TransactionalProducer(UniqueId("timeout-live"));
        stale.InitTransactions(Operation);
        live.InitTransactions(Operation);

        stale.BeginTransaction();
        foreach (var v in Values("stale", 3))
            stale.Produce(new TopicPartition(topic, 0), new Message<string, string> { Key = v, Value = v });
        Assert.Equal(0, stale.Flush(Operation));
        var openedAt = DateTime.UtcNow;
        SendInTransaction(live, topic, "live", 3, commit: true, partitions: 1);

        // The coordinator aborts the stale transaction after its timeout (plus one check interval);
        // until then the last stable offset sits at its first record.
        var seen = new List<Rec>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(40);
        while (DateTime.UtcNow < deadline && seen.Count < 3)
            seen = Read(topic, 1, 3, IsolationLevel.ReadCommitted, TimeSpan.FromSeconds(3));
        _output.WriteLine($"read_committed saw {seen.Count} record(s) {(DateTime.UtcNow - openedAt).TotalSeconds:F1} s after the transaction opened");
        Assert.Equal(Values("live", 3), seen.Select(r => r.Value));
        Assert.True(DateTime.UtcNow - openedAt >= TimeSpan.FromMilliseconds(timeoutMs),
            "read_committed moved past the open transaction before its timeout: it was not held at the last stable offset");

        // The aborted records stay in the log (read_uncommitted) and the late commit fails: the epoch was bumped.
        var all = Read(topic, 1, 6, IsolationLevel.ReadUncommitted);
        Assert.Equal(Values("stale", 3).Concat(Values("live", 3)), all.Select(r => r.Value));
        var late = Assert.ThrowsAny<KafkaException>(() => stale.CommitTransaction(Operation));
        _output.WriteLine($"late commit: {late.Error.Code} fatal={late.Error.IsFatal}: {late.Message}");
        Assert.Equal(Values("live", 3), Read(topic, 1, 3, IsolationLevel.ReadCommitted).Select(r => r.Value));
    }

    [Fact]
    public async Task SendOffsetsToTransaction_commits_the_groups_offsets_only_when_the_transaction_commits()
    {
        var input = KafkaHelpers.UniqueTopic("txn-offsets-in");
        var output = KafkaHelpers.UniqueTopic("txn-offsets-out");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, input, 1, replicationFactor: 3);
        await KafkaHelpers.CreateTopicAsync(Bootstrap, output, 1, replicationFactor: 3);
        using (var plain = new ProducerBuilder<string, string>(KafkaHelpers.ProducerConfig(Bootstrap)).Build())
        {
            foreach (var v in Values("in", 10))
                plain.Produce(new TopicPartition(input, 0), new Message<string, string> { Key = v, Value = v });
            Assert.Equal(0, plain.Flush(Operation));
        }
        var group = UniqueId("offsets-group");
        var inputPartition = new TopicPartition(input, 0);
        using var admin = KafkaHelpers.Admin(Bootstrap);

        using (var consumer = GroupConsumer(group))
        {
            consumer.Subscribe(input);
            var consumed = new List<ConsumeResult<string, string>>();
            var deadline = DateTime.UtcNow + ReadTimeout;
            while (consumed.Count < 10 && DateTime.UtcNow < deadline)
            {
                if (consumer.Consume(TimeSpan.FromMilliseconds(500)) is { IsPartitionEOF: false } r)
                    consumed.Add(r);
            }
            Assert.Equal(Values("in", 10), consumed.Select(r => r.Message.Value));

            using var producer = TransactionalProducer(UniqueId("offsets"));
            producer.InitTransactions(Operation);

            producer.BeginTransaction();
            ProduceCopies(producer, output, consumed.Take(5));
            producer.SendOffsetsToTransaction([new TopicPartitionOffset(inputPartition, 5)], consumer.ConsumerGroupMetadata, Operation);
            producer.AbortTransaction(Operation);
            Assert.Equal(Offset.Unset, await CommittedAsync(admin, group, inputPartition));

            producer.BeginTransaction();
            ProduceCopies(producer, output, consumed.Take(5));
            producer.SendOffsetsToTransaction([new TopicPartitionOffset(inputPartition, 5)], consumer.ConsumerGroupMetadata, Operation);
            producer.CommitTransaction(Operation);
            Assert.Equal(new Offset(5), await CommittedAsync(admin, group, inputPartition));

            producer.BeginTransaction();
            ProduceCopies(producer, output, consumed.Skip(5));
            producer.SendOffsetsToTransaction([new TopicPartitionOffset(inputPartition, 10)], consumer.ConsumerGroupMetadata, Operation);
            producer.CommitTransaction(Operation);
            Assert.Equal(new Offset(10), await CommittedAsync(admin, group, inputPartition));
            consumer.Close();
        }

        // The output holds each input record once: the aborted copies are not read_committed.
        Assert.Equal(Values("in", 10), Read(output, 1, 10, IsolationLevel.ReadCommitted).Select(r => r.Value));
        Assert.Equal(15, Read(output, 1, 15, IsolationLevel.ReadUncommitted).Count);
    }

    internal sealed record Rec(int Partition, long Offset, string Value);

    internal static string UniqueId(string prefix) => $"{prefix}-{Guid.NewGuid():N}";

    internal static IEnumerable<string> Values(string prefix, int count) => Enumerable.Range(0, count).Select(i => $"{prefix}-{i}");

    private IProducer<string, string> TransactionalProducer(string transactionalId, int transactionTimeoutMs = 60000) =>
        new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = Bootstrap,
            TransactionalId = transactionalId,
            EnableIdempotence = true,
            Acks = Acks.All,
            LingerMs = 5,
            TransactionTimeoutMs = transactionTimeoutMs,
        }).SetLogHandler((_, m) => _output.WriteLine($"librdkafka {m.Level} {m.Facility}: {m.Message}")).Build();

    private IConsumer<string, string> GroupConsumer(string group) =>
        new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = Bootstrap,
            GroupId = group,
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            IsolationLevel = IsolationLevel.ReadCommitted,
            SessionTimeoutMs = 6000,
        }).Build();

    /// <summary>One transaction of <paramref name="count"/> records "prefix-i", record i to partition i % partitions.</summary>
    private static void SendInTransaction(IProducer<string, string> producer, string topic, string prefix, int count, bool commit,
        int partitions = 2)
    {
        producer.BeginTransaction();
        var i = 0;
        foreach (var v in Values(prefix, count))
            producer.Produce(new TopicPartition(topic, i++ % partitions), new Message<string, string> { Key = v, Value = v });
        if (commit)
            producer.CommitTransaction(Operation);
        else
        {
            Assert.Equal(0, producer.Flush(Operation));
            producer.AbortTransaction(Operation);
        }
    }

    private static void ProduceCopies(IProducer<string, string> producer, string topic, IEnumerable<ConsumeResult<string, string>> records)
    {
        foreach (var r in records)
            producer.Produce(new TopicPartition(topic, 0), new Message<string, string> { Key = r.Message.Key, Value = r.Message.Value });
    }

    private List<Rec> Read(string topic, int partitions, int expected, IsolationLevel isolation, TimeSpan? timeout = null) =>
        KafkaHelpers.ReadAll(Bootstrap, topic, partitions, expected, timeout ?? ReadTimeout, isolation)
            .Select(r => new Rec(r.Partition.Value, r.Offset.Value, Encoding.UTF8.GetString(r.Message.Value)))
            .OrderBy(r => r.Partition).ThenBy(r => r.Offset).ToList();

    private static async Task<long> LatestOffsetAsync(IAdminClient admin, string topic, IsolationLevel isolation)
    {
        var result = await admin.ListOffsetsAsync([new TopicPartitionOffsetSpec { TopicPartition = new TopicPartition(topic, 0), OffsetSpec = OffsetSpec.Latest() }],
            new ListOffsetsOptions { IsolationLevel = isolation, RequestTimeout = Operation });
        return Assert.Single(result.ResultInfos).TopicPartitionOffsetError.Offset.Value;
    }

    /// <summary>
    /// The group's committed offset with require_stable (OffsetFetch v7+). Until the coordinator has
    /// written the markers of a transaction that ended, Kafka answers UNSTABLE_OFFSET_COMMIT, which
    /// clients retry: so does this, for a while.
    /// </summary>
    private static async Task<Offset> CommittedAsync(IAdminClient admin, string group, TopicPartition partition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            TopicPartitionOffsetError answer;
            try
            {
                var result = await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions(group, [partition])],
                    new ListConsumerGroupOffsetsOptions { RequireStableOffsets = true, RequestTimeout = Operation });
                answer = Assert.Single(Assert.Single(result).Partitions);
            }
            catch (ListConsumerGroupOffsetsException e)
            {
                var element = Assert.Single(e.Results);
                answer = element.Partitions.SingleOrDefault() ?? throw new InvalidOperationException($"OffsetFetch of {group} failed: {element.Error}", e);
                if (answer.Error.Code == ErrorCode.NoError)
                    throw new InvalidOperationException($"OffsetFetch of {group} failed: {element.Error}", e);
            }
            if (answer.Error.Code == ErrorCode.UnstableOffsetCommit && DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
                continue;
            }
            Assert.True(answer.Error.Code == ErrorCode.NoError, $"OffsetFetch of {group} {partition}: {answer.Error.Code} {answer.Error.Reason}");
            return answer.Offset;
        }
    }
}
