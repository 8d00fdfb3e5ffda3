using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace StreamPlatform.Broker.Storage;

/// <summary>
/// Applies retention to every log every <c>Broker:RetentionCheckIntervalMs</c> (default 5000)
/// and deletes the files of removed segments once file.delete.delay.ms has passed.
/// <para>Kafka checks every 300000 ms (log.retention.check.interval.ms). A pass here costs one
/// look at each log's in-memory segment list (no I/O unless something is deleted), so a short
/// interval is cheap, and it makes retention.ms, retention.bytes, DeleteRecords' segment removal
/// and file.delete.delay.ms take effect within seconds, which small disks and tests need.</para>
/// </summary>
public sealed class LogRetentionService(LogManager logs, TimeProvider time, TimeSpan interval, ILogger<LogRetentionService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false)) RunOnce();
        }
        catch (OperationCanceledException)
        {
            // Stopping: pending .deleted files are removed at the next open.
        }
    }

    /// <summary>One pass over every log; a failure on one log is logged and does not stop the others.</summary>
    public int RunOnce()
    {
        var removed = 0;
        foreach (var log in logs.Logs)
        {
            // Until metadata brought the topic's configs the log runs on defaults (7-day
            // retention, delete policy): applying those could delete data of a compacted or
            // long-retention topic at every broker start.
            if (log.AppliedMetadataEpoch < 0) continue;
            try
            {
                removed += log.ApplyRetention();
                log.DeleteExpiredFiles();
                log.RemoveExpiredProducers();
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Never let one log's failure escape: an exception out of a BackgroundService stops the broker.
                logger.LogError(ex, "Retention of {Partition} failed; retried at the next check", log.TopicPartition);
            }
        }
        return removed;
    }
}
