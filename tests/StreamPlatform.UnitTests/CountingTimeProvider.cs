using Microsoft.Extensions.Time.Testing;

namespace StreamPlatform.UnitTests;

/// <summary>
/// A <see cref="FakeTimeProvider"/> that counts the timers made (a Task.Delay on it is one), so a
/// test can move the clock only once the code under test has begun to wait; advancing earlier
/// would be lost and the wait would never end.
/// </summary>
internal sealed class CountingTimeProvider : TimeProvider
{
    public FakeTimeProvider Fake { get; } = new();
    public int Timers;

    public override DateTimeOffset GetUtcNow() => Fake.GetUtcNow();
    public override long GetTimestamp() => Fake.GetTimestamp();
    public override long TimestampFrequency => Fake.TimestampFrequency;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = Fake.CreateTimer(callback, state, dueTime, period);
        Interlocked.Increment(ref Timers);
        return timer;
    }

    /// <summary>Waits (real time, up to 10 s) for timer number <paramref name="count"/> to exist, then moves the clock.</summary>
    public async Task AdvanceWhenWaitingAsync(int count, TimeSpan by)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Volatile.Read(ref Timers) < count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"timer {count} was never made: the code under test did not begin to wait");
            await Task.Delay(5);
        }
        Fake.Advance(by);
    }
}
