using System.Diagnostics;
using System.Net;

namespace StreamPlatform.AppHost.Orchestration;

/// <summary>Lifecycle of one service process. Legal moves: NotStarted/Stopped/Exited -> Starting ->
/// Running -> Stopping -> Stopped, and Starting/Running -> Exited when the process dies by itself.</summary>
public enum ServiceState
{
    NotStarted,
    Starting,
    Running,
    Stopping,
    Stopped,
    /// <summary>The process ended without being asked to (crash, startup failure, kill from outside).</summary>
    Exited,
}

/// <summary>One service of the cluster as a process: start, health-gate, stop, kill, output.</summary>
public sealed class ServiceInstance
{
    /// <summary>How many recent output lines are kept for error messages.</summary>
    public const int RecentLineCountMax = 200;

    /// <summary>Lines of output quoted in a startup/health error.</summary>
    private const int ErrorTailLineCount = 40;

    /// <summary>Inherited variables that would fight the Kestrel endpoints we configure.</summary>
    private static readonly string[] ScrubbedVariables =
        ["ASPNETCORE_URLS", "DOTNET_URLS", "ASPNETCORE_HTTP_PORTS", "ASPNETCORE_HTTPS_PORTS", "DOTNET_LAUNCH_PROFILE"];

    private readonly object _gate = new();
    private readonly Queue<string> _recent = new();
    private readonly IOutputSink _output;
    private readonly HttpClient _http;
    private readonly Action<ServiceInstance, int> _exitedUnexpectedly;
    private Process? _process;
    private bool _stopRequested;

    internal ServiceInstance(ServiceResource resource, IReadOnlyDictionary<string, string> environment,
        string? dataDirectory, IOutputSink output, HttpClient http, RestartBackoff restarts,
        Action<ServiceInstance, int> exitedUnexpectedly)
    {
        Resource = resource;
        Environment = environment;
        DataDirectory = dataDirectory;
        _output = output;
        _http = http;
        _exitedUnexpectedly = exitedUnexpectedly;
        Supervision = new ServiceSupervision(restarts);
    }

    public ServiceResource Resource { get; }

    public string Name => Resource.Name;

    /// <summary>The environment the process gets on top of the AppHost's own.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; }

    /// <summary>Where this service keeps its data (null for gateways).</summary>
    public string? DataDirectory { get; }

    public ServiceState State { get; private set; } = ServiceState.NotStarted;

    /// <summary>Process id while a process exists (also after it exited, until the next start).</summary>
    public int? ProcessId { get; private set; }

    public int? ExitCode { get; private set; }

    /// <summary>How many times a process was started for this service.</summary>
    public int StartCount { get; private set; }

    /// <summary>How many times the supervisor restarted this service after a crash (see <see cref="ClusterOptions.RestartCrashed"/>).</summary>
    public int RestartCount => Supervision.Backoff.RestartCount;

    internal ServiceSupervision Supervision { get; }

    public Uri HttpEndpoint => EndpointUri(EndpointNames.Http);

    public Uri GrpcEndpoint => EndpointUri(EndpointNames.Grpc);

    /// <summary>"127.0.0.1:port" of a gateway's Kafka listener; null for other services.</summary>
    public string? KafkaAddress =>
        Resource.TryGetEndpoint(EndpointNames.Kafka, out var e) ? $"127.0.0.1:{e.Port}" : null;

    public Uri EndpointUri(string endpoint) => new($"http://127.0.0.1:{Resource.GetEndpoint(endpoint).Port}");

    /// <summary>The last <see cref="RecentLineCountMax"/> lines this service printed.</summary>
    public IReadOnlyList<string> RecentOutput()
    {
        lock (_gate)
            return _recent.ToArray();
    }

    /// <summary>True while the process exists and has not exited.</summary>
    public bool IsProcessAlive
    {
        get
        {
            var p = _process;
            try
            {
                return p is not null && !p.HasExited;
            }
            catch (InvalidOperationException)
            {
                return false;
            }
        }
    }

    internal async Task StartProcessAsync(ServiceBinaries binaries, string dotnetHost)
    {
        lock (_gate)
        {
            if (State is ServiceState.Starting or ServiceState.Running or ServiceState.Stopping)
                throw new OrchestrationException($"{Name} is {State}; stop it before starting it again.");
            State = ServiceState.Starting;
            _stopRequested = false;
            ExitCode = null;
        }

        try
        {
            var dll = binaries.RequireServiceDll(Resource);
            if (DataDirectory is not null)
                Directory.CreateDirectory(DataDirectory);

            var info = new ProcessStartInfo(dotnetHost)
            {
                WorkingDirectory = Path.GetDirectoryName(dll)!,
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                // The services never read stdin; giving them a pipe keeps them off the terminal.
                RedirectStandardInput = true,
            };
            info.ArgumentList.Add(dll);
            foreach (var name in ScrubbedVariables)
                info.Environment.Remove(name);
            foreach (var (name, value) in Environment)
                info.Environment[name] = value;

            var process = await ProcessControl.StartAsync(info).ConfigureAwait(false);
            process.OutputDataReceived += (_, e) => OnLine(e.Data, OutputKind.StandardOutput);
            process.ErrorDataReceived += (_, e) => OnLine(e.Data, OutputKind.StandardError);
            process.Exited += (_, _) => OnExited(process);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            lock (_gate)
            {
                _process = process;
                ProcessId = process.Id;
                StartCount++;
            }
            Report($"started (pid {process.Id}): {Path.GetFileName(dll)}, http {HttpEndpoint}");
            if (process.HasExited)
                OnExited(process);
        }
        catch
        {
            lock (_gate)
                State = ServiceState.Exited;
            throw;
        }
    }

