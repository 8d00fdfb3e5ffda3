namespace StreamPlatform.AppHost.Orchestration;

/// <summary>What to do about one crash of a supervised service.</summary>
/// <param name="GiveUp">True when the restart limit is reached: leave the service down.</param>
/// <param name="Delay">How long to wait before starting it again.</param>
/// <param name="RestartNumber">This restart's number, counting every supervisor restart of the service (as Kubernetes' restartCount).</param>
/// <param name="RecentRestarts">Restarts within the policy's window before this crash.</param>
public readonly record struct RestartDecision(bool GiveUp, TimeSpan Delay, int RestartNumber, int RecentRestarts);

/// <summary>
/// The crash-loop state of one service under a <see cref="RestartPolicy"/>: the next delay
/// (doubling from the minimum to the cap per restart of a loop), when the loop is over (the
/// service stayed healthy long enough), and when to give up (too many restarts in the window).
/// Time comes from a <see cref="TimeProvider"/> so tests run it on a fake clock. Thread-safe.
/// </summary>
public sealed class RestartBackoff
{
    private readonly object _gate = new();
    private readonly RestartPolicy _policy;
    private readonly TimeProvider _time;
    /// <summary>When recent restarts happened; at most RestartLimitCount entries (older ones leave the window).</summary>
    private readonly Queue<DateTimeOffset> _recent = new();
    private int _loopRestarts;
    private DateTimeOffset? _healthySince;
    private int _restartCount;

    public RestartBackoff(RestartPolicy policy, TimeProvider time)
    {
        policy.Validate();
        _policy = policy;
        _time = time;
    }

    /// <summary>Supervisor restarts of this service so far (a deliberate start does not count or reset it).</summary>
    public int RestartCount
    {
        get
        {
            lock (_gate)
                return _restartCount;
        }
    }

    /// <summary>The service crashed: decides the restart (and counts it) or gives up.</summary>
    public RestartDecision OnCrash()
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            // Healthy long enough: this crash starts a new loop (Kubernetes resets its backoff the same way).
            if (_healthySince is { } since && now - since >= _policy.BackoffResetAfterHealthy)
                _loopRestarts = 0;
            _healthySince = null;

            if (_policy.RestartLimitCount > 0)
            {
                while (_recent.Count > 0 && now - _recent.Peek() >= _policy.RestartLimitWindow)
                    _recent.Dequeue();
                if (_recent.Count >= _policy.RestartLimitCount)
                    return new RestartDecision(true, TimeSpan.Zero, _restartCount, _recent.Count);
            }

            var recent = _recent.Count;
            var delay = Delay(_loopRestarts);
            _loopRestarts++;
            _restartCount++;
            if (_policy.RestartLimitCount > 0)
                _recent.Enqueue(now);
            return new RestartDecision(false, delay, _restartCount, recent);
        }
    }

    /// <summary>The service answers /health (after a restart or a deliberate start): the healthy clock starts.</summary>
    public void OnHealthy()
    {
        lock (_gate)
            _healthySince = _time.GetUtcNow();
    }

    /// <summary>A deliberate start or stop: the crash history no longer says anything about the service.</summary>
    public void Reset()
    {
        lock (_gate)
        {
            _loopRestarts = 0;
            _recent.Clear();
            _healthySince = null;
        }
    }

    private TimeSpan Delay(int loopRestarts)
    {
        var delay = _policy.BackoffMin;
        for (var i = 0; i < loopRestarts && delay < _policy.BackoffMax; i++)
        {
            // Compared before doubling so a huge cap cannot overflow the ticks.
            delay = delay.Ticks > _policy.BackoffMax.Ticks / 2 ? _policy.BackoffMax : delay * 2;
        }
        return delay;
    }
}
