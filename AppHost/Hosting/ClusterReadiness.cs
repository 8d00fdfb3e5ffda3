using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.Hosting;
using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.AppHost.Hosting;

/// <summary>What the AppHost prints once the cluster is up, and where.</summary>
public sealed record ClusterReadinessOptions(
    ClusterTopology Topology,
    TimeSpan HealthTimeout,
    string? DashboardLoginUrl,
    TextWriter Output,
    TextWriter Error);

/// <summary>
/// Waits until every service reports healthy, then prints the Kafka bootstrap address and the
/// dashboard's login URL once. A service that fails to start, exits, or is not healthy within the
/// health timeout is named, with the last lines it printed and where to look next; the others keep
/// running so its neighbours' state can be inspected in the dashboard.
/// </summary>
public sealed class ClusterReadiness(
    ClusterReadinessOptions options,
    ResourceNotificationService notifications,
    ResourceLoggerService logs) : BackgroundService
{
    /// <summary>How many of a failed service's last log lines are shown.</summary>
    public const int FailureLogLinesMax = 30;

    public const string BootstrapLinePrefix = "Kafka bootstrap servers: ";

    public const string DashboardLinePrefix = "Dashboard: ";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        deadline.CancelAfter(options.HealthTimeout);
        foreach (var resource in options.Topology.Resources)
        {
            try
            {
                await notifications.WaitForResourceHealthyAsync(resource.Name, WaitBehavior.StopOnResourceUnavailable, deadline.Token);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (OperationCanceledException)
            {
                await ReportFailureAsync(resource.Name,
                    $"{resource.Name} did not become healthy within {options.HealthTimeout.TotalSeconds:0} s " +
                    "(--health-timeout raises the limit).", stoppingToken);
                return;
            }
            catch (DistributedApplicationException e)
            {
                await ReportFailureAsync(resource.Name, $"{resource.Name} stopped before it became healthy: {e.Message}", stoppingToken);
                return;
            }
        }
        PrintBanner();
    }

    private void PrintBanner()
    {
        var topology = options.Topology;
        var lines = new List<string>
        {
            "",
            "StreamPlatform is running.",
            BootstrapLinePrefix + topology.BootstrapServers,
            $"  e.g. kcat -b {topology.BootstrapServers} -L",
        };
        lines.Add(options.DashboardLoginUrl is { } url
            ? DashboardLinePrefix + url
            : "Dashboard: off (--no-dashboard)");
        lines.Add($"Data directory: {topology.Options.DataDir}");
        lines.Add("Stop: press Ctrl+C (or send SIGTERM); the data directory is kept (--clean wipes it at the next start).");
        lines.Add("");
        options.Output.WriteLine(string.Join(Environment.NewLine, lines));
        options.Output.Flush();
    }

    private async Task ReportFailureAsync(string resourceName, string message, CancellationToken cancellationToken)
    {
        var tail = new Queue<string>(FailureLogLinesMax);
        try
        {
            // GetAllAsync yields the backlog kept so far, then completes.
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(2));
            await foreach (var batch in logs.GetAllAsync(resourceName).WithCancellation(timeout.Token))
            {
                foreach (var line in batch)
                {
                    if (tail.Count == FailureLogLinesMax)
                        tail.Dequeue();
                    tail.Enqueue(line.Content);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }

        options.Error.WriteLine($"error: {message}");
        if (tail.Count > 0)
        {
            options.Error.WriteLine($"Last {tail.Count} lines of {resourceName}:");
            foreach (var line in tail)
                options.Error.WriteLine($"  {line}");
        }
        options.Error.WriteLine(options.DashboardLoginUrl is { } url
            ? $"Its full console log is in the dashboard ({url}). Ctrl+C stops the cluster."
            : "Ctrl+C stops the cluster; run without --no-dashboard to see every service's console log.");
        options.Error.Flush();
    }
}
