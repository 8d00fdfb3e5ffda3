using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace StreamPlatform.ServiceDefaults;

/// <summary>
/// Bounds the last OTLP flush of a stopping service. The providers would otherwise flush one after
/// the other when the container is disposed, each waiting up to its export timeout (and a stop
/// with a collector that is not listening took ~10 s, past the 6 s after which DCP or Kubernetes
/// kill the process). Once every other hosted service has stopped, the three providers are shut
/// down side by side within <see cref="FlushBudgetMs"/>; their later Dispose finds them shut down.
/// </summary>
internal sealed class TelemetryShutdown(IServiceProvider services) : IHostedLifecycleService
{
    /// <summary>How long a stopping service waits for its last traces, metrics and logs to be exported.</summary>
    public const int FlushBudgetMs = 500;

    public Task StoppedAsync(CancellationToken cancellationToken)
    {
        var tracer = services.GetService<TracerProvider>();
        var meter = services.GetService<MeterProvider>();
        var logger = services.GetService<LoggerProvider>();
        var shutdowns = new List<Task>(3);
        if (tracer is not null) shutdowns.Add(Task.Run(() => tracer.Shutdown(FlushBudgetMs), CancellationToken.None));
        if (meter is not null) shutdowns.Add(Task.Run(() => meter.Shutdown(FlushBudgetMs), CancellationToken.None));
        if (logger is not null) shutdowns.Add(Task.Run(() => logger.Shutdown(FlushBudgetMs), CancellationToken.None));
        // Shutdown(timeout) returns once its time is up even when an export is still hanging.
        return Task.WhenAll(shutdowns).WaitAsync(TimeSpan.FromMilliseconds(FlushBudgetMs * 2), CancellationToken.None)
            .ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