    /// <summary>Polls GET /health until it answers 200, the process dies, or the timeout passes.</summary>
    internal async Task WaitHealthyAsync(TimeSpan timeout, TimeSpan pollInterval, CancellationToken cancellationToken)
    {
        var started = Stopwatch.StartNew();
        var healthUri = new Uri(HttpEndpoint, "/health");
        string lastProblem = "no answer yet";
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var process = _process ?? throw new OrchestrationException($"{Name} was never started.");
            if (process.HasExited)
            {
                // Let the output readers drain so the error shows the process's last words.
                await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
                throw new OrchestrationException(
                    $"{Name} exited with code {process.ExitCode} before it became healthy." + Tail());
            }

            using (var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                // One probe never takes longer than the poll budget left (bounded by 2 s).
                attempt.CancelAfter(TimeSpan.FromSeconds(2));
                try
                {
                    using var response = await _http.GetAsync(healthUri, attempt.Token).ConfigureAwait(false);
                    if (response.StatusCode == HttpStatusCode.OK)
                    {
                        lock (_gate)
                        {
                            if (State == ServiceState.Starting)
                                State = ServiceState.Running;
                        }
                        Report($"healthy after {started.Elapsed.TotalSeconds:F1} s");
                        return;
                    }
                    lastProblem = $"/health answered {(int)response.StatusCode} {response.StatusCode}";
                }
                catch (HttpRequestException e)
                {
                    lastProblem = e.Message;
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    lastProblem = "/health did not answer within 2 s";
                }
            }

            if (started.Elapsed >= timeout)
            {
                throw new OrchestrationException(
                    $"{Name} did not become healthy within {timeout.TotalSeconds:F0} s ({healthUri}: {lastProblem})." + Tail());
            }
            await Task.Delay(pollInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>SIGTERM, wait up to <paramref name="grace"/>, then SIGKILL. Returns when the process is gone.</summary>
    internal async Task StopProcessAsync(TimeSpan grace)
    {
        var process = BeginStop();
        if (process is null)
            return;
        Report("stopping (SIGTERM)");
        ProcessControl.RequestStop(process);
        if (!await WaitForExitAsync(process, grace).ConfigureAwait(false))
        {
            Report($"did not stop within {grace.TotalSeconds:F0} s; killing it");
            ProcessControl.KillNow(process);
            await WaitForExitAsync(process, TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }
        EndStop(process);
    }

    /// <summary>SIGKILL right away (a crash, as far as the service can tell), as a deliberate stop: it stays down.</summary>
    internal async Task KillProcessAsync()
    {
        var process = BeginStop();
        if (process is null)
            return;
        Report("killing (SIGKILL)");
        ProcessControl.KillNow(process);
        await WaitForExitAsync(process, TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        EndStop(process);
    }

    /// <summary>
    /// SIGKILL right away without marking it a stop: to the orchestrator it is a crash like a kill
    /// from outside, so the supervisor (when on) restarts it. Returns when the process is gone.
    /// </summary>
    internal async Task CrashProcessAsync(string reason)
    {
        var process = _process;
        if (process is null || !IsProcessAlive)
            return;
        Report($"killing (SIGKILL) {reason}");
        ProcessControl.KillNow(process);
        await WaitForExitAsync(process, TimeSpan.FromSeconds(10)).ConfigureAwait(false);
    }

    private Process? BeginStop()
    {
        lock (_gate)
        {
            _stopRequested = true;
            if (_process is null || !IsProcessAlive)
                return null;
            State = ServiceState.Stopping;
            return _process;
        }
    }

    private void EndStop(Process process)
    {
        lock (_gate)
        {
            State = ServiceState.Stopped;
            ExitCode = process.HasExited ? process.ExitCode : null;
        }
        Report(process.HasExited ? $"stopped (exit code {process.ExitCode})" : "could not be stopped");
    }

    private static async Task<bool> WaitForExitAsync(Process process, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            // Also waits for the redirected output to reach end of stream.
            await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return process.HasExited;
        }
    }

    private void OnExited(Process process)
    {
        bool unexpected;
        lock (_gate)
        {
            if (!ReferenceEquals(process, _process))
                return;
            unexpected = !_stopRequested && State is ServiceState.Starting or ServiceState.Running;
            if (unexpected)
            {
                State = ServiceState.Exited;
                ExitCode = process.ExitCode;
            }
        }
        if (unexpected)
            _exitedUnexpectedly(this, process.ExitCode);
    }

    private void OnLine(string? text, OutputKind kind)
    {
        if (text is null)
            return;
        lock (_gate)
        {
            if (_recent.Count == RecentLineCountMax)
                _recent.Dequeue();
            _recent.Enqueue(text);
        }
        _output.Write(new OutputLine(DateTimeOffset.Now, Name, kind, text));
    }

    private void Report(string message) =>
        _output.Write(new OutputLine(DateTimeOffset.Now, Name, OutputKind.Orchestrator, message));

    private string Tail()
    {
        var lines = RecentOutput();
        if (lines.Count == 0)
            return " It printed nothing.";
        var tail = lines.Skip(Math.Max(0, lines.Count - ErrorTailLineCount));
        return $"{System.Environment.NewLine}Last lines of {Name}'s output:{System.Environment.NewLine}  " +
               string.Join(System.Environment.NewLine + "  ", tail);
    }
}
