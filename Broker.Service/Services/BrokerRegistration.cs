using Grpc.Core;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using StreamPlatform.Broker.Replication;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Controller;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Services;

/// <summary>
/// The broker's life with the controller. Start: open and recover every log, then follow
/// metadata (each snapshot drives <see cref="LogManager.ApplyMetadata"/>, then
/// <see cref="ReplicaManager.ApplyMetadata"/>), register and
/// heartbeat every heartbeat_interval_ms; register again when the controller says the broker
/// is fenced or its epoch is stale. Stop: tell the controller, then close every log cleanly.
/// <para>States: Unregistered -> Registered (RegisterBroker ok) -> Unregistered (fenced, stale
/// epoch, or controller unreachable past the session timeout) -> ... -> Stopped.</para>
/// </summary>
public sealed class BrokerRegistration : BackgroundService
{
    private static readonly TimeSpan BackoffMin = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan BackoffMax = TimeSpan.FromSeconds(2);
    private readonly ControllerService.ControllerServiceClient _controller;
    private readonly LogManager _logs;
    private readonly ReplicaManager _replicas;
    private readonly MetadataWatcher _metadata;
    private readonly BrokerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<BrokerRegistration> _logger;
    private readonly string _incarnationId = Guid.NewGuid().ToString("N");
    private volatile bool _registered;
    private long _brokerEpoch = -1;
    private long _appliedEpoch;
    // Completed when a new snapshot has been applied: the heartbeat loop reports it at once, so
    // the controller (CreateTopics waiting for writable leaders) need not wait for the interval.
    private TaskCompletionSource _applied = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public BrokerRegistration(ControllerService.ControllerServiceClient controller, LogManager logs, ReplicaManager replicas, MetadataWatcher metadata,
        IOptions<BrokerOptions> options, TimeProvider time, ILogger<BrokerRegistration> logger)
    {
        _controller = controller;
        _logs = logs;
        _replicas = replicas;
        _metadata = metadata;
        _options = options.Value;
        _time = time;
        _logger = logger;
    }

