using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Transactions;

/// <summary>
/// The KIP-890 verifier a partition leader calls: on the coordinator itself (broker 1) it asks
/// in process, elsewhere (broker 2) through the broker form of AddPartitionsToTxn v5 on the wire.
/// </summary>
public sealed class TransactionVerifierTests : IDisposable
{
    private readonly TransactionHarness _h = new();

    public TransactionVerifierTests() => _h.Load();

    public void Dispose() => _h.Dispose();

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task Verify_only_passes_partitions_of_the_transaction_and_refuses_the_others(int broker)
    {
        var verifier = _h.Verifier(broker);
        var p = await _h.InitAsync("tx");
        await _h.AddAsync("tx", p.ProducerId, p.ProducerEpoch, ("t", 0));
        Assert.Equal(ErrorCodes.None, await verifier.VerifyAsync("tx", p.ProducerId, p.ProducerEpoch, new TopicPartition("t", 0), false, CancellationToken.None));
        Assert.Equal(ErrorCodes.InvalidTxnState, await verifier.VerifyAsync("tx", p.ProducerId, p.ProducerEpoch, new TopicPartition("t", 1), false, CancellationToken.None));
        Assert.Equal(ErrorCodes.InvalidProducerEpoch, await verifier.VerifyAsync("tx", p.ProducerId, 5, new TopicPartition("t", 0), false, CancellationToken.None));
        Assert.Equal(ErrorCodes.InvalidProducerIdMapping, await verifier.VerifyAsync("nope", p.ProducerId, p.ProducerEpoch, new TopicPartition("t", 0), false, CancellationToken.None));
        Assert.Equal([new TopicPartition("t", 0)], _h.Txn("tx").Partitions);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task Transaction_version_2_adds_the_partition_implicitly(int broker)
    {
        var verifier = _h.Verifier(broker);
        var p = await _h.InitAsync("tx");
        Assert.Equal(ErrorCodes.None, await verifier.VerifyAsync("tx", p.ProducerId, p.ProducerEpoch, new TopicPartition("u", 2), true, CancellationToken.None));
        Assert.Equal((StreamPlatform.Broker.Transactions.TransactionState.Ongoing, (short)2), (_h.StateOf("tx"), _h.Txn("tx").ClientTransactionVersion));
        Assert.Equal([new TopicPartition("u", 2)], _h.Txn("tx").Partitions);
    }

    [Fact]
    public async Task Without_a_coordinator_the_answer_is_retriable()
    {
        var snapshot = _h.Metadata.Snapshot.Clone();
        snapshot.Topics.Remove(snapshot.Topics.Single(t => t.Name == "__transaction_state"));
        _h.Metadata = new ClusterMetadata(snapshot);
        Assert.Equal(ErrorCodes.CoordinatorNotAvailable, await _h.Verifier(2).VerifyAsync("tx", 1, 0, new TopicPartition("t", 0), false, CancellationToken.None));
        var leaderless = _h.Metadata.Snapshot.Clone();
        leaderless.Topics.Add(new TopicInfo { Name = "__transaction_state", Partitions = { new PartitionInfo { Partition = 0, Leader = -1 } } });
        _h.Metadata = new ClusterMetadata(leaderless);
        Assert.Equal(ErrorCodes.CoordinatorNotAvailable, await _h.Verifier(2).VerifyAsync("tx", 1, 0, new TopicPartition("t", 0), false, CancellationToken.None));
    }
}
