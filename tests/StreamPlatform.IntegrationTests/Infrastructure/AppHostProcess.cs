using System.Diagnostics;
using System.Text;
using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.IntegrationTests.Infrastructure;

/// <summary>
/// `dotnet run --project AppHost` as a user runs it, in its own process group (setsid) so a test
/// can send it the SIGINT a terminal's Ctrl+C sends. Reads the bootstrap address and dashboard URL
/// the AppHost prints once the cluster is healthy. Dispose kills whatever is left (the group, and
/// every process that carries this run's unique data directory or Kafka port in its environment)
/// and deletes the data directory.
/// </summary>
public sealed class AppHostProcess : IAsyncDisposable
{
    /// <summary>Lines of output kept for failure messages.</summary>
    public const int OutputLinesMax = 2000;

    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly TaskCompletionSource<string> _bootstrap = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<string> _dashboard = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private AppHostProcess(Process process, string dataDir, string runId)
    {
        _process = process;
        DataDir = dataDir;
        RunId = runId;
    }

    /// <summary>
    /// A unique value in the AppHost's environment (STREAMPLATFORM_TEST_RUN); every process it
    /// starts, DCP's included, inherits it, so what this run left behind can be found.
    /// </summary>
    public string RunId { get; }

    public string DataDir { get; }

    public int ProcessGroupId => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Starts the AppHost on a new data directory under the temp folder, which <see cref="DisposeAsync"/> deletes.</summary>
    public static AppHostProcess StartInTempDataDir(params string[] options) =>
        Start(Path.Combine(Path.GetTempPath(), "streamplatform-tests", Guid.NewGuid().ToString("N")), options);

    private static AppHostProcess Start(string dataDir, string[] options)
    {
        var binaries = ServiceBinaries.FromBuild();
        var start = new ProcessStartInfo("setsid")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = binaries.RepoRoot,
        };
        foreach (var a in new[] { ServiceBinaries.FindDotnetHost(), "run", "--project", "AppHost", "--no-build", "-c", binaries.Configuration, "--", "--data-dir", dataDir })
            start.ArgumentList.Add(a);
        foreach (var o in options)
            start.ArgumentList.Add(o);
        var runId = Guid.NewGuid().ToString("N");
        start.Environment["STREAMPLATFORM_TEST_RUN"] = runId;
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the AppHost");
        var host = new AppHostProcess(process, dataDir, runId);
        process.OutputDataReceived += (_, e) => host.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => host.OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return host;
    }

    public string Output
    {
        get
        {
            lock (_lines)
                return string.Join(Environment.NewLine, _lines);
        }
    }

    /// <summary>The "Kafka bootstrap servers: ..." the AppHost prints once every service is healthy.</summary>
    public Task<string> BootstrapServers => _bootstrap.Task;

    /// <summary>The "Dashboard: ..." login URL printed with it.</summary>
    public Task<string> DashboardUrl => _dashboard.Task;

    private void OnLine(string? line)
    {
        if (line is null)
        {
            _bootstrap.TrySetException(new InvalidOperationException($"The AppHost ended before the cluster was up:{Environment.NewLine}{Output}"));
            _dashboard.TrySetException(new InvalidOperationException("The AppHost ended before printing the dashboard URL."));
            return;
        }
        lock (_lines)
        {
            if (_lines.Count == OutputLinesMax)
                _lines.RemoveAt(0);
            _lines.Add(line);
        }
        if (line.StartsWith(StreamPlatform.AppHost.Hosting.ClusterReadiness.BootstrapLinePrefix, StringComparison.Ordinal))
            _bootstrap.TrySetResult(line[StreamPlatform.AppHost.Hosting.ClusterReadiness.BootstrapLinePrefix.Length..].Trim());
        if (line.StartsWith(StreamPlatform.AppHost.Hosting.ClusterReadiness.DashboardLinePrefix, StringComparison.Ordinal))
            _dashboard.TrySetResult(line[StreamPlatform.AppHost.Hosting.ClusterReadiness.DashboardLinePrefix.Length..].Trim());
    }

    /// <summary>Waits until a line of output contains <paramref name="text"/>; false after <paramref name="timeout"/> or when the AppHost ends.</summary>
    public async Task<bool> WaitForOutputAsync(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            lock (_lines)
            {
                if (_lines.Any(l => l.Contains(text, StringComparison.Ordinal)))
                    return true;
            }
            if (_process.HasExited)
                return false;
            await Task.Delay(200);
        }
        return false;
    }

    /// <summary>
    /// The process of a service itself (its executable or dll is <paramref name="project"/>), not the
    /// `dotnet run` DCP starts around it; empty when none runs.
    /// </summary>
    public IReadOnlyList<int> ServiceProcesses(string project) =>
        ProcessesOfThisRun().Where(pid => IsServiceItself(pid, project)).ToList();

    private static bool IsServiceItself(int pid, string project)
    {
        try
        {
            var args = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries);
            return args.Length > 0 && (Path.GetFileName(args[0]) == project || args.Any(a => Path.GetFileName(a) == project + ".dll"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Sends <paramref name="signal"/> (e.g. "INT") to the whole process group, as a terminal's Ctrl+C does.</summary>
    public async Task SignalGroupAsync(string signal)
    {
        var result = await ExternalProcess.RunAsync("kill", [$"-{signal}", "--", $"-{ProcessGroupId}"]);
        if (result.ExitCode != 0)
            throw new InvalidOperationException($"kill -{signal} failed: {result}");
    }

    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>
    /// Processes that belong to this run: every process of the AppHost's group, and those whose
    /// environment carries <see cref="RunId"/> or names this run's data directory.
    /// </summary>
    public IReadOnlyList<int> ProcessesOfThisRun()
    {
        var needles = new[] { RunId, DataDir }.Select(Encoding.UTF8.GetBytes).ToList();
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == Environment.ProcessId)
                continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                // fields[0] is the state; a zombie is gone already, its parent just has not reaped it.
                if (fields[0] == "Z")
                    continue;
                if (int.Parse(fields[2], System.Globalization.CultureInfo.InvariantCulture) == ProcessGroupId)
                {
                    found.Add(pid);
                    continue;
                }
                var environ = File.ReadAllBytes(Path.Combine(dir, "environ"));
                if (needles.Any(n => environ.AsSpan().IndexOf(n) >= 0))
                    found.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                // The process ended while we looked, or is not ours to read.
            }
        }
        return found;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            await ExternalProcess.RunAsync("kill", ["-KILL", "--", $"-{ProcessGroupId}"]);
            await WaitForExitAsync(TimeSpan.FromSeconds(10));
        }
        foreach (var pid in ProcessesOfThisRun())
        {
            try
            {
                Process.GetProcessById(pid).Kill(entireProcessTree: true);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
            {
            }
        }
        _process.Dispose();
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Already gone, or a file still held: the temp folder is cleaned eventually.
        }
    }
}
