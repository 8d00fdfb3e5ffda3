namespace StreamPlatform.AppHost.Orchestration;

/// <summary>
/// The supervisor's hold on one service. Armed once a start by the user (or the cluster start)
/// has made the service healthy, and kept through the supervisor's own restarts; disarmed by a
/// deliberate stop, kill or start, which also cancels a restart waiting out its backoff. A crash
/// while not armed (e.g. during a start the caller is waiting for) is the caller's to handle.
/// </summary>
internal sealed class ServiceSupervision(RestartBackoff backoff)
{
    private readonly object _gate = new();
    // Cancelled, never disposed: restarts in flight still read its token, and a source without a
    // timer holds nothing that needs disposing.
    private CancellationTokenSource? _armed;
    private int _lastHealthyRestart;

    public RestartBackoff Backoff { get; } = backoff;

    /// <summary>The number of the last supervisor restart after which the service became healthy (0: none yet).</summary>
    public int LastHealthyRestart => Volatile.Read(ref _lastHealthyRestart);

    public void RestartHealthy(int restartNumber) => Volatile.Write(ref _lastHealthyRestart, restartNumber);

    /// <summary>The token restarts run under while armed (cancelled by <see cref="Disarm"/>); null when not armed.</summary>
    public CancellationToken? Token
    {
        get
        {
            lock (_gate)
                return _armed?.Token;
        }
    }

    /// <summary>The service became healthy after a deliberate start: supervise it from now on.</summary>
    public void Arm()
    {
        lock (_gate)
            _armed ??= new CancellationTokenSource();
        Backoff.OnHealthy();
    }

    /// <summary>A deliberate stop, kill or start: cancel any pending restart and forget the crash history.</summary>
    public void Disarm()
    {
        CancellationTokenSource? armed;
        lock (_gate)
        {
            armed = _armed;
            _armed = null;
        }
        armed?.Cancel();
        Backoff.Reset();
    }
}
