using Microsoft.Extensions.Diagnostics.HealthChecks;
using StreamPlatform.Controller.Metadata;

namespace StreamPlatform.Controller.Hosting;

/// <summary>Replays the metadata log before the server accepts calls, then looks for expired sessions and leader imbalance.</summary>
public sealed class ControllerHostedService(MetadataController controller, ControllerMetrics metrics, TimeProvider time, ILogger<ControllerHostedService> logger) : BackgroundService
{
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        controller.Start();
        // Resolving the metrics here registers the meter's instruments at start, not at the first RPC.
        GC.KeepAlive(metrics);
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(controller.Options.SessionCheckIntervalMs), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    controller.ExpireSessions();
                    controller.BalanceLeadersIfDue();
                }
                catch (Exception ex)
                {
                    // Never let one bad check end session expiry (or balancing) for the life of the process.
                    logger.LogError(ex, "Session expiry or leader balance check failed");
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}

/// <summary>Healthy only once the metadata log is replayed and the controller serves requests.</summary>
public sealed class MetadataLogHealthCheck(MetadataController controller) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        => Task.FromResult(controller.IsReady
            ? HealthCheckResult.Healthy($"Metadata epoch {controller.State.Epoch}.")
            : HealthCheckResult.Unhealthy("Replaying the metadata log."));
}
