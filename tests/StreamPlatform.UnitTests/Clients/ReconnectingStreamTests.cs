using System.Threading.Channels;
using Grpc.Core;
using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Protos.Grpc.Clients;

namespace StreamPlatform.UnitTests.Clients;

/// <summary>The shared reconnect loop of the watch streams (metadata, append notices), on a fake clock.</summary>
public sealed class ReconnectingStreamTests
{
    private static readonly TimeSpan Min = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan Max = TimeSpan.FromMilliseconds(300);


    [Fact]
    public async Task Backoff_doubles_while_sessions_fail_resets_after_progress_and_stop_ends_quietly()
    {
        var time = new CountingTimeProvider();
        var waits = 0;
        using var stop = new CancellationTokenSource();
        // Each session takes its script from the test: fail at once, or report progress then end.
        var scripts = Channel.CreateUnbounded<bool>();
        var sessions = 0;
        var ended = Channel.CreateUnbounded<(bool Failed, TimeSpan Delay)>();
        var loop = ReconnectingStream.RunAsync(
            async (progress, ct) =>
            {
                Interlocked.Increment(ref sessions);
                var makeProgress = await scripts.Reader.ReadAsync(ct);
                if (!makeProgress) throw new RpcException(new Status(StatusCode.Unavailable, "down"));
                progress();
            },
            (ex, delay) => ended.Writer.TryWrite((ex is not null, delay)),
            time, Min, Max, stop.Token);

        async Task<(bool Failed, TimeSpan Delay)> NextEndAsync() => await ended.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));

        // Three failures in a row: 50, 100, 200 ms, then capped at 300.
        var expected = new[] { 50, 100, 200, 300 };
        foreach (var ms in expected)
        {
            scripts.Writer.TryWrite(false);
            Assert.Equal((true, TimeSpan.FromMilliseconds(ms)), await NextEndAsync());
            await time.AdvanceWhenWaitingAsync(++waits, TimeSpan.FromMilliseconds(ms));
        }
        // A session with progress that then ends normally: reported as a normal end, the delay
        // back to the minimum, and doubling again from there.
        scripts.Writer.TryWrite(true);
        Assert.Equal((false, Min), await NextEndAsync());
        await time.AdvanceWhenWaitingAsync(++waits, Min);
        scripts.Writer.TryWrite(false);
        Assert.Equal((true, TimeSpan.FromMilliseconds(100)), await NextEndAsync());

        // Stopped during the backoff: the loop ends without another session or report.
        var before = Volatile.Read(ref sessions);
        stop.Cancel();
        await loop.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(before, Volatile.Read(ref sessions));
        Assert.False(ended.Reader.TryRead(out _));
    }

    [Fact]
    public async Task Stopping_a_running_session_ends_the_loop_without_a_report()
    {
        var time = new FakeTimeProvider();
        using var stop = new CancellationTokenSource();
        var reports = 0;
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var loop = ReconnectingStream.RunAsync(
            async (progress, ct) =>
            {
                started.TrySetResult();
                await Task.Delay(Timeout.Infinite, ct);
            },
            (_, _) => Interlocked.Increment(ref reports),
            time, Min, Max, stop.Token);
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10));
        stop.Cancel();
        await loop.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, reports);
    }
}
