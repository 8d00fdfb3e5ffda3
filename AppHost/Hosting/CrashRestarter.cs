using System.Globalization;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.Hosting;
using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.AppHost.Hosting;

/// <summary>Which services the <see cref="CrashRestarter"/> watches, with what policy, and where it reports.</summary>
public sealed record CrashRestarterOptions(ClusterTopology Topology, RestartPolicy Policy, TextWriter Output);

/// <summary>
/// Starts a service again when its process ends without being asked to, as systemd or Kubernetes
/// restart a crashed Kafka broker: the resource went Running, then Exited/Finished with a non-zero
/// exit code (a crash, kill -9, an unhandled exception), while the AppHost is not stopping. After
/// <see cref="RestartBackoff"/>'s delay it runs the resource's Start command, the same command as
/// the dashboard's Start button, so the service comes back on its ports and data. A service stopped
/// on purpose (the dashboard's Stop, Ctrl+C) exits with code 0 and stays down. After too many
/// restarts in the policy's window the service is left down, and the log says so.
/// </summary>
public sealed class CrashRestarter(
    CrashRestarterOptions options,
    ResourceNotificationService notifications,
    ResourceCommandService commands,
    IHostApplicationLifetime lifetime,
    TimeProvider time) : BackgroundService
{
    public const string LogPrefix = "[apphost] ";

    private static readonly string[] ExitedStates = [KnownResourceStates.Exited, KnownResourceStates.Finished, KnownResourceStates.FailedToStart];

    private readonly Dictionary<string, ServiceState> _services = options.Topology.Resources
        .ToDictionary(r => r.Name, _ => new ServiceState(new RestartBackoff(options.Policy, time)), StringComparer.Ordinal);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var e in notifications.WatchAsync(stoppingToken))
            {
                if (!_services.TryGetValue(e.Resource.Name, out var service))
                    continue;
                var state = e.Snapshot.State?.Text;
                if (state == KnownResourceStates.Running)
                {
                    service.Running = true;
                    if (e.Snapshot.HealthStatus == Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Healthy && !service.HealthySeen)
                    {
                        service.HealthySeen = true;
                        service.Backoff.OnHealthy();
                        if (service.Backoff.RestartCount > 0)
                            Write($"{e.Resource.Name} is healthy again (restart {service.Backoff.RestartCount})");
                    }
                    continue;
                }
                if (!service.Running || !ExitedStates.Contains(state) || Stopping(stoppingToken))
                    continue;
                service.Running = false;
                service.HealthySeen = false;
                if (e.Snapshot.ExitCode is 0)
                    continue;
                OnCrash(e.Resource.Name, e.ResourceId, e.Snapshot.ExitCode, service, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private void OnCrash(string name, string resourceId, int? exitCode, ServiceState service, CancellationToken stoppingToken)
    {
        var code = exitCode?.ToString(CultureInfo.InvariantCulture) ?? "unknown";
        var decision = service.Backoff.OnCrash();
        if (decision.GiveUp)
        {
            Write($"{name} exited with code {code}; it crashed {decision.RecentRestarts + 1} times within " +
                  $"{RestartPolicy.Format(options.Policy.RestartLimitWindow)}, so it stays down. Start it from the dashboard once the cause is fixed.");
            return;
        }
        Write($"{name} exited with code {code}; restarting in {RestartPolicy.Format(decision.Delay)} (restart {decision.RestartNumber})");
        _ = RestartAfterAsync(name, resourceId, decision.Delay, stoppingToken);
    }

    private async Task RestartAfterAsync(string name, string resourceId, TimeSpan delay, CancellationToken stoppingToken)
    {
        try
        {
            await Task.Delay(delay, time, stoppingToken);
            if (Stopping(stoppingToken))
                return;
            var result = await commands.ExecuteCommandAsync(resourceId, KnownResourceCommands.StartCommand, stoppingToken);
            if (!result.Success)
                Write($"starting {name} again failed: {result.Message ?? "no reason given"}. Start it from the dashboard.");
        }
        catch (OperationCanceledException) when (Stopping(stoppingToken))
        {
            // The AppHost is stopping: no restart.
        }
        catch (Exception e) when (e is InvalidOperationException or DistributedApplicationException)
        {
            Write($"starting {name} again failed: {e.Message}. Start it from the dashboard.");
        }
    }

    private bool Stopping(CancellationToken stoppingToken) =>
        stoppingToken.IsCancellationRequested || lifetime.ApplicationStopping.IsCancellationRequested;

    private void Write(string line)
    {
        lock (options.Output)
        {
            options.Output.WriteLine(LogPrefix + line);
            options.Output.Flush();
        }
    }

    /// <summary>What the watcher knows of one service; touched only by the watch loop.</summary>
    private sealed class ServiceState(RestartBackoff backoff)
    {
        public RestartBackoff Backoff { get; } = backoff;

        /// <summary>Seen Running since its last exit: an exit now is an exit of a running process.</summary>
        public bool Running { get; set; }

        /// <summary>Seen healthy since it last started (RestartBackoff.OnHealthy once per start).</summary>
        public bool HealthySeen { get; set; }
    }
}
