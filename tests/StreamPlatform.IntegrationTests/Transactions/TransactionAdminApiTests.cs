using Confluent.Kafka;
using StreamPlatform.IntegrationTests.Infrastructure;
using StreamPlatform.Protos.Kafka.Messages;
using Xunit.Abstractions;
using KafkaError = StreamPlatform.Protos.Kafka.Messages.ErrorCode;

namespace StreamPlatform.IntegrationTests.Transactions;

/// <summary>
/// The admin view of transactions on the wire (DescribeProducers 61, ListTransactions 66,
/// DescribeTransactions 65: none of the test clients exposes them), checked while a real
/// Confluent.Kafka transaction is open and after it commits, as Kafka's kafka-transactions.sh
/// shows them: the partition leader lists the producer with its open transaction's first offset,
/// the coordinator lists the id as Ongoing with its partition, then CompleteCommit with none open.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class TransactionAdminApiTests : IDisposable
{
    private static readonly TimeSpan Operation = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan SettleMax = TimeSpan.FromSeconds(20);

    private readonly ClusterFixture _fixture;
    private readonly ITestOutputHelper _output;
    private readonly IDisposable _attach;

    public TransactionAdminApiTests(ClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _output = output;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    private string Bootstrap => _fixture.BootstrapServers;

    [Fact]
    public async Task An_open_transaction_shows_in_DescribeProducers_ListTransactions_and_DescribeTransactions_until_it_commits()
    {
        var topic = KafkaHelpers.UniqueTopic("txn-admin");
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, 1, replicationFactor: 3);
        var id = TransactionTests.UniqueId("admin");
        using var producer = new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = Bootstrap,
            TransactionalId = id,
            Acks = Acks.All,
        }).SetLogHandler((_, m) => _output.WriteLine($"librdkafka {m.Level} {m.Facility}: {m.Message}")).Build();
        producer.InitTransactions(Operation);
        // A first committed transaction (3 records + marker at 0-3), then an open one from offset 4.
        producer.BeginTransaction();
        for (var i = 0; i < 3; i++) producer.Produce(topic, new Message<string, string> { Key = "k", Value = $"c{i}" });
        producer.CommitTransaction(Operation);
        producer.BeginTransaction();
        for (var i = 0; i < 2; i++) producer.Produce(topic, new Message<string, string> { Key = "k", Value = $"o{i}" });
        producer.Flush(Operation);

        await using var connection = await RawKafkaConnection.ConnectAsync(Bootstrap);

        var open = await ProducerOnAsync(connection, topic, p => p.CurrentTxnStartOffset == 4);
        Assert.True(open.ProducerId >= 0);
        Assert.Equal(4, open.LastSequence); // 5 records at sequences 0-4
        Assert.True(open.LastTimestamp > 0);

        var listed = await ListAsync(connection, ["Ongoing"]);
        var mine = Assert.Single(listed.TransactionStates, t => t.TransactionalId == id);
        Assert.Equal((open.ProducerId, "Ongoing"), (mine.ProducerId, mine.TransactionStateValue));
        // A state filter Kafka does not know is reported back, not an error.
        var unknown = await ListAsync(connection, ["Ongoing", "NoSuchState"]);
        Assert.Equal(0, unknown.ErrorCode);
        Assert.Equal(["NoSuchState"], unknown.UnknownStateFilters);
        // The producer id filter narrows to this producer.
        var byProducer = await connection.SendAsync<ListTransactionsResponse>(new ListTransactionsRequest { ProducerIdFilters = [open.ProducerId] }, 0);
        Assert.Equal([id], byProducer.TransactionStates.Select(t => t.TransactionalId));

        var described = await DescribeAsync(connection, id, "Ongoing");
        Assert.Equal((open.ProducerId, (short)open.ProducerEpoch), (described.ProducerId, described.ProducerEpoch));
        Assert.Equal([(topic, 0)], described.Topics.SelectMany(t => t.Partitions.Select(p => (t.Topic, p))));
        Assert.True(described.TransactionStartTimeMs > 0);

        producer.CommitTransaction(Operation);
        var committed = await DescribeAsync(connection, id, "CompleteCommit");
        Assert.Empty(committed.Topics);
        var closed = await ProducerOnAsync(connection, topic, p => p.ProducerId == open.ProducerId && p.CurrentTxnStartOffset == -1);
        Assert.Equal(open.ProducerEpoch, closed.ProducerEpoch);
        Assert.DoesNotContain((await ListAsync(connection, ["Ongoing"])).TransactionStates, t => t.TransactionalId == id);

        // An id no coordinator knows: TRANSACTIONAL_ID_NOT_FOUND, as Kafka.
        var missing = await connection.SendAsync<DescribeTransactionsResponse>(new DescribeTransactionsRequest { TransactionalIds = [TransactionTests.UniqueId("never")] }, 0);
        Assert.Equal((short)KafkaError.TransactionalIdNotFound, Assert.Single(missing.TransactionStates).ErrorCode);
    }

    /// <summary>Asks the leader of partition 0 (through the gateway) until a producer matches.</summary>
    private static async Task<DescribeProducersResponse.ProducerState> ProducerOnAsync(RawKafkaConnection connection, string topic, Func<DescribeProducersResponse.ProducerState, bool> match)
    {
        var deadline = DateTime.UtcNow + SettleMax;
        while (true)
        {
            var response = await connection.SendAsync<DescribeProducersResponse>(new DescribeProducersRequest
            {
                Topics = [new DescribeProducersRequest.TopicRequest { Name = topic, PartitionIndexes = [0] }],
            }, 0);
            var partition = Assert.Single(Assert.Single(response.Topics).Partitions);
            Assert.Equal(0, partition.ErrorCode);
            var found = partition.ActiveProducers.FirstOrDefault(match);
            if (found is not null) return found;
            Assert.True(DateTime.UtcNow < deadline, $"No matching producer on {topic}-0: {string.Join(", ", partition.ActiveProducers.Select(p => $"{p.ProducerId}/{p.ProducerEpoch} start {p.CurrentTxnStartOffset}"))}");
            await Task.Delay(100);
        }
    }

    private static Task<ListTransactionsResponse> ListAsync(RawKafkaConnection connection, List<string> states)
        => connection.SendAsync<ListTransactionsResponse>(new ListTransactionsRequest { StateFilters = states }, 0);

    /// <summary>DescribeTransactions until the id is in <paramref name="state"/> (markers complete after EndTxn is answered).</summary>
    private static async Task<DescribeTransactionsResponse.TransactionState> DescribeAsync(RawKafkaConnection connection, string id, string state)
    {
        var deadline = DateTime.UtcNow + SettleMax;
        while (true)
        {
            var response = await connection.SendAsync<DescribeTransactionsResponse>(new DescribeTransactionsRequest { TransactionalIds = [id] }, 0);
            var described = Assert.Single(response.TransactionStates);
            Assert.Equal((0, id), (described.ErrorCode, described.TransactionalId));
            if (described.TransactionStateValue == state) return described;
            Assert.True(DateTime.UtcNow < deadline, $"{id} stayed {described.TransactionStateValue}, expected {state}.");
            await Task.Delay(100);
        }
    }
}