    public bool Registered => _registered;
    public long BrokerEpoch => Interlocked.Read(ref _brokerEpoch);
    /// <summary>The newest metadata epoch whose logs exist (reported in heartbeats).</summary>
    public long AppliedEpoch => Interlocked.Read(ref _appliedEpoch);

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        // Recovery before anything else: the broker must not take requests for logs not yet checked.
        _logs.LoadAll();
        _metadata.Applied += OnMetadata;
        _metadata.Start();
        return base.StartAsync(cancellationToken);
    }

    private void OnMetadata(ClusterMetadata metadata)
    {
        _logs.ApplyMetadata(metadata, _options.BrokerId);
        // Roles after logs: a partition is made leader or follower of the log just opened.
        _replicas.ApplyMetadata(metadata);
        Interlocked.Exchange(ref _appliedEpoch, metadata.Epoch);
        Interlocked.Exchange(ref _applied, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    /// <summary>The heartbeat interval, cut short when new metadata was applied since the last heartbeat.</summary>
    private async Task WaitForHeartbeatAsync(TimeSpan interval, long reportedEpoch, CancellationToken stoppingToken)
    {
        var applied = Volatile.Read(ref _applied).Task;
        if (AppliedEpoch != reportedEpoch) return;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var delay = Task.Delay(interval, _time, cts.Token);
        await Task.WhenAny(delay, applied).ConfigureAwait(false);
        await cts.CancelAsync().ConfigureAwait(false);
        stoppingToken.ThrowIfCancellationRequested();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var backoff = BackoffMin;
        var heartbeatInterval = TimeSpan.FromSeconds(1);
        var reportedEpoch = -1L;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!_registered)
                {
                    var reply = await _controller.RegisterBrokerAsync(new RegisterBrokerRequest
                    {
                        BrokerId = _options.BrokerId,
                        GrpcEndpoint = _options.AdvertisedGrpcEndpoint,
                        Rack = _options.Rack,
                        IncarnationId = _incarnationId,
                    }, deadline: Deadline(), cancellationToken: stoppingToken).ConfigureAwait(false);
                    if (reply.ErrorCode != ErrorCodes.None)
                    {
                        _logger.LogWarning("Registration refused by the controller: error {Code} {Message}", reply.ErrorCode, reply.ErrorMessage);
                        await Delay(backoff, stoppingToken).ConfigureAwait(false);
                        backoff = Next(backoff);
                        continue;
                    }
                    Interlocked.Exchange(ref _brokerEpoch, reply.BrokerEpoch);
                    heartbeatInterval = TimeSpan.FromMilliseconds(Math.Clamp(reply.HeartbeatIntervalMs, 50, 60_000));
                    _registered = true;
                    backoff = BackoffMin;
                    _logger.LogInformation("Registered broker {BrokerId} with epoch {Epoch} at {Endpoint}", _options.BrokerId, reply.BrokerEpoch, _options.AdvertisedGrpcEndpoint);
                }
                await WaitForHeartbeatAsync(heartbeatInterval, reportedEpoch, stoppingToken).ConfigureAwait(false);
                var appliedEpoch = AppliedEpoch;
                var beat = await _controller.BrokerHeartbeatAsync(new BrokerHeartbeatRequest
                {
                    BrokerId = _options.BrokerId,
                    BrokerEpoch = BrokerEpoch,
                    MetadataEpoch = appliedEpoch,
                }, deadline: Deadline(), cancellationToken: stoppingToken).ConfigureAwait(false);
                reportedEpoch = appliedEpoch;
                if (beat.Fenced || beat.ErrorCode != ErrorCodes.None)
                {
                    _logger.LogWarning("Controller answered the heartbeat with fenced={Fenced} error={Code}: registering again", beat.Fenced, beat.ErrorCode);
                    _registered = false;
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException ex) when (!stoppingToken.IsCancellationRequested)
            {
                // Unregistered until a call succeeds again: the controller may have restarted and
                // forgotten us; registering again is harmless (same incarnation id).
                _logger.LogWarning("Controller call failed ({Status}: {Detail}); retrying in {DelayMs} ms", ex.StatusCode, ex.Status.Detail, (int)backoff.TotalMilliseconds);
                _registered = false;
                await Delay(backoff, stoppingToken).ConfigureAwait(false);
                backoff = Next(backoff);
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        if (_registered)
        {
            try
            {
                await _controller.BrokerHeartbeatAsync(new BrokerHeartbeatRequest
                {
                    BrokerId = _options.BrokerId,
                    BrokerEpoch = BrokerEpoch,
                    MetadataEpoch = AppliedEpoch,
                    WantShutdown = true,
                }, deadline: DateTime.UtcNow.AddSeconds(1), cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (RpcException)
            {
                // The controller will fence us after the session timeout anyway.
            }
        }
        // No more metadata-driven log creation; the watcher itself is disposed by the container
        // (its DisposeAsync is not idempotent, so not here).
        _metadata.Applied -= OnMetadata;
        _logs.CloseAll();
        _logger.LogInformation("Broker {BrokerId} stopped; logs closed cleanly", _options.BrokerId);
    }

    private DateTime Deadline() => DateTime.UtcNow.AddMilliseconds(_options.ControllerCallTimeoutMs);

    private Task Delay(TimeSpan delay, CancellationToken token) => Task.Delay(delay, _time, token);

    private static TimeSpan Next(TimeSpan backoff) => TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, BackoffMax.Ticks));
}

/// <summary>
/// The flush.ms half of the flush policy: once a second, fsyncs logs whose oldest unflushed
/// append is older than their flush.ms (flush.messages is applied on append).
/// </summary>
public sealed class LogFlushScheduler(LogManager logs, TimeProvider time, ILogger<LogFlushScheduler> logger) : BackgroundService
{
    private static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(CheckInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                foreach (var log in logs.Logs)
                {
                    try
                    {
                        log.FlushIfDue();
                    }
                    catch (IOException ex)
                    {
                        logger.LogError(ex, "Flushing {Partition} failed", log.TopicPartition);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping: the logs are flushed by their clean close.
        }
    }
}

/// <summary>
/// Ready only when logs are recovered, the broker is registered and it has applied the metadata
/// of its own registration (the broker epoch is that record's epoch): from then on it knows the
/// leaderships the registration gave it and has their logs open, so it serves them.
/// </summary>
public sealed class BrokerReadinessCheck(LogManager logs, BrokerRegistration registration, MetadataWatcher metadata) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!logs.Loaded) return Task.FromResult(HealthCheckResult.Unhealthy("Recovering logs."));
        if (!registration.Registered) return Task.FromResult(HealthCheckResult.Unhealthy("Not registered with the controller."));
        if (metadata.Current.Epoch <= 0) return Task.FromResult(HealthCheckResult.Unhealthy("No metadata applied yet."));
        if (registration.AppliedEpoch < registration.BrokerEpoch)
            return Task.FromResult(HealthCheckResult.Unhealthy($"Metadata of its registration (epoch {registration.BrokerEpoch}) not applied yet."));
        return Task.FromResult(HealthCheckResult.Healthy($"Broker epoch {registration.BrokerEpoch}, metadata epoch {metadata.Current.Epoch}."));
    }
}
