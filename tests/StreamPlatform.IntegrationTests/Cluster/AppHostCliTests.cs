using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using StreamPlatform.AppHost.Orchestration;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Cluster;

/// <summary>The AppHost command line as a user runs it: help, bad arguments, start, Ctrl+C.</summary>
[Collection(ClusterCollection.Name)]
public sealed partial class AppHostCliTests(ITestOutputHelper output)
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task HelpExitsZeroAndExplainsTheOptions()
    {
        var (exit, stdout, _) = await RunToEndAsync("--help");
        Assert.Equal(0, exit);
        Assert.Contains("--data-dir", stdout);
        Assert.Contains("--kafka-port", stdout);
        Assert.Contains("--no-restart", stdout);
        Assert.Contains("127.0.0.1:9092", stdout);
    }

    [Fact]
    public async Task ABadArgumentExitsTwoWithTheErrorAndUsage()
    {
        var (exit, _, stderr) = await RunToEndAsync("--brokers", "nine");
        Assert.Equal(2, exit);
        Assert.Contains("error: --brokers needs", stderr);
        Assert.Contains("Usage:", stderr);
    }

    [Fact]
    public async Task StartsPrintsWhereToConnectRestartsACrashedBrokerAndStopsEverythingOnSigint()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "streamplatform-tests", "cli-" + Guid.NewGuid().ToString("N"));
        var ports = PortAllocation.FindFreePorts(7);
        var stdout = new StringBuilder();
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var restarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var process = await StartCliAsync(
            ["--brokers", "1", "--data-dir", dataDir,
             "--port", $"controller.http={ports[0]}", "--port", $"controller.grpc={ports[1]}",
             "--port", $"broker-1.http={ports[2]}", "--port", $"broker-1.grpc={ports[3]}",
             "--port", $"gateway-1.http={ports[4]}", "--port", $"gateway-1.grpc={ports[5]}",
             "--kafka-port", ports[6].ToString(System.Globalization.CultureInfo.InvariantCulture)],
            line =>
            {
                lock (stdout)
                    stdout.AppendLine(line);
                if (line.Contains("StreamPlatform is running.", StringComparison.Ordinal))
                    running.TrySetResult();
                if (line.Contains("[apphost] broker-1 is healthy again (restart 1)", StringComparison.Ordinal))
                    restarted.TrySetResult();
            });
        try
        {
            var exited = process.WaitForExitAsync();
            var first = await Task.WhenAny(running.Task, exited, Task.Delay(RunTimeout));
            Assert.True(first == running.Task, "the AppHost did not report a running cluster:\n" + Snapshot(stdout));
            // The banner comes in one write; give it a moment to arrive in full.
            await Task.Delay(500);
            var banner = Snapshot(stdout);
            Assert.Contains($"Kafka bootstrap servers: 127.0.0.1:{ports[6]}", banner);
            Assert.Contains($"Data directory: {dataDir}", banner);
            Assert.Contains("Ctrl+C", banner);
            var servicePids = PidRegex().Matches(banner).Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(3, servicePids.Count);
            // The AppHost supervises by default: a broker killed from outside comes back.
            Assert.Contains("restarted after a backoff", banner);
            using (var broker = Process.GetProcessById(servicePids[1]))
                broker.Kill();
            first = await Task.WhenAny(restarted.Task, exited, Task.Delay(RunTimeout));
            Assert.True(first == restarted.Task, "the AppHost did not restart broker-1:\n" + Snapshot(stdout));
            var restartedPid = RestartedPidRegex().Matches(Snapshot(stdout))
                .Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).Last();
            Assert.DoesNotContain(restartedPid, servicePids);
            servicePids.Add(restartedPid);

            using (var kill = Process.Start("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
                await kill.WaitForExitAsync();
            using var stopTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await process.WaitForExitAsync(stopTimeout.Token);

            var log = Snapshot(stdout);
            Assert.True(process.ExitCode == 0, $"exit code {process.ExitCode}\n{log}");
            Assert.Contains("[apphost] all services stopped", log);
            // Ctrl+C is a stop, not a crash of every service.
            Assert.Single(Regex.Matches(log, "restarting in"));
            // Stopped in reverse order: gateway before broker before controller.
            Assert.True(log.IndexOf("[gateway-1] stopped", StringComparison.Ordinal) < log.IndexOf("[broker-1] stopped", StringComparison.Ordinal));
            Assert.True(log.IndexOf("[broker-1] stopped", StringComparison.Ordinal) < log.IndexOf("[controller] stopped", StringComparison.Ordinal));
            Assert.All(servicePids, pid => Assert.False(SharedClusterTests.IsAlive(pid), $"service pid {pid} left behind"));
            Assert.True(Directory.Exists(Path.Combine(dataDir, "broker-1")), "data directory should be kept");
        }
        finally
        {
            ProcessControl.KillNow(process);
            output.WriteLine(Snapshot(stdout));
            if (Directory.Exists(dataDir))
                Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task ServicesDieWithAnAppHostThatIsKilledWithoutCleanup()
    {
        // kill -9 runs no exit handler: only the parent-death signal set up by ProcessControl
        // can take the services down.
        Assert.True(ProcessControl.UsesLinuxWrappers, "setsid/setpriv (util-linux) are required on Linux");
        var dataDir = Path.Combine(Path.GetTempPath(), "streamplatform-tests", "cli-" + Guid.NewGuid().ToString("N"));
        var ports = PortAllocation.FindFreePorts(7);
        var stdout = new StringBuilder();
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var process = await StartCliAsync(
            ["--brokers", "1", "--data-dir", dataDir,
             "--port", $"controller.http={ports[0]}", "--port", $"controller.grpc={ports[1]}",
             "--port", $"broker-1.http={ports[2]}", "--port", $"broker-1.grpc={ports[3]}",
             "--port", $"gateway-1.http={ports[4]}", "--port", $"gateway-1.grpc={ports[5]}",
             "--kafka-port", ports[6].ToString(System.Globalization.CultureInfo.InvariantCulture)],
            line =>
            {
                lock (stdout)
                    stdout.AppendLine(line);
                if (line.Contains("StreamPlatform is running.", StringComparison.Ordinal))
                    running.TrySetResult();
            });
        try
        {
            var first = await Task.WhenAny(running.Task, process.WaitForExitAsync(), Task.Delay(RunTimeout));
            Assert.True(first == running.Task, "the AppHost did not report a running cluster:\n" + Snapshot(stdout));
            await Task.Delay(500);
            var servicePids = PidRegex().Matches(Snapshot(stdout))
                .Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(3, servicePids.Count);

            ProcessControl.KillNow(process);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            while (servicePids.Any(SharedClusterTests.IsAlive) && DateTime.UtcNow < deadline)
                await Task.Delay(100);
            Assert.All(servicePids, pid => Assert.False(SharedClusterTests.IsAlive(pid), $"service pid {pid} outlived its AppHost"));
        }
        finally
        {
            ProcessControl.KillNow(process);
            output.WriteLine(Snapshot(stdout));
            if (Directory.Exists(dataDir))
                Directory.Delete(dataDir, recursive: true);
        }
    }

    [GeneratedRegex(@"^\s+\S+\s+pid (\d+)", RegexOptions.Multiline)]
    private static partial Regex PidRegex();

    [GeneratedRegex(@"^\[broker-1\] started \(pid (\d+)\)", RegexOptions.Multiline)]
    private static partial Regex RestartedPidRegex();

    private static string Snapshot(StringBuilder sb)
    {
        lock (sb)
            return sb.ToString();
    }

    private static async Task<Process> StartCliAsync(IEnumerable<string> args, Action<string> onStdout, Action<string>? onStderr = null)
    {
        var appHostDll = Path.Combine(AppContext.BaseDirectory, "StreamPlatform.AppHost.dll");
        var info = new ProcessStartInfo(ServiceBinaries.FindDotnetHost())
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        info.ArgumentList.Add(appHostDll);
        foreach (var a in args)
            info.ArgumentList.Add(a);
        info.Environment["NO_COLOR"] = "1";
        var process = await ProcessControl.StartAsync(info);
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) onStdout(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) (onStderr ?? onStdout)(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static async Task<(int Exit, string Stdout, string Stderr)> RunToEndAsync(params string[] args)
    {
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        using var process = await StartCliAsync(args, l => { lock (stdout) stdout.AppendLine(l); }, l => { lock (stderr) stderr.AppendLine(l); });
        using var timeout = new CancellationTokenSource(RunTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            ProcessControl.KillNow(process);
        }
        return (process.ExitCode, Snapshot(stdout), Snapshot(stderr));
    }
}
