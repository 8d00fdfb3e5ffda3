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
}

/// <summary>
/// Runs a <see cref="ClusterTopology"/> as local processes, the way Aspire's DistributedApplication
/// would: controller, then brokers, then gateways, each gated on GET /health; stops them in reverse
/// order. Single services can be stopped, killed, started and restarted (tests use this for
/// failover and recovery). Disposing stops everything; children never outlive the process
/// (see <see cref="ProcessControl"/>).
/// </summary>
public sealed class ClusterOrchestrator : IAsyncDisposable
{
    private const string Source = "apphost";

    private readonly OrchestratorOptions _options;
    private readonly HttpClient _http;
    private readonly ServiceBinaries _binaries;
    private readonly SemaphoreSlim _lifecycle = new(1, 1);
    private readonly List<ServiceInstance> _services;
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
        var hosting = HostingContext.Local(topology.Options.DataDir);
        _services = topology.Resources
            .Select(r => new ServiceInstance(r, LocalEnvironment(topology, r, hosting),
                r.HasData ? hosting.DataDirectory(r) : null, _options.Output, _http))
            .ToList();
    }

    public ClusterTopology Topology { get; }

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
                        await service.StartProcessAsync(_binaries, _dotnetHost).ConfigureAwait(false);
                    await service.WaitHealthyAsync(_options.HealthTimeout, _options.HealthPollInterval, cancellationToken)
                        .ConfigureAwait(false);
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
            await service.StartProcessAsync(_binaries, _dotnetHost).ConfigureAwait(false);
            await service.WaitHealthyAsync(_options.HealthTimeout, _options.HealthPollInterval, cancellationToken)
                .ConfigureAwait(false);
        }, cancellationToken);

    /// <summary>Graceful stop of one service: SIGTERM, then SIGKILL after the grace period.</summary>
    public Task StopServiceAsync(string name, CancellationToken cancellationToken = default) =>
        WithLifecycle(() => this[name].StopProcessAsync(_options.StopGracePeriod), cancellationToken);

    /// <summary>kill -9 of one service (it gets no chance to flush or deregister).</summary>
    public Task KillServiceAsync(string name, CancellationToken cancellationToken = default) =>
        WithLifecycle(() => this[name].KillProcessAsync(), cancellationToken);

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
