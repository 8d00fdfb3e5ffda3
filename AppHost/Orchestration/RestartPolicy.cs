namespace StreamPlatform.AppHost.Orchestration;

/// <summary>
/// How the orchestrator restarts a service whose process ended without being asked to (crash,
/// kill -9 from outside, non-zero exit), when <see cref="ClusterOptions.RestartCrashed"/> is on.
/// Modelled on Kubernetes' CrashLoopBackOff (a delay doubling up to a cap, forgotten once the
/// container has run fine for a while) and systemd's StartLimitBurst/StartLimitIntervalSec
/// (give up after too many restarts in a window, rather than loop forever on a broken service).
/// </summary>
public sealed class RestartPolicy
{
    /// <summary>Delay before the first restart of a crash loop (systemd's RestartSec).</summary>
    public TimeSpan BackoffMin { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The delay doubles per restart up to this cap (Kubernetes caps at 5 min; a local cluster wants less).</summary>
    public TimeSpan BackoffMax { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A service that stayed healthy this long before it crashed starts again from <see cref="BackoffMin"/>.</summary>
    public TimeSpan BackoffResetAfterHealthy { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>At most this many restarts of one service within <see cref="RestartLimitWindow"/>; one more crash and the orchestrator gives up on it. 0: never give up.</summary>
    public int RestartLimitCount { get; set; } = 5;

    public TimeSpan RestartLimitWindow { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Throws <see cref="ArgumentException"/> on settings that make no sense.</summary>
    public void Validate()
    {
        if (BackoffMin <= TimeSpan.Zero)
            throw new ArgumentException($"{nameof(BackoffMin)} must be positive.");
        if (BackoffMax < BackoffMin)
            throw new ArgumentException($"{nameof(BackoffMax)} must be at least {nameof(BackoffMin)}.");
        if (BackoffResetAfterHealthy < TimeSpan.Zero)
            throw new ArgumentException($"{nameof(BackoffResetAfterHealthy)} must not be negative.");
        if (RestartLimitCount < 0)
            throw new ArgumentException($"{nameof(RestartLimitCount)} must not be negative.");
        if (RestartLimitCount > 0 && RestartLimitWindow <= TimeSpan.Zero)
            throw new ArgumentException($"{nameof(RestartLimitWindow)} must be positive.");
    }

    /// <summary>"1 s", "30 s", "1.5 s", "2 min" for log lines.</summary>
    public static string Format(TimeSpan span) =>
        span >= TimeSpan.FromMinutes(1) && span.Seconds == 0 && span.Milliseconds == 0
            ? $"{span.TotalMinutes:0.#} min"
            : $"{span.TotalSeconds:0.###} s";
}
