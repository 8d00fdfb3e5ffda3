using System.Threading.Channels;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Protos.Grpc.Broker;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>The gateway's watch on one broker: connected on the first message, notices passed on, reconnect with backoff.</summary>
public sealed class BrokerAppendWatchTests
{
    private const string Endpoint = "http://b1";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>Each WatchAppends call gets the next channel the test made; the test writes messages or completes it (with an error: the stream broke).</summary>
    private sealed class FakeClient : BrokerService.BrokerServiceClient
    {
        public Channel<Channel<AppendNotices>> Calls { get; } = Channel.CreateUnbounded<Channel<AppendNotices>>();
        public int CallCount;

        public override AsyncServerStreamingCall<AppendNotices> WatchAppends(WatchAppendsRequest request, CallOptions options)
        {
            Interlocked.Increment(ref CallCount);
            var stream = Channel.CreateUnbounded<AppendNotices>();
            Calls.Writer.TryWrite(stream);
            return new AsyncServerStreamingCall<AppendNotices>(new Reader(stream.Reader), Task.FromResult(new Metadata()),
                () => Status.DefaultSuccess, () => [], () => { });
        }

        public async Task<Channel<AppendNotices>> NextCallAsync()
        {
            using var cts = new CancellationTokenSource(Timeout);
            return await Calls.Reader.ReadAsync(cts.Token);
        }
    }

    private sealed class Reader(ChannelReader<AppendNotices> reader) : IAsyncStreamReader<AppendNotices>
    {
        public AppendNotices Current { get; private set; } = null!;

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            if (!await reader.WaitToReadAsync(cancellationToken)) return false;
            Current = await reader.ReadAsync(cancellationToken);
            return true;
        }
    }


    private static async Task EventuallyAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached");
            await Task.Delay(5);
        }
    }

    [Fact]
    public async Task Connects_on_the_first_message_passes_notices_on_and_reconnects_with_backoff()
    {
        var time = new CountingTimeProvider();
        var signals = new AppendSignals();
        var client = new FakeClient();
        var watch = new BrokerAppendWatch(client, Endpoint, signals, time, NullLogger.Instance);

        var first = await client.NextCallAsync();
        Assert.False(signals.IsConnected(Endpoint)); // the call is open, but nothing says the broker registered it
        first.Writer.TryWrite(new AppendNotices());
        await EventuallyAsync(() => signals.IsConnected(Endpoint));
        using (var interest = signals.TryRegister([Endpoint], 1, [("t", 0, 5L, 0)])!)
        {
            first.Writer.TryWrite(new AppendNotices { Notices = { new AppendNotice { Topic = "t", Partition = 0, HighWatermark = 6 } } });
            await interest.WaitAsync(Timeout, TimeProvider.System, CancellationToken.None);
            Assert.Equal([0], interest.TakeMoved());

            // The stream breaks: disconnected at once (the interest is lost), reopened after 50 ms.
            first.Writer.TryComplete(new RpcException(new Status(StatusCode.Unavailable, "gone")));
            await EventuallyAsync(() => interest.Lost);
        }
        Assert.False(signals.IsConnected(Endpoint));
        await EventuallyAsync(() => Volatile.Read(ref time.Timers) == 1);
        time.Fake.Advance(TimeSpan.FromMilliseconds(49));
        Assert.Equal(1, client.CallCount);
        time.Fake.Advance(TimeSpan.FromMilliseconds(1));
        var second = await client.NextCallAsync();

        // Fails before connecting: the next wait doubles (100 ms).
        second.Writer.TryComplete(new RpcException(new Status(StatusCode.Unavailable, "still gone")));
        await EventuallyAsync(() => Volatile.Read(ref time.Timers) == 2);
        time.Fake.Advance(TimeSpan.FromMilliseconds(99));
        Assert.Equal(2, client.CallCount);
        time.Fake.Advance(TimeSpan.FromMilliseconds(1));
        var third = await client.NextCallAsync();
        third.Writer.TryWrite(new AppendNotices());
        await EventuallyAsync(() => signals.IsConnected(Endpoint));

        // Disposed: disconnected at once, the loop ends, no further call.
        watch.Dispose();
        Assert.False(signals.IsConnected(Endpoint));
        await watch.Completion.WaitAsync(Timeout);
        Assert.Equal(3, client.CallCount);
    }
}
