using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Gateway.Routing;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>The gateway's registry of fetches waiting for append notices.</summary>
public sealed class AppendSignalsTests
{
    private const string B1 = "http://b1";
    private const string B2 = "http://b2";
    private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(5);
    private readonly FakeTimeProvider _time = new();
    private readonly AppendSignals _signals = new();

    private readonly object _watch1 = new();
    private readonly object _watch2 = new();

    public AppendSignalsTests()
    {
        _signals.Connected(B1, _watch1);
        _signals.Connected(B2, _watch2);
    }

    /// <summary>t/0 at offset 10 from broker tag 0, t/1 at offset 20 from broker tag 1.</summary>
    private AppendSignals.Interest Register()
        => _signals.TryRegister([B1, B2], 2, [("t", 0, 10L, 0), ("t", 1, 20L, 1)])!;

    [Fact]
    public void Registration_is_refused_while_a_broker_watch_is_not_connected()
    {
        Assert.Null(_signals.TryRegister([B1, "http://b3"], 2, [("t", 0, 0L, 0)]));
        Assert.Equal(0, _signals.PartitionCount);
        _signals.Disconnected(B2, _watch2);
        Assert.False(_signals.IsConnected(B2));
        Assert.Null(_signals.TryRegister([B2], 1, [("t", 1, 0L, 0)]));
        _signals.Connected(B2, _watch2);
        using var interest = _signals.TryRegister([B2], 1, [("t", 1, 0L, 0)]);
        Assert.NotNull(interest);
    }

    [Fact]
    public async Task A_notice_between_the_round_and_the_wait_still_wakes_it()
    {
        using var interest = Register();
        Assert.Empty(interest.TakeMoved()); // armed before "the round"
        _signals.Notice("t", 1, 21); // arrives while the round is in flight
        var wait = interest.WaitAsync(MaxWait, _time, CancellationToken.None);
        Assert.True(wait.IsCompleted);
        await wait;
        Assert.Equal([1], interest.TakeMoved());
        Assert.Empty(interest.TakeMoved());
    }

    [Fact]
    public async Task A_notice_during_the_wait_wakes_it_and_names_the_broker()
    {
        using var interest = Register();
        interest.TakeMoved();
        var wait = interest.WaitAsync(MaxWait, _time, CancellationToken.None);
        Assert.False(wait.IsCompleted);
        _signals.Notice("t", 0, 11);
        await wait.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([0], interest.TakeMoved());
    }

    [Fact]
    public async Task Notices_at_or_below_the_fetch_offset_or_for_other_partitions_do_not_wake()
    {
        using var interest = Register();
        interest.TakeMoved();
        var wait = interest.WaitAsync(MaxWait, _time, CancellationToken.None);
        _signals.Notice("t", 0, 10); // nothing past offset 10
        _signals.Notice("t", 1, 5);
        _signals.Notice("t", 2, 100); // nobody waits on it: dropped, no entry made
        _signals.Notice("u", 0, 100);
        Assert.Equal(2, _signals.PartitionCount);
        Assert.False(wait.IsCompleted);
        _time.Advance(MaxWait - TimeSpan.FromMilliseconds(1));
        Assert.False(wait.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        await wait.WaitAsync(TimeSpan.FromSeconds(10)); // max_wait passed
        Assert.Empty(interest.TakeMoved());
    }

    [Fact]
    public async Task The_client_going_away_ends_the_wait()
    {
        using var interest = Register();
        using var cts = new CancellationTokenSource();
        var wait = interest.WaitAsync(MaxWait, _time, cts.Token);
        Assert.False(wait.IsCompleted);
        cts.Cancel();
        await wait.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_watch_going_down_wakes_its_interests_as_lost_and_others_not()
    {
        using var both = Register();
        using var onlyB1 = _signals.TryRegister([B1], 1, [("t", 0, 10L, 0)])!;
        var waitBoth = both.WaitAsync(MaxWait, _time, CancellationToken.None);
        var waitB1 = onlyB1.WaitAsync(MaxWait, _time, CancellationToken.None);
        _signals.Disconnected(B2, _watch2);
        await waitBoth.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(both.Lost);
        Assert.False(waitB1.IsCompleted);
        Assert.False(onlyB1.Lost);
        // Lost stays lost: re-arming does not hide it.
        both.TakeMoved();
        Assert.True(both.WaitAsync(MaxWait, _time, CancellationToken.None).IsCompleted);
        // A reconnected watch does not revive an interest registered before (notices in between may be missing).
        _signals.Connected(B2, _watch2);
        Assert.True(both.Lost);
    }

    [Fact]
    public async Task Only_the_current_watch_of_an_endpoint_changes_its_state()
    {
        using var interest = Register();
        var wait = interest.WaitAsync(MaxWait, _time, CancellationToken.None);
        // A replaced watch finishing late does not disconnect its successor...
        var replacement = new object();
        _signals.Connected(B1, replacement);
        // ...but the replacement makes interests that relied on the old one lost (notices in between may be missing).
        await wait.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(interest.Lost);
        _signals.Disconnected(B1, _watch1);
        Assert.True(_signals.IsConnected(B1));
        using var fresh = _signals.TryRegister([B1], 1, [("t", 0, 0L, 0)])!;
        _signals.Connected(B1, replacement);
        Assert.False(fresh.Lost);
        _signals.Disconnected(B1, replacement);
        Assert.False(_signals.IsConnected(B1));
        Assert.True(fresh.Lost);
    }

    [Fact]
    public void Entries_live_only_while_an_interest_names_them()
    {
        var a = Register();
        var b = _signals.TryRegister([B1], 1, [("t", 0, 3L, 0), ("v", 0, 0L, 0)])!;
        Assert.Equal(3, _signals.PartitionCount);
        _signals.Notice("t", 0, 5); // b fetches t/0 from 3: moved; a from 10: not
        Assert.Equal([0], b.TakeMoved());
        Assert.Empty(a.TakeMoved());
        b.Dispose();
        Assert.Equal(2, _signals.PartitionCount);
        a.Dispose();
        Assert.Equal(0, _signals.PartitionCount);
        _signals.Disconnected(B1, _watch1); // no disposed interest is touched
        Assert.False(a.Lost);
    }
}
