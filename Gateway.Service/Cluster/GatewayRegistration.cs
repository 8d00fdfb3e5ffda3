using Grpc.Core;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.Gateway.Cluster;

/// <summary>
/// Registers this gateway with the controller, heartbeats it, and registers again whenever the
/// controller says it is fenced (missed heartbeats, controller restart). Also starts the metadata
/// watch and keeps the broker channel pool in step with it.
/// States: Unregistered -> Registered (RegisterGateway ok) -> Unregistered (heartbeat says fenced
/// or returns an error) -> Registered ...; an RPC failure leaves the state as it is and retries.
/// </summary>
public sealed class GatewayRegistration(
    ControllerConnection controller,
    MetadataWatcher watcher,
    BrokerClientPool brokers,
    IOptions<GatewayOptions> options,
    TimeProvider time,
    ILogger<GatewayRegistration> logger) : BackgroundService, IHealthCheck
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan DefaultHeartbeat = TimeSpan.FromSeconds(2);
    private volatile bool _registered;

    public bool IsRegistered => _registered;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        watcher.Applied += brokers.Refresh;
        watcher.Start();
        var o = options.Value;
        var interval = DefaultHeartbeat;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!_registered)
                {
                    var response = await controller.Client.RegisterGatewayAsync(new RegisterGatewayRequest
                    {
                        NodeId = o.NodeId,
                        KafkaHost = o.EffectiveAdvertisedHost,
                        KafkaPort = o.KafkaPort,
                        Rack = o.Rack ?? "",
                    }, deadline: Deadline(o), cancellationToken: stoppingToken);
                    if (response.ErrorCode != 0)
                    {
                        logger.LogWarning("RegisterGateway refused ({Code}: {Message}); retrying", response.ErrorCode, response.ErrorMessage);
                        await Task.Delay(RetryDelay, time, stoppingToken);
                        continue;
                    }
                    interval = response.HeartbeatIntervalMs > 0 ? TimeSpan.FromMilliseconds(response.HeartbeatIntervalMs) : DefaultHeartbeat;
                    _registered = true;
                    logger.LogInformation("Gateway {NodeId} registered as {Host}:{Port}", o.NodeId, o.EffectiveAdvertisedHost, o.KafkaPort);
                }
                await Task.Delay(interval, time, stoppingToken);
                var hb = await controller.Client.GatewayHeartbeatAsync(new GatewayHeartbeatRequest { NodeId = o.NodeId },
                    deadline: Deadline(o), cancellationToken: stoppingToken);
                if (hb.Fenced || hb.ErrorCode != 0)
                {
                    logger.LogWarning("Gateway {NodeId} fenced by the controller (error {Code}); registering again", o.NodeId, hb.ErrorCode);
                    _registered = false;
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException ex)
            {
                logger.LogWarning("Controller call failed ({Status}: {Detail}); retrying", ex.StatusCode, ex.Status.Detail);
                try { await Task.Delay(RetryDelay, time, stoppingToken); } catch (OperationCanceledException) { return; }
            }
        }
    }

    private DateTime Deadline(GatewayOptions o) => time.GetUtcNow().UtcDateTime.AddMilliseconds(o.ControllerCallTimeoutMs);

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!_registered) return Task.FromResult(HealthCheckResult.Unhealthy("not registered with the controller"));
        if (watcher.Current.Epoch == 0) return Task.FromResult(HealthCheckResult.Unhealthy("no metadata snapshot applied yet"));
        return Task.FromResult(HealthCheckResult.Healthy($"metadata epoch {watcher.Current.Epoch}"));
    }
}
