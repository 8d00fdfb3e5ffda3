using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace StreamPlatform.AppHost.Orchestration;

/// <summary>
/// Starting and signalling child processes so that none outlives the AppHost:
/// <list type="bullet">
/// <item>On Linux each child is started through <c>setsid</c> (own session: a Ctrl+C in the
/// terminal reaches only the AppHost, which then stops services in order) and
/// <c>setpriv --pdeathsig KILL</c> (the kernel kills the child if the AppHost dies without
/// cleaning up, e.g. kill -9 of a test host).</item>
/// <item>The parent-death signal fires when the <em>thread</em> that forked exits, so every child
/// is forked from one dedicated thread that lives as long as the process.</item>
/// <item>Every live child is registered; ProcessExit kills what is left.</item>
/// </list>
/// </summary>
public static partial class ProcessControl
{
    private const int SigTerm = 15;
    private const string SetsidPath = "/usr/bin/setsid";
    private const string SetprivPath = "/usr/bin/setpriv";

    /// <summary>How long ProcessExit waits for children after SIGTERM before SIGKILL.</summary>
    private static readonly TimeSpan ExitCleanupGrace = TimeSpan.FromSeconds(3);

    private static readonly ConcurrentDictionary<int, Process> Live = new();
    private static readonly BlockingCollection<(ProcessStartInfo Info, TaskCompletionSource<Process> Result)> StartQueue =
        new(boundedCapacity: 64);

    static ProcessControl()
    {
        var spawner = new Thread(SpawnLoop) { IsBackground = true, Name = "StreamPlatform child spawner" };
        spawner.Start();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAllChildren();
    }

    /// <summary>True when children get their own session and a parent-death signal.</summary>
    public static bool UsesLinuxWrappers { get; } =
        OperatingSystem.IsLinux() && File.Exists(SetsidPath) && File.Exists(SetprivPath);

    /// <summary>Ids of children started and not yet seen to exit.</summary>
    public static IReadOnlyCollection<int> LiveChildIds => Live.Keys.ToArray();

    /// <summary>Starts <paramref name="fileName"/> with <paramref name="arguments"/>, wrapped as described above.</summary>
    public static Task<Process> StartAsync(ProcessStartInfo info)
    {
        if (UsesLinuxWrappers)
        {
            var original = info.FileName;
            var args = info.ArgumentList.ToArray();
            info.FileName = SetsidPath;
            info.ArgumentList.Clear();
            foreach (var a in new[] { SetprivPath, "--pdeathsig", "KILL", "--", original }.Concat(args))
                info.ArgumentList.Add(a);
        }
        var tcs = new TaskCompletionSource<Process>(TaskCreationOptions.RunContinuationsAsynchronously);
        StartQueue.Add((info, tcs));
        return tcs.Task;
    }

    private static void SpawnLoop()
    {
        foreach (var (info, result) in StartQueue.GetConsumingEnumerable())
        {
            try
            {
                var process = new Process { StartInfo = info, EnableRaisingEvents = true };
                process.Start();
                Live[process.Id] = process;
                var id = process.Id;
                process.Exited += (_, _) => Live.TryRemove(id, out _);
                if (process.HasExited)
                    Live.TryRemove(id, out _);
                result.SetResult(process);
            }
            catch (Exception e)
            {
                result.SetException(e);
            }
        }
    }

    /// <summary>Asks a process to shut down: SIGTERM on Unix (the .NET host stops gracefully), kill elsewhere.</summary>
    public static void RequestStop(Process process)
    {
        try
        {
            if (process.HasExited)
                return;
            if (OperatingSystem.IsWindows())
            {
                process.Kill(entireProcessTree: true);
                return;
            }
            // setsid and setpriv exec into dotnet, so the pid we hold is the service itself.
            _ = SysKill(process.Id, SigTerm);
        }
        catch (InvalidOperationException)
        {
            // Exited between the check and the signal.
        }
    }

    /// <summary>SIGKILL to the process and anything it started.</summary>
    public static void KillNow(Process process)
    {
        try
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // Already gone or not ours any more.
        }
    }

    /// <summary>Last resort on exit: SIGTERM everything left, a short grace, then SIGKILL.</summary>
    public static void KillAllChildren()
    {
        var left = Live.Values.ToArray();
        if (left.Length == 0)
            return;
        foreach (var p in left)
            RequestStop(p);
        var deadline = Stopwatch.StartNew();
        foreach (var p in left)
        {
            var remaining = ExitCleanupGrace - deadline.Elapsed;
            try
            {
                if (remaining <= TimeSpan.Zero || !p.WaitForExit(remaining))
                    KillNow(p);
            }
            catch (InvalidOperationException)
            {
            }
        }
    }

    /// <summary>
    /// Why a process ended, from its exit code, for log lines: .NET reports a child killed by a
    /// signal as 128 + the signal number (as shells do), so 137 is SIGKILL (kill -9, the OOM
    /// killer) and 139 a segfault.
    /// </summary>
    public static string DescribeExitCode(int exitCode) => exitCode switch
    {
        0 => "no error, but nothing asked it to stop",
        128 + 1 => "killed by SIGHUP",
        128 + 2 => "interrupted, SIGINT",
        128 + 6 => "aborted, SIGABRT",
        128 + 9 => "killed, SIGKILL",
        128 + 11 => "crashed, SIGSEGV",
        128 + 15 => "terminated, SIGTERM",
        > 128 and < 128 + 65 => $"killed by signal {exitCode - 128}",
        _ => "failed",
    };

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SysKill(int pid, int signal);
}
