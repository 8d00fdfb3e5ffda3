using System.Diagnostics;
using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.IntegrationTests.Infrastructure;

/// <summary>
/// One run of a tests/StreamPlatform.EosApps application (copy, count) as its own process, so a
/// test can kill it -9 mid-run as a crash would. Its output lines are kept (bounded) and passed to
/// <c>log</c>. Dispose kills it if it still runs.
/// </summary>
public sealed class EosAppProcess : IDisposable
{
    /// <summary>Lines kept for waits and failure messages; older ones are dropped.</summary>
    private const int LinesMax = 2000;

    private readonly Process _process;
    private readonly Queue<string> _lines = new();
    private long _lineCount;
    private readonly Action<string> _log;
    private readonly string _name;

    private EosAppProcess(Process process, string name, Action<string> log)
    {
        _process = process;
        _name = name;
        _log = log;
    }

    /// <summary>Build output of tests/StreamPlatform.EosApps (the test project builds it, same configuration).</summary>
    public static string DllPath
    {
        get
        {
            var b = ServiceBinaries.FromBuild();
            var path = Path.Combine(b.RepoRoot, "tests", "StreamPlatform.EosApps", "bin", b.Configuration, b.TargetFramework,
                "StreamPlatform.EosApps.dll");
            return File.Exists(path)
                ? path
                : throw new InvalidOperationException($"{path} does not exist: build tests/StreamPlatform.EosApps (dotnet build StreamPlatform.sln builds it).");
        }
    }

    public static EosAppProcess Start(string name, IEnumerable<string> arguments, Action<string> log)
    {
        var start = new ProcessStartInfo(ServiceBinaries.FindDotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(DllPath);
        foreach (var a in arguments) start.ArgumentList.Add(a);
        var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {name}");
        var app = new EosAppProcess(process, name, log);
        process.OutputDataReceived += (_, e) => app.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => app.OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        log($"[{name}] started pid {process.Id}: {string.Join(' ', start.ArgumentList.Skip(1))}");
        return app;
    }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>The last lines it printed (at most <see cref="LinesMax"/>).</summary>
    public IReadOnlyList<string> Lines()
    {
        lock (_lines)
            return _lines.ToArray();
    }

    /// <summary>Waits for a line printed from now on that satisfies <paramref name="match"/>; false after the timeout or when the process ended.</summary>
    public async Task<bool> WaitForNextLineAsync(Func<string, bool> match, TimeSpan timeout)
    {
        long seen;
        lock (_lines)
            seen = _lineCount;
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline && !_process.HasExited)
        {
            lock (_lines)
            {
                var fresh = (int)Math.Min(_lineCount - seen, _lines.Count);
                if (_lines.Skip(_lines.Count - fresh).Any(match))
                    return true;
            }
            await Task.Delay(5);
        }
        return false;
    }

    /// <summary>Waits until a line satisfies <paramref name="match"/>; false after the timeout or when the process ended first.</summary>
    public async Task<bool> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (Lines().Any(match))
                return true;
            if (_process.HasExited)
                return Lines().Any(match);
            await Task.Delay(50);
        }
        return false;
    }

    /// <summary>kill -9 (Process.Kill is SIGKILL on Unix): no shutdown code runs, open transactions stay open.</summary>
    public void Kill()
    {
        if (_process.HasExited)
            return;
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit(10_000);
        _log($"[{_name}] killed -9");
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private void OnLine(string? line)
    {
        if (line is null)
            return;
        lock (_lines)
        {
            _lines.Enqueue(line);
            _lineCount++;
            if (_lines.Count > LinesMax)
                _lines.Dequeue();
        }
        _log($"[{_name}] {line}");
    }
}
