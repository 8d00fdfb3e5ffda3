namespace StreamPlatform.AppHost.Orchestration;

/// <summary>Knobs of the local orchestrator. Every wait is bounded.</summary>
public sealed class OrchestratorOptions
{
    /// <summary>Where service output and progress go; default: the console with [name] prefixes.</summary>
    public IOutputSink Output { get; set; } = new ConsoleOutputSink();

    /// <summary>How long one service may take to answer /health with 200.</summary>
    public TimeSpan HealthTimeout { get; set; } = TimeSpan.FromSeconds(90);

    public TimeSpan HealthPollInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>How long a service gets to exit after SIGTERM before it is killed.</summary>
    public TimeSpan StopGracePeriod { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Where the service builds are; default: the ones built with this AppHost.</summary>
    public ServiceBinaries? Binaries { get; set; }

    /// <summary>Fail fast with a clear message when a port is taken before starting.</summary>
    public bool CheckPortsFree { get; set; } = true;

    /// <summary>
    /// Console logs of the services as one line per entry with a timestamp, so the [name]
    /// prefix reads well. Adds Logging__Console__FormatterOptions__* to each process's
    /// environment (local runs only; not part of the topology's environment).
    /// </summary>
    public bool SingleLineConsoleLogs { get; set; } = true;

    /// <summary>Backoff and limits of restarts after a crash (when <see cref="ClusterOptions.RestartCrashed"/> is on).</summary>
    public RestartPolicy Restart { get; set; } = new();

    /// <summary>The clock of restart backoffs (tests use a fake one).</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}

/// <summary>
/// Runs a <see cref="ClusterTopology"/> as local processes, the way Aspire's DistributedApplication
/// would: controller, then brokers, then gateways, each gated on GET /health; stops them in reverse
/// order. Single services can be stopped, killed, started and restarted (tests use this for
/// failover and recovery). Disposing stops everything; children never outlive the process
/// (see <see cref="ProcessControl"/>).
/// <para>
/// Supervision (<see cref="ClusterOptions.RestartCrashed"/>): a service that was healthy and
/// whose process then ends without the orchestrator asking (a crash, kill -9 from outside, an
/// exit of its own) is started again with the same name, ports, data and environment after a
/// backoff (<see cref="RestartPolicy"/>), and the log says so. Stops, kills and starts through
/// this API are deliberate: they cancel a pending restart and never cause one;
/// <see cref="CrashServiceAsync"/> is the one way to kill a service as a crash.
/// </para>
/// </summary>
public sealed class ClusterOrchestrator : IAsyncDisposable
{
    private const string Source = "apphost";

    private readonly OrchestratorOptions _options;
    private readonly HttpClient _http;
    private readonly ServiceBinaries _binaries;
    private readonly SemaphoreSlim _lifecycle = new(1, 1);
    private readonly List<ServiceInstance> _services;
    /// <summary>Supervisor restarts in flight (waiting out a backoff or for health); disposal waits for them.</summary>
    private readonly HashSet<Task> _restarts = [];
    private DataDirectory? _dataDirectory;
    private string? _dotnetHost;
    private bool _disposed;

    public ClusterOrchestrator(ClusterTopology topology, OrchestratorOptions? options = null)
    {
        Topology = topology ?? throw new ArgumentNullException(nameof(topology));
        _options = options ?? new OrchestratorOptions();
        _binaries = _options.Binaries ?? ServiceBinaries.FromBuild();
        // No proxy: health probes go to 127.0.0.1 whatever http_proxy says.
        _http = new HttpClient(new SocketsHttpHandler { UseProxy = false, ConnectTimeout = TimeSpan.FromSeconds(2) })
        {
            Timeout = TimeSpan.FromSeconds(5),
        };
        _options.Restart.Validate();
        var hosting = HostingContext.Local(topology.Options.DataDir);
        _services = topology.Resources
            .Select(r => new ServiceInstance(r, LocalEnvironment(topology, r, hosting),
                r.HasData ? hosting.DataDirectory(r) : null, _options.Output, _http,
                new RestartBackoff(_options.Restart, _options.TimeProvider), OnExitedUnexpectedly))
            .ToList();
    }

    public ClusterTopology Topology { get; }

    /// <summary>Whether crashed services are restarted (<see cref="ClusterOptions.RestartCrashed"/>).</summary>
    public bool RestartCrashed => Topology.Options.RestartCrashed;

    /// <summary>Kafka bootstrap servers, e.g. "127.0.0.1:9092".</summary>
    public string BootstrapServers => Topology.BootstrapServers;

    public string DataDir => Path.GetFullPath(Topology.Options.DataDir);

    /// <summary>All services in start order.</summary>
    public IReadOnlyList<ServiceInstance> Services => _services;

    public ServiceInstance Controller => _services[0];

    public IEnumerable<ServiceInstance> Brokers => _services.Where(s => s.Resource.Kind == ServiceKind.Broker);

    public IEnumerable<ServiceInstance> Gateways => _services.Where(s => s.Resource.Kind == ServiceKind.Gateway);

    public ServiceInstance this[string name] =>
        _services.FirstOrDefault(s => s.Name == name)
        ?? throw new KeyNotFoundException(
            $"No service named '{name}'. Services: {string.Join(", ", _services.Select(s => s.Name))}.");

    /// <summary>Ids of service processes that are still alive.</summary>
    public IReadOnlyList<int> LiveProcessIds =>
        _services.Where(s => s.IsProcessAlive && s.ProcessId is not null).Select(s => s.ProcessId!.Value).ToArray();

    /// <summary>
    /// Starts every service that is not running, in order, each health-gated; also used to start
    /// the whole cluster again after <see cref="StopAsync"/> (same ports, same data). On failure
    /// stops every service and throws an <see cref="OrchestrationException"/> quoting the failing
    /// service's last output.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _lifecycle.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Fail before starting anything when a build is missing or a port is taken.
            foreach (var service in _services)
                _binaries.RequireServiceDll(service.Resource);
            _dotnetHost ??= ServiceBinaries.FindDotnetHost();
            if (_options.CheckPortsFree)
                CheckPortsFree(_services);
            _dataDirectory ??= DataDirectory.Acquire(Topology.Options.DataDir);

            Report($"starting {_services.Count} services (data in {DataDir})");
            try
            {
                foreach (var service in _services)
                {
                    // Already running (e.g. StartAsync after a partial restart): only health-check it.
                    if (!service.IsProcessAlive)
                    {
                        service.Supervision.Disarm();
                        await service.StartProcessAsync(_binaries, _dotnetHost).ConfigureAwait(false);
                    }
                    await service.WaitHealthyAsync(_options.HealthTimeout, _options.HealthPollInterval, cancellationToken)
                        .ConfigureAwait(false);
                    service.Supervision.Arm();
                }
            }
            catch
            {
                Report("start failed; stopping the services already started");
                await StopAllCoreAsync().ConfigureAwait(false);
                throw;
            }
            Report($"cluster healthy; Kafka bootstrap servers: {BootstrapServers}");
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>Stops gateways, then brokers, then the controller (each tier in parallel). Idempotent.</summary>
    public async Task StopAsync()
    {
        await _lifecycle.WaitAsync().ConfigureAwait(false);
        try
        {
            await StopAllCoreAsync().ConfigureAwait(false);
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>Starts one stopped (or crashed) service and waits until it is healthy.</summary>
    public Task StartServiceAsync(string name, CancellationToken cancellationToken = default) =>
        WithLifecycle(async () =>
        {
            var service = this[name];
            _dotnetHost ??= ServiceBinaries.FindDotnetHost();
            service.Supervision.Disarm();
            await service.StartProcessAsync(_binaries, _dotnetHost).ConfigureAwait(false);
            await service.WaitHealthyAsync(_options.HealthTimeout, _options.HealthPollInterval, cancellationToken)
                .ConfigureAwait(false);
            service.Supervision.Arm();
        }, cancellationToken);

    /// <summary>Graceful stop of one service: SIGTERM, then SIGKILL after the grace period. It stays down (no supervisor restart).</summary>
    public Task StopServiceAsync(string name, CancellationToken cancellationToken = default) =>
        WithLifecycle(() =>
        {
            var service = this[name];
            service.Supervision.Disarm();
            return service.StopProcessAsync(_options.StopGracePeriod);
        }, cancellationToken);

    /// <summary>
    /// Deliberate kill -9 of one service (it gets no chance to flush or deregister). It stays down
    /// until started again, whether or not the supervisor is on: fault tests decide when it returns.
    /// </summary>
    public Task KillServiceAsync(string name, CancellationToken cancellationToken = default) =>
        WithLifecycle(() =>
        {
            var service = this[name];
            service.Supervision.Disarm();
            return service.KillProcessAsync();
        }, cancellationToken);

    /// <summary>
    /// kill -9 of one service as a crash: the supervisor (when <see cref="RestartCrashed"/>) restarts
    /// it after its backoff, exactly as after a kill from outside; otherwise it stays down (state
    /// <see cref="ServiceState.Exited"/>). Returns once the process is gone, not when it is back
    /// (<see cref="WaitRestartedAsync"/> waits for that).
    /// </summary>
    public Task CrashServiceAsync(string name, CancellationToken cancellationToken = default) =>
        WithLifecycle(() => this[name].CrashProcessAsync("to simulate a crash"), cancellationToken);

    /// <summary>
    /// Waits until restart number <paramref name="restartNumber"/> (or a later one) of the supervisor
    /// has made <paramref name="name"/> healthy and it is running.
    /// Throws <see cref="TimeoutException"/> after <paramref name="timeout"/>.
    /// </summary>
    public async Task WaitRestartedAsync(string name, int restartNumber, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var service = this[name];
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            while (!(service.Supervision.LastHealthyRestart >= restartNumber && service.State == ServiceState.Running))
                await Task.Delay(_options.HealthPollInterval, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException(
                $"{name} was not restarted and healthy within {RestartPolicy.Format(timeout)} " +
                $"(waiting for restart {restartNumber}; restarts so far {service.RestartCount}, state {service.State}).");
        }
    }

    /// <summary>Stops (or, with <paramref name="kill"/>, kills) one service, starts it again on the same ports and data, and waits until healthy.</summary>
    public async Task RestartServiceAsync(string name, bool kill = false, CancellationToken cancellationToken = default)
    {
        if (kill)
            await KillServiceAsync(name, cancellationToken).ConfigureAwait(false);
        else
            await StopServiceAsync(name, cancellationToken).ConfigureAwait(false);
        await StartServiceAsync(name, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Waits until a running service answers /health (e.g. after it was restarted elsewhere).</summary>
    public Task WaitHealthyAsync(string name, CancellationToken cancellationToken = default) =>
        this[name].WaitHealthyAsync(_options.HealthTimeout, _options.HealthPollInterval, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
            return;
        await StopAsync().ConfigureAwait(false);
        // StopAsync disarmed every service, which cancelled restarts in flight; let them finish.
        Task[] restarts;
        lock (_restarts)
            restarts = [.. _restarts];
        await Task.WhenAll(restarts).ConfigureAwait(false);
        _disposed = true;
        _dataDirectory?.Dispose();
        _dataDirectory = null;
        _http.Dispose();
    }

    private async Task WithLifecycle(Func<Task> action, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _lifecycle.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await action().ConfigureAwait(false);
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    private async Task StopAllCoreAsync()
    {
        // First: no restart may start a service this stop has already passed.
        foreach (var service in _services)
            service.Supervision.Disarm();
        if (!_services.Any(s => s.IsProcessAlive))
            return;
        Report("stopping the cluster");
        foreach (var tier in new[] { ServiceKind.Gateway, ServiceKind.Broker, ServiceKind.Controller })
        {
            await Task.WhenAll(_services.Where(s => s.Resource.Kind == tier)
                .Select(s => s.StopProcessAsync(_options.StopGracePeriod))).ConfigureAwait(false);
        }
        Report("all services stopped");
    }

    /// <summary>A service's process ended and nothing here asked it to (runs on the process's exit event).</summary>
    private void OnExitedUnexpectedly(ServiceInstance service, int exitCode)
    {
        ScheduleRestart(service, $"{service.Name} exited with code {exitCode} ({ProcessControl.DescribeExitCode(exitCode)})");
    }

    /// <summary>Reports <paramref name="what"/> happened to a service and, when it is supervised, restarts it after its backoff.</summary>
    private void ScheduleRestart(ServiceInstance service, string what)
    {
        if (!RestartCrashed)
        {
            Report($"{what}; not restarting it (restart of crashed services is off)");
            return;
        }
        if (_disposed || service.Supervision.Token is not { } token)
        {
            // Not supervised yet: a start is waiting for this service and reports the failure.
            Report(what);
            return;
        }
        var decision = service.Supervision.Backoff.OnCrash();
        if (decision.GiveUp)
        {
            service.Supervision.Disarm();
            Report($"GIVING UP on {service.Name}: {what}, after {decision.RecentRestarts} restarts within " +
                   $"{RestartPolicy.Format(_options.Restart.RestartLimitWindow)} (limit {_options.Restart.RestartLimitCount}). " +
                   $"It stays down; its last output is above. Fix the cause, then start it again (or restart the AppHost).");
            return;
        }
        Report($"{what}; restarting in {RestartPolicy.Format(decision.Delay)} (restart {decision.RestartNumber})");
        var restart = RestartAfterAsync(service, decision, token);
        lock (_restarts)
        {
            if (!restart.IsCompleted)
                _restarts.Add(restart);
        }
        _ = restart.ContinueWith(t =>
        {
            lock (_restarts)
                _restarts.Remove(t);
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>
    /// Waits out the backoff, starts the service again (same ports, data and environment) and waits
    /// for its health. Never throws: a deliberate stop or start (the token) ends it quietly, and a
    /// failed attempt becomes the next crash of the loop.
    /// </summary>
    private async Task RestartAfterAsync(ServiceInstance service, RestartDecision decision, CancellationToken token)
    {
        var processStarted = false;
        try
        {
            await Task.Delay(decision.Delay, _options.TimeProvider, token).ConfigureAwait(false);
            await _lifecycle.WaitAsync(token).ConfigureAwait(false);
            try
            {
                // Under the lock a deliberate stop/start either came first (token cancelled) or waits.
                token.ThrowIfCancellationRequested();
                if (service.State != ServiceState.Exited)
                    return;
                _dotnetHost ??= ServiceBinaries.FindDotnetHost();
                await service.StartProcessAsync(_binaries, _dotnetHost).ConfigureAwait(false);
                processStarted = true;
            }
            finally
            {
                _lifecycle.Release();
            }
            // Outside the lock, so a stop is not held up by a slow start; a stop cancels this wait.
            await service.WaitHealthyAsync(_options.HealthTimeout, _options.HealthPollInterval, token).ConfigureAwait(false);
            service.Supervision.Backoff.OnHealthy();
            Report($"{service.Name} is healthy again (restart {decision.RestartNumber})");
            service.Supervision.RestartHealthy(decision.RestartNumber);
        }
        catch (Exception) when (token.IsCancellationRequested)
        {
            // A deliberate stop, kill or start took over (whatever the attempt was doing then).
        }
        catch (Exception e)
        {
            if (service.IsProcessAlive)
            {
                // Started but never healthy: kill it so the loop goes on with the next backoff.
                Report($"{service.Name} did not become healthy after restart {decision.RestartNumber}: {e.Message}");
                await service.CrashProcessAsync("(not healthy after a restart)").ConfigureAwait(false);
            }
            else if (!processStarted)
            {
                // The process could not even be started (e.g. the build is gone): that is a crash too.
                ScheduleRestart(service, $"could not restart {service.Name}: {e.Message}");
            }
            // Otherwise it died before it was healthy: its exit event has reported that and decided what next.
        }
    }

    private IReadOnlyDictionary<string, string> LocalEnvironment(ClusterTopology topology, ServiceResource resource, HostingContext hosting)
    {
        var env = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (_options.SingleLineConsoleLogs)
        {
            env["Logging__Console__FormatterName"] = "simple";
            env["Logging__Console__FormatterOptions__SingleLine"] = "true";
            env["Logging__Console__FormatterOptions__TimestampFormat"] = "HH:mm:ss.fff ";
        }
        // The topology's own environment (and explicit extra settings) win.
        foreach (var (name, value) in ServiceEnvironment.Build(topology, resource, hosting))
            env[name] = value;
        return env;
    }

    private static void CheckPortsFree(IEnumerable<ServiceInstance> services)
    {
        var taken = services
            .SelectMany(s => s.Resource.Endpoints.Select(e => (Service: s, Endpoint: e)))
            .Where(x => !x.Service.IsProcessAlive && !PortAllocation.IsFree(x.Endpoint.Port))
            .Select(x => $"{x.Endpoint.Port} ({x.Service.Name} {x.Endpoint.Name})")
            .ToList();
        if (taken.Count > 0)
        {
            throw new OrchestrationException(
                $"Port(s) already in use on 127.0.0.1: {string.Join(", ", taken)}. Is another cluster running? " +
                "Stop it, or choose other ports (AppHost --base-port / --kafka-port).");
        }
    }

    private void Report(string message) =>
        _options.Output.Write(new OutputLine(DateTimeOffset.Now, Source, OutputKind.Orchestrator, message));
}
