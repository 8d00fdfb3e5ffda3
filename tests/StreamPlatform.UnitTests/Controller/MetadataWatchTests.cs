using System.Threading.Channels;
using StreamPlatform.Controller.Metadata;
using StreamPlatform.Protos.Grpc;

namespace StreamPlatform.UnitTests.Controller;

public class MetadataWatchTests
{
    private static MetadataSnapshot Snap(long epoch) => new() { MetadataEpoch = epoch, ClusterId = "c" };

    [Fact]
    public async Task Sends_current_snapshot_then_each_change_in_epoch_order_and_ends_on_cancel()
    {
        using var h = new ControllerHarness();
        var received = Channel.CreateUnbounded<MetadataSnapshot>();
        using var cts = new CancellationTokenSource();
        var watch = MetadataWatch.RunAsync(h.Controller.Publisher, 0, (s, _) => received.Writer.WriteAsync(s).AsTask(), cts.Token);

        var first = await received.Reader.ReadAsync();
        Assert.Equal(h.Controller.State.Epoch, first.MetadataEpoch);
        h.RegisterBroker(1);
        var second = await received.Reader.ReadAsync();
        Assert.Equal(first.MetadataEpoch + 1, second.MetadataEpoch);
        Assert.Single(second.Brokers);
        h.CreateTopic("t", 1, 1);
        var third = await received.Reader.ReadAsync();
        Assert.True(third.MetadataEpoch > second.MetadataEpoch);
        Assert.Single(third.Topics);

        await cts.CancelAsync();
        await watch.WaitAsync(TimeSpan.FromSeconds(10)); // returns without throwing
    }

    [Fact]
    public async Task Known_epoch_equal_to_current_waits_for_the_next_change()
    {
        var publisher = new MetadataPublisher();
        publisher.Publish(Snap(5));
        var received = Channel.CreateUnbounded<MetadataSnapshot>();
        using var cts = new CancellationTokenSource();
        var watch = MetadataWatch.RunAsync(publisher, 5, (s, _) => received.Writer.WriteAsync(s).AsTask(), cts.Token);
        Assert.False(received.Reader.TryRead(out _));
        publisher.Publish(Snap(6));
        Assert.Equal(6, (await received.Reader.ReadAsync()).MetadataEpoch);
        await cts.CancelAsync();
        await watch;
    }

    [Fact]
    public async Task Known_epoch_behind_or_ahead_gets_the_current_snapshot_at_once()
    {
        var publisher = new MetadataPublisher();
        publisher.Publish(Snap(5));
        foreach (var known in new long[] { 3, 9 })
        {
            var received = Channel.CreateUnbounded<MetadataSnapshot>();
            using var cts = new CancellationTokenSource();
            var watch = MetadataWatch.RunAsync(publisher, known, (s, _) => received.Writer.WriteAsync(s).AsTask(), cts.Token);
            Assert.Equal(5, (await received.Reader.ReadAsync()).MetadataEpoch);
            await cts.CancelAsync();
            await watch;
        }
    }

    [Fact]
    public async Task A_slow_watcher_gets_only_the_newest_snapshot_after_a_burst()
    {
        var publisher = new MetadataPublisher();
        publisher.Publish(Snap(1));
        var sent = new List<long>();
        var firstSendStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var releaseFirstSend = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gotLatest = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var cts = new CancellationTokenSource();
        var watch = MetadataWatch.RunAsync(publisher, 0, async (s, _) =>
        {
            lock (sent) sent.Add(s.MetadataEpoch);
            if (s.MetadataEpoch == 1)
            {
                firstSendStarted.SetResult();
                await releaseFirstSend.Task; // a slow network write
            }
            if (s.MetadataEpoch == 50) gotLatest.SetResult();
        }, cts.Token);

        await firstSendStarted.Task;
        for (var e = 2; e <= 50; e++) publisher.Publish(Snap(e));
        releaseFirstSend.SetResult();
        await gotLatest.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await cts.CancelAsync();
        await watch;
        lock (sent) Assert.Equal([1L, 50L], sent);
    }

    [Fact]
    public void Publisher_ignores_older_snapshots()
    {
        var publisher = new MetadataPublisher();
        publisher.Publish(Snap(4));
        publisher.Publish(Snap(3));
        Assert.Equal(4, publisher.Current!.MetadataEpoch);
    }
}
