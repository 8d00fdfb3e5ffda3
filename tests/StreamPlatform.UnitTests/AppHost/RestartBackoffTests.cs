using Microsoft.Extensions.Time.Testing;
using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.UnitTests.AppHost;

/// <summary>The supervisor's restart policy on a fake clock: doubling backoff, reset after staying healthy, give-up limit.</summary>
public sealed class RestartBackoffTests
{
    /// <summary>What a restart takes before the service could crash again (start, health).</summary>
    private static readonly TimeSpan StartupTime = TimeSpan.FromSeconds(3);

    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void DelaysDoubleFromOneSecondToTheThirtySecondCap()
    {
        var backoff = new RestartBackoff(new RestartPolicy { RestartLimitCount = 0 }, _time);
        var delays = new List<double>();
        for (var i = 1; i <= 8; i++)
        {
            var decision = backoff.OnCrash();
            Assert.False(decision.GiveUp);
            Assert.Equal(i, decision.RestartNumber);
            delays.Add(decision.Delay.TotalSeconds);
            // Restarted, healthy only briefly, crashed again: still the same crash loop.
            _time.Advance(decision.Delay + StartupTime);
            backoff.OnHealthy();
            _time.Advance(TimeSpan.FromSeconds(10));
        }
        Assert.Equal([1, 2, 4, 8, 16, 30, 30, 30], delays);
        Assert.Equal(8, backoff.RestartCount);
    }

    [Fact]
    public void StayingHealthyForTheResetPeriodStartsTheNextLoopAtTheMinimum()
    {
        var backoff = new RestartBackoff(new RestartPolicy(), _time);
        Assert.Equal(TimeSpan.FromSeconds(1), backoff.OnCrash().Delay);
        _time.Advance(TimeSpan.FromSeconds(1) + StartupTime);
        backoff.OnHealthy();
        Assert.Equal(TimeSpan.FromSeconds(2), backoff.OnCrash().Delay);

        // Healthy a second short of the reset period: the loop goes on.
        _time.Advance(TimeSpan.FromSeconds(2) + StartupTime);
        backoff.OnHealthy();
        _time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(TimeSpan.FromSeconds(4), backoff.OnCrash().Delay);

        // Healthy for the whole period: the next crash is treated as the first.
        _time.Advance(TimeSpan.FromSeconds(4) + StartupTime);
        backoff.OnHealthy();
        _time.Advance(TimeSpan.FromSeconds(60));
        var decision = backoff.OnCrash();
        Assert.Equal(TimeSpan.FromSeconds(1), decision.Delay);
        Assert.Equal(4, decision.RestartNumber);
    }

    [Fact]
    public void AServiceThatNeverBecomesHealthyKeepsBackingOff()
    {
        // A restart that dies before answering /health never calls OnHealthy: however long that
        // took, the loop is not over.
        var backoff = new RestartBackoff(new RestartPolicy { RestartLimitCount = 0 }, _time);
        backoff.OnHealthy();
        _time.Advance(TimeSpan.FromMinutes(10));
        Assert.Equal(TimeSpan.FromSeconds(1), backoff.OnCrash().Delay);
        _time.Advance(TimeSpan.FromMinutes(10));
        Assert.Equal(TimeSpan.FromSeconds(2), backoff.OnCrash().Delay);
    }

    [Fact]
    public void GivesUpOnTheCrashAfterTheLimitOfRestartsWithinTheWindow()
    {
        var policy = new RestartPolicy { RestartLimitCount = 3, RestartLimitWindow = TimeSpan.FromMinutes(5) };
        var backoff = new RestartBackoff(policy, _time);
        for (var i = 1; i <= 3; i++)
        {
            var decision = backoff.OnCrash();
            Assert.False(decision.GiveUp);
            Assert.Equal(i - 1, decision.RecentRestarts);
            _time.Advance(decision.Delay + StartupTime);
        }

        var last = backoff.OnCrash();
        Assert.True(last.GiveUp);
        Assert.Equal(3, last.RecentRestarts);
        Assert.Equal(3, last.RestartNumber);
        Assert.Equal(3, backoff.RestartCount);
    }

    [Fact]
    public void RestartsOlderThanTheWindowNoLongerCountTowardsTheLimit()
    {
        var policy = new RestartPolicy { RestartLimitCount = 2, RestartLimitWindow = TimeSpan.FromMinutes(5) };
        var backoff = new RestartBackoff(policy, _time);
        Assert.False(backoff.OnCrash().GiveUp);
        _time.Advance(TimeSpan.FromMinutes(3));
        Assert.False(backoff.OnCrash().GiveUp);

        // The first restart is now 5 minutes old, out of the window; the second is still in it.
        _time.Advance(TimeSpan.FromMinutes(2));
        var decision = backoff.OnCrash();
        Assert.False(decision.GiveUp);
        Assert.Equal(1, decision.RecentRestarts);
        Assert.True(backoff.OnCrash().GiveUp);
    }

    [Fact]
    public void ADeliberateStartForgetsTheLoopAndTheLimitButKeepsTheCount()
    {
        var policy = new RestartPolicy { RestartLimitCount = 2 };
        var backoff = new RestartBackoff(policy, _time);
        backoff.OnCrash();
        backoff.OnCrash();
        Assert.True(backoff.OnCrash().GiveUp);

        backoff.Reset();
        var decision = backoff.OnCrash();
        Assert.False(decision.GiveUp);
        Assert.Equal(TimeSpan.FromSeconds(1), decision.Delay);
        Assert.Equal(3, decision.RestartNumber);
    }

    [Fact]
    public void AHugeCapDoesNotOverflow()
    {
        var backoff = new RestartBackoff(new RestartPolicy { RestartLimitCount = 0, BackoffMax = TimeSpan.MaxValue }, _time);
        var last = TimeSpan.Zero;
        for (var i = 0; i < 80; i++)
        {
            var delay = backoff.OnCrash().Delay;
            Assert.True(delay >= last, $"restart {i + 1}: {delay} after {last}");
            last = delay;
        }
        Assert.Equal(TimeSpan.MaxValue, last);
    }

    [Theory]
    [InlineData(0, 30, 60, 5, 300)]
    [InlineData(2, 1, 60, 5, 300)]
    [InlineData(1, 30, -1, 5, 300)]
    [InlineData(1, 30, 60, -1, 300)]
    [InlineData(1, 30, 60, 5, 0)]
    public void NonsenseSettingsAreRejected(int minSeconds, int maxSeconds, int resetSeconds, int limit, int windowSeconds)
    {
        var policy = new RestartPolicy
        {
            BackoffMin = TimeSpan.FromSeconds(minSeconds),
            BackoffMax = TimeSpan.FromSeconds(maxSeconds),
            BackoffResetAfterHealthy = TimeSpan.FromSeconds(resetSeconds),
            RestartLimitCount = limit,
            RestartLimitWindow = TimeSpan.FromSeconds(windowSeconds),
        };
        Assert.Throws<ArgumentException>(() => new RestartBackoff(policy, _time));
    }

    [Theory]
    [InlineData(137, "SIGKILL")]
    [InlineData(143, "SIGTERM")]
    [InlineData(139, "SIGSEGV")]
    [InlineData(134, "SIGABRT")]
    [InlineData(128 + 10, "signal 10")]
    [InlineData(1, "failed")]
    [InlineData(0, "nothing asked it to stop")]
    public void ExitCodesAreExplainedInTheLog(int exitCode, string expected) =>
        Assert.Contains(expected, ProcessControl.DescribeExitCode(exitCode));
}
