using Microsoft.Extensions.Logging.Abstractions;
using StreamPlatform.Broker.Transactions;
using StreamPlatform.Protos.Grpc.Controller;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.UnitTests.Controller;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Transactions;

/// <summary>InitProducerId with a null transactional id: any broker, a new id from its block, epoch 0.</summary>
public sealed class IdempotentInitProducerIdTests : IDisposable
{
    private readonly ControllerHarness _controller = new();
    private readonly TransactionCoordinator _coordinator;

    public IdempotentInitProducerIdTests()
    {
        var epoch = _controller.RegisterBroker(1);
        var ids = new ProducerIdManager(new ControllerService.ControllerServiceClient(new InProcessController(_controller.Controller)), 1, () => epoch,
            _controller.Time, NullLogger<ProducerIdManager>.Instance, waitMs: 5000);
        _coordinator = new TransactionCoordinator(ids, NullLogger<TransactionCoordinator>.Instance);
    }

    public void Dispose() => _controller.Dispose();

    private Task<InitProducerIdResponse> Init(long producerId = -1, short epoch = -1, int timeoutMs = 60000)
        => _coordinator.InitProducerIdAsync(new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = timeoutMs, ProducerId = producerId, ProducerEpoch = epoch }, 4, CancellationToken.None);

    [Fact]
    public async Task Each_producer_gets_a_new_id_at_epoch_0()
    {
        var a = await Init();
        var b = await Init(timeoutMs: int.MaxValue); // the timeout is not read for a null id
        Assert.Equal((ErrorCodes.None, 0L, (short)0), (a.ErrorCode, a.ProducerId, a.ProducerEpoch));
        Assert.Equal((ErrorCodes.None, 1L, (short)0), (b.ErrorCode, b.ProducerId, b.ProducerEpoch));
    }

    [Fact]
    public async Task A_producer_that_names_its_id_and_epoch_gets_a_new_id_as_in_Kafka()
    {
        var first = await Init();
        var again = await Init(first.ProducerId, first.ProducerEpoch);
        Assert.Equal(ErrorCodes.None, again.ErrorCode);
        Assert.NotEqual(first.ProducerId, again.ProducerId);
        Assert.Equal(0, again.ProducerEpoch);
    }

    [Theory]
    [InlineData(5L, (short)-1)]
    [InlineData(-1L, (short)3)]
    public async Task A_producer_id_without_its_epoch_or_the_reverse_is_INVALID_REQUEST(long producerId, short epoch)
    {
        var r = await Init(producerId, epoch);
        Assert.Equal((ErrorCodes.InvalidRequest, -1L, (short)-1), (r.ErrorCode, r.ProducerId, r.ProducerEpoch));
    }
}
