using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Broker.Transactions;
using StreamPlatform.Protos.Grpc.Controller;
using StreamPlatform.UnitTests.Controller;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Transactions;

/// <summary>The broker's producer-id blocks, from the real controller (in-process) with fake time.</summary>
public sealed class ProducerIdManagerTests : IDisposable
{
    private readonly ControllerHarness _controller = new();
    private readonly InProcessController _transport;
    private readonly long _epoch1;
    private readonly long _epoch2;

    public ProducerIdManagerTests()
    {
        _epoch1 = _controller.RegisterBroker(1);
        _epoch2 = _controller.RegisterBroker(2);
        _transport = new InProcessController(_controller.Controller);
    }

    public void Dispose() => _controller.Dispose();

    private ProducerIdManager Manager(int brokerId, Func<long> epoch, int waitMs = 5000, int waitersMax = 16)
        => new(new ControllerService.ControllerServiceClient(_transport), brokerId, epoch, _controller.Time, NullLogger<ProducerIdManager>.Instance,
            waitMs: waitMs, waitersMax: waitersMax);

    private static async Task<long> Next(ProducerIdManager m)
    {
        var (error, id) = await m.NextAsync(CancellationToken.None);
        Assert.Equal(ErrorCodes.None, error);
        return id;
    }

    private static void Eventually(Func<bool> condition)
        => Assert.True(SpinWait.SpinUntil(condition, TimeSpan.FromSeconds(10)), "condition not reached within 10 s");

    [Fact]
    public async Task Ids_are_consecutive_and_the_next_block_is_fetched_at_90_percent()
    {
        var m = Manager(1, () => _epoch1);
        var ids = new List<long>();
        for (var i = 0; i < 899; i++) ids.Add(await Next(m));
        Assert.Equal(1, m.BlocksReceived);
        ids.Add(await Next(m)); // the 900th id crosses the prefetch point
        Eventually(() => m.BlocksReceived == 2);
        Assert.Equal(2000, _controller.Controller.State.NextProducerId);
        var calls = _transport.Calls;
        for (var i = 0; i < 1100; i++) ids.Add(await Next(m));
        Assert.Equal(Enumerable.Range(0, 2000).Select(i => (long)i), ids);
        // Crossing into the second block needed no call; its own 90% point asked for a third.
        Eventually(() => m.BlocksReceived == 3);
        Assert.Equal(calls + 1, _transport.Calls);
    }

    [Fact]
    public async Task Two_brokers_never_get_the_same_id()
    {
        var a = Manager(1, () => _epoch1);
        var b = Manager(2, () => _epoch2);
        var seen = new HashSet<long>();
        for (var i = 0; i < 1500; i++)
        {
            Assert.True(seen.Add(await Next(a)));
            Assert.True(seen.Add(await Next(b)));
        }
    }

    [Fact]
    public async Task An_unreachable_controller_answers_COORDINATOR_LOAD_IN_PROGRESS_and_a_later_call_succeeds_after_the_backoff()
    {
        _transport.Failure = new RpcException(new Status(StatusCode.Unavailable, "down"));
        var m = Manager(1, () => _epoch1);
        Assert.Equal(ErrorCodes.CoordinatorLoadInProgress, (await m.NextAsync(CancellationToken.None)).ErrorCode);
        _transport.Failure = null;
        // Within the backoff no new call is made.
        var calls = _transport.Calls;
        Assert.Equal(ErrorCodes.CoordinatorLoadInProgress, (await m.NextAsync(CancellationToken.None)).ErrorCode);
        Assert.Equal(calls, _transport.Calls);
        _controller.Time.Advance(ProducerIdManager.RetryBackoff);
        Assert.Equal(0, await Next(m));
    }

    [Fact]
    public async Task A_stale_broker_epoch_gets_no_block_until_the_broker_uses_its_new_epoch()
    {
        var epoch = _epoch1 - 1;
        var m = Manager(1, () => epoch);
        Assert.Equal(ErrorCodes.CoordinatorLoadInProgress, (await m.NextAsync(CancellationToken.None)).ErrorCode);
        Assert.Equal(0, m.BlocksReceived);
        epoch = _epoch1;
        _controller.Time.Advance(ProducerIdManager.RetryBackoff);
        Assert.Equal(0, await Next(m));
    }

    [Fact]
    public async Task Waiting_callers_are_bounded_and_all_get_ids_once_the_block_arrives()
    {
        _transport.Hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var m = Manager(1, () => _epoch1, waitersMax: 2);
        var first = m.NextAsync(CancellationToken.None).AsTask();
        var second = m.NextAsync(CancellationToken.None).AsTask();
        // The third finds two waiting: answered at once.
        var third = await m.NextAsync(CancellationToken.None);
        Assert.Equal(ErrorCodes.CoordinatorLoadInProgress, third.ErrorCode);
        Assert.False(first.IsCompleted);
        _transport.Hold.SetResult();
        var answers = await Task.WhenAll(first, second);
        Assert.All(answers, a => Assert.Equal(ErrorCodes.None, a.ErrorCode));
        Assert.Equal([0L, 1L], answers.Select(a => a.ProducerId).Order());
        Assert.Equal(1, _transport.Calls);
    }

    [Fact]
    public async Task A_wait_ends_after_its_limit_with_COORDINATOR_LOAD_IN_PROGRESS()
    {
        _transport.Hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var m = Manager(1, () => _epoch1, waitMs: 1000);
        var waiting = m.NextAsync(CancellationToken.None).AsTask();
        Eventually(() => _transport.Calls == 1);
        Assert.False(waiting.IsCompleted);
        _controller.Time.Advance(TimeSpan.FromMilliseconds(1000));
        Assert.Equal(ErrorCodes.CoordinatorLoadInProgress, (await waiting).ErrorCode);
        _transport.Hold.SetResult();
        Eventually(() => m.BlocksReceived == 1);
        Assert.Equal(0, await Next(m));
    }
}
