using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace StreamPlatform.Broker.Storage;

/// <summary>Limits of the <see cref="LogCleaner"/> (Broker section: CleanerOffsetMapBytesMax, CleanerBackoffMs).</summary>
public sealed record LogCleanerOptions(long OffsetMapBytesMax, TimeSpan Backoff);

/// <summary>
/// Compacts logs whose cleanup.policy includes compact: every <see cref="LogCleanerOptions.Backoff"/>
/// (Kafka's log.cleaner.backoff.ms, 15 s) it cleans, dirtiest first, each log whose dirty ratio
/// is at least min.cleanable.dirty.ratio, whose oldest dirty record passed max.compaction.lag.ms,
/// or whose kept tombstones have become removable.
/// One thread, one log at a time: the offset map (bounded by OffsetMapBytesMax) is the only
/// large allocation and exists once.
/// </summary>
public sealed class LogCleaner(LogManager logs, LogCleanerOptions options, TimeProvider time, ILogger<LogCleaner> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Backoff, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
                await Task.Run(() => RunOnce(stoppingToken), stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Stopping: a cleaning cut short leaves .cleaned files, removed at the next open.
        }
    }

    /// <summary>Cleans every eligible log once, dirtiest first. Returns the logs cleaned.</summary>
    public int RunOnce(CancellationToken cancellationToken = default)
    {
        var candidates = new List<(PartitionLog Log, double Ratio)>();
        foreach (var log in logs.Logs)
        {
            var config = log.Config;
            // Configs not yet from metadata are defaults, not the topic's (see LogRetentionService).
            if (log.AppliedMetadataEpoch < 0 || !config.Compacted || log.ReadOnlyReason is not null) continue;
            var range = log.GetCleanableRange();
            if ((range.DirtyBytes > 0 && range.DirtyRatio >= config.MinCleanableDirtyRatio) || log.TombstonesDue || log.CompactionLagExceeded(range))
                candidates.Add((log, range.DirtyRatio));
        }
        var cleaned = 0;
        foreach (var (log, _) in candidates.OrderByDescending(c => c.Ratio))
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                log.Clean(options.OffsetMapBytesMax, cancellationToken);
                cleaned++;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Whatever went wrong (I/O, a batch that does not decode, a bug), the original
                // segments are untouched until a swap: log it and go on with the other logs. An
                // exception escaping a BackgroundService would stop the whole broker.
                logger.LogError(ex, "Cleaning {Partition} failed", log.TopicPartition);
            }
        }
        return cleaned;
    }
}
