using Microsoft.Extensions.Options;
using StreamPlatform.Broker.Groups;
using StreamPlatform.Broker.Replication;
using StreamPlatform.Broker.Services;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Groups;
using StreamPlatform.Protos.Grpc.Clients;

namespace StreamPlatform.Broker.Transactions;

/// <summary>
/// Runs the transaction coordinator: moves it with the leadership of __transaction_state
/// partitions (the shared <see cref="CoordinatorPartitionFollower"/>: loaded once per leader
/// epoch, unloaded when led elsewhere), and on the injected clock aborts transactions open
/// past their timeout (every transaction.abort.timed.out.transaction.cleanup.interval.ms) and
/// removes expired transactional ids (every
/// transaction.remove.expired.transaction.cleanup.interval.ms).
/// </summary>
public sealed class TransactionCoordinatorHost(
    TransactionCoordinator coordinator,
    MetadataWatcher watcher,
    LogManager logs,
    ReplicaManager replicas,
    IOptions<BrokerOptions> options,
    TimeProvider time,
    ILogger<TransactionCoordinatorHost> logger) : BackgroundService
{
    private readonly CoordinatorPartitionFollower _follower = new(TransactionStateTopic.Name, coordinator.States, watcher, logs, replicas, options.Value.BrokerId, logger);

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        _follower.Start();
        return base.StartAsync(cancellationToken);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _follower.Stop();
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        // Resigns every partition: writes and marker sending in flight stop (the next leader completes them).
        foreach (var partition in coordinator.States.Partitions) coordinator.States.Unload(partition);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var now = time.GetUtcNow();
        var nextAbort = now + TimeSpan.FromMilliseconds(coordinator.States.Config.AbortTimedOutIntervalMs);
        var nextExpiry = now + TimeSpan.FromMilliseconds(coordinator.States.Config.RemoveExpiredIntervalMs);
        while (!stoppingToken.IsCancellationRequested)
        {
            var wait = (nextAbort < nextExpiry ? nextAbort : nextExpiry) - time.GetUtcNow();
            try
            {
                if (wait > TimeSpan.Zero) await Task.Delay(wait, time, stoppingToken).ConfigureAwait(false);
                now = time.GetUtcNow();
                var config = coordinator.States.Config;
                if (now >= nextAbort)
                {
                    nextAbort = now + TimeSpan.FromMilliseconds(config.AbortTimedOutIntervalMs);
                    await AbortTimedOutAsync(stoppingToken).ConfigureAwait(false);
                }
                if (now >= nextExpiry)
                {
                    nextExpiry = now + TimeSpan.FromMilliseconds(config.RemoveExpiredIntervalMs);
                    await coordinator.States.RemoveExpiredAsync().ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // the periodic checks must outlive one failed round
            catch (Exception ex)
#pragma warning restore CA1031
            {
                logger.LogError(ex, "Transaction timeout/expiry round failed; next round as scheduled");
            }
        }
    }

    /// <summary>One round of Kafka's abortTimedOutTransactions: each timed-out transaction is fenced and aborted.</summary>
    public async Task AbortTimedOutAsync(CancellationToken cancellationToken)
    {
        foreach (var (id, producerId, _) in coordinator.States.TimedOutTransactions())
            await coordinator.AbortTimedOutAsync(id, producerId, cancellationToken).ConfigureAwait(false);
    }
}
