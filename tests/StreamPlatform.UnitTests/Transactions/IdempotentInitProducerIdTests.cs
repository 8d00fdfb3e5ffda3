using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Transactions;

/// <summary>InitProducerId with a null transactional id: any broker (no __transaction_state partition needed), a new id from its block, epoch 0.</summary>
public sealed class IdempotentInitProducerIdTests : IDisposable
{
    private readonly TransactionHarness _h = new(); // nothing loaded: this broker coordinates no transactional id

    public void Dispose() => _h.Dispose();

    [Fact]
    public async Task Each_producer_gets_a_new_id_at_epoch_0()
    {
        var a = await _h.InitAsync(null);
        var b = await _h.InitAsync(null, timeoutMs: int.MaxValue); // the timeout is not read for a null id
        Assert.Equal((ErrorCodes.None, 0L, (short)0), (a.ErrorCode, a.ProducerId, a.ProducerEpoch));
        Assert.Equal((ErrorCodes.None, 1L, (short)0), (b.ErrorCode, b.ProducerId, b.ProducerEpoch));
    }

    [Fact]
    public async Task A_producer_that_names_its_id_and_epoch_gets_a_new_id_as_in_Kafka()
    {
        var first = await _h.InitAsync(null);
        var again = await _h.InitAsync(null, producerId: first.ProducerId, epoch: first.ProducerEpoch);
        Assert.Equal(ErrorCodes.None, again.ErrorCode);
        Assert.NotEqual(first.ProducerId, again.ProducerId);
        Assert.Equal(0, again.ProducerEpoch);
    }

    [Theory]
    [InlineData(5L, (short)-1)]
    [InlineData(-1L, (short)3)]
    public async Task A_producer_id_without_its_epoch_or_the_reverse_is_INVALID_REQUEST(long producerId, short epoch)
    {
        var r = await _h.InitAsync(null, producerId: producerId, epoch: epoch);
        Assert.Equal((ErrorCodes.InvalidRequest, -1L, (short)-1), (r.ErrorCode, r.ProducerId, r.ProducerEpoch));
    }

    [Fact]
    public async Task A_transactional_id_on_a_broker_that_does_not_coordinate_it_is_NOT_COORDINATOR()
    {
        var r = await _h.InitAsync("tx");
        Assert.Equal(ErrorCodes.NotCoordinator, r.ErrorCode);
    }
}
