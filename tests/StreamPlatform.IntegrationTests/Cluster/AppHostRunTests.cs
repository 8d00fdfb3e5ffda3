using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using Confluent.Kafka;
using StreamPlatform.AppHost.Hosting;
using StreamPlatform.AppHost.Orchestration;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Cluster;

/// <summary>
/// README's first command as a user runs it: `dotnet run --project AppHost` (here with
/// --no-build, free ports and a temp data directory so it is parallel-safe), under DCP with the
/// Aspire dashboard; kcat and Confluent.Kafka against the printed bootstrap address; a broker killed
/// with kill -9 comes back; Ctrl+C to the process group (what a terminal sends) stops every process
/// quickly and keeps the data.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed partial class AppHostRunTests(ITestOutputHelper output)
{
    /// <summary>Start to healthy under DCP is 10-20 s here; generous for a loaded 2-core CI machine.</summary>
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(150);

    /// <summary>The acceptance bound: every service process gone this soon after Ctrl+C.</summary>
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);

    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(10) };

    [Fact]
    public async Task DotnetRunStartsTheClusterWithTheDashboardServesKafkaRestartsAKilledBrokerAndStopsEverythingOnCtrlC()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "streamplatform-tests", "apphost-run-" + Guid.NewGuid().ToString("N"));
        var log = new StringBuilder();
        var bootstrapSeen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var dashboardSeen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var brokerBack = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnLine(string line)
        {
            if (line.Contains(CrashRestarter.LogPrefix + "broker-1 is healthy again (restart 1)", StringComparison.Ordinal))
                brokerBack.TrySetResult();
            lock (log)
                log.AppendLine(line);
            if (line.StartsWith(ClusterReadiness.BootstrapLinePrefix, StringComparison.Ordinal))
                bootstrapSeen.TrySetResult(line[ClusterReadiness.BootstrapLinePrefix.Length..].Trim());
            if (line.StartsWith(ClusterReadiness.DashboardLinePrefix, StringComparison.Ordinal))
                dashboardSeen.TrySetResult(line[ClusterReadiness.DashboardLinePrefix.Length..].Trim());
        }

        using var appHost = await StartAppHostAsync(
            ["--dynamic-ports", "--data-dir", dataDir, "--brokers", "1"], OnLine);
        var servicePids = new List<int>();
        try
        {
            var exited = appHost.WaitForExitAsync();
            var ready = Task.WhenAll(bootstrapSeen.Task, dashboardSeen.Task);
            var first = await Task.WhenAny(ready, exited, Task.Delay(StartTimeout));
            Assert.True(first == ready, "the AppHost did not print the bootstrap address and the dashboard URL:\n" + Snapshot(log));
            var bootstrap = await bootstrapSeen.Task;
            var dashboard = await dashboardSeen.Task;
            Assert.Matches(@"^127\.0\.0\.1:\d+$", bootstrap);
            // Dynamic ports: not the fixed defaults, so parallel runs do not collide.
            Assert.DoesNotContain(":9092", bootstrap);
            Assert.Matches(@"^http://127\.0\.0\.1:\d+/login\?t=\S+$", dashboard);
            Assert.DoesNotContain(":18888", dashboard);

            // Every service process runs with this data directory or the controller's address in its
            // environment; each is DCP's `dotnet run` of a service or the service itself.
            servicePids = ServiceProcesses(dataDir, bootstrap);
            output.WriteLine($"service processes: {string.Join(", ", servicePids)}");
            Assert.NotEmpty(servicePids);

            // The dashboard answers on its printed URL (the login link takes the token and redirects).
            using (var response = await Http.GetAsync(dashboard))
                Assert.True(response.IsSuccessStatusCode, $"dashboard answered {(int)response.StatusCode}");

            await ProduceAndConsumeWithConfluentAsync(bootstrap);

            // kill -9 of the broker's own process (not DCP's `dotnet run` around it): the AppHost
            // starts it again after the backoff, on the same ports and data.
            var broker = servicePids.Single(pid => IsServiceItself(pid, "Broker.Service"));
            Kill(broker);
            first = await Task.WhenAny(brokerBack.Task, exited, Task.Delay(StartTimeout));
            Assert.True(first == brokerBack.Task, "the AppHost did not restart broker-1:\n" + Snapshot(log));
            Assert.Contains(CrashRestarter.LogPrefix + "broker-1 exited with code", Snapshot(log));
            var restarted = ServiceProcesses(dataDir, bootstrap);
            Assert.DoesNotContain(broker, restarted);
            Assert.Single(restarted, pid => IsServiceItself(pid, "Broker.Service"));
            servicePids = servicePids.Union(restarted).ToList();

            await ProduceAndConsumeWithKcatAsync(bootstrap);

            // Ctrl+C in a terminal: SIGINT to the whole foreground process group.
            var stopwatch = Stopwatch.StartNew();
            SignalGroup(appHost.Id, "INT");
            var deadline = DateTime.UtcNow + StopTimeout;
            while ((!appHost.HasExited || servicePids.Any(IsAlive)) && DateTime.UtcNow < deadline)
                await Task.Delay(100);
            output.WriteLine($"stopped in {stopwatch.Elapsed.TotalSeconds:0.0} s");
            Assert.All(servicePids, pid => Assert.False(IsAlive(pid), $"service process {pid} still runs {StopTimeout.TotalSeconds} s after Ctrl+C"));
            Assert.True(appHost.HasExited, $"the AppHost still runs {StopTimeout.TotalSeconds} s after Ctrl+C");
            Assert.Empty(ServiceProcesses(dataDir, bootstrap));

            // Stopping is not cleaning: the controller's and the broker's data are still there.
            Assert.True(Directory.EnumerateFiles(Path.Combine(dataDir, ClusterTopology.ControllerName), "*", SearchOption.AllDirectories).Any(),
                "the controller's data directory is empty after the stop");
            Assert.True(Directory.EnumerateFiles(Path.Combine(dataDir, ClusterTopology.BrokerName(1)), "*", SearchOption.AllDirectories).Any(),
                "broker-1's data directory is empty after the stop");
        }
        finally
        {
            // A failed run must not leave processes behind: the group first, then anything DCP
            // started outside it that still carries this run's data directory.
            SignalGroup(appHost.Id, "KILL");
            ProcessControl.KillNow(appHost);
            foreach (var pid in servicePids.Concat(ServiceProcesses(dataDir, null)).Distinct())
                Kill(pid);
            output.WriteLine(Snapshot(log));
            if (Directory.Exists(dataDir))
                Directory.Delete(dataDir, recursive: true);
        }
    }

    private async Task ProduceAndConsumeWithConfluentAsync(string bootstrap)
    {
        var topic = KafkaHelpers.UniqueTopic("apphost-run");
        await KafkaHelpers.CreateTopicAsync(bootstrap, topic, 2);
        using (var producer = new ProducerBuilder<string, string>(KafkaHelpers.ProducerConfig(bootstrap)).Build())
        {
            for (var i = 0; i < 20; i++)
                await producer.ProduceAsync(topic, new Message<string, string> { Key = $"k{i}", Value = $"v{i}" });
            producer.Flush(TimeSpan.FromSeconds(30));
        }
        var read = KafkaHelpers.ReadAll(bootstrap, topic, 2, 20, TimeSpan.FromSeconds(30));
        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"v{i}").Order(), read.Select(r => Encoding.UTF8.GetString(r.Message.Value)).Order());
    }

    private async Task ProduceAndConsumeWithKcatAsync(string bootstrap)
    {
        var topic = KafkaHelpers.UniqueTopic("apphost-kcat");
        var lines = Enumerable.Range(0, 10).Select(i => $"key{i}:value {i}").ToArray();
        var produce = await ExternalProcess.RunAsync("kcat", ["-b", bootstrap, "-t", topic, "-P", "-K:"],
            standardInput: string.Join('\n', lines) + "\n");
        output.WriteLine(produce.ToString());
        Assert.Equal(0, produce.ExitCode);
        var consume = await ExternalProcess.RunAsync("kcat", ["-b", bootstrap, "-t", topic, "-C", "-o", "beginning", "-e", "-f", "%k:%s\\n"]);
        output.WriteLine(consume.ToString());
        Assert.Equal(0, consume.ExitCode);
        Assert.Equal(lines.Order(), consume.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());
    }

    /// <summary>
    /// `dotnet run --project AppHost --no-build` in the configuration this test was built in, in its
    /// own session and process group (ProcessControl: setsid, and SIGKILL if this test process dies).
    /// </summary>
    private static async Task<Process> StartAppHostAsync(IEnumerable<string> appHostArgs, Action<string> onLine)
    {
        var info = new ProcessStartInfo(ServiceBinaries.FindDotnetHost())
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = RepoRoot(),
        };
        foreach (var a in new[] { "run", "--project", Path.Combine(RepoRoot(), "AppHost"), "--no-build", "-c", BuildConfiguration(), "--" }.Concat(appHostArgs))
            info.ArgumentList.Add(a);
        // `dotnet test` exports MSBuild's own variables; a nested `dotnet run` must not inherit them.
        foreach (var name in info.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)).ToList())
            info.Environment.Remove(name);
        info.Environment["NO_COLOR"] = "1";
        var process = await ProcessControl.StartAsync(info);
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) onLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) onLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>
    /// Processes of this run's services, found by their environment: the controller and brokers have
    /// Controller__DataDir / Broker__DataDir under <paramref name="dataDir"/>; gateways advertise the
    /// Kafka port of <paramref name="bootstrap"/>.
    /// </summary>
    private static List<int> ServiceProcesses(string dataDir, string? bootstrap)
    {
        var markers = new List<string> { $"Controller__DataDir={dataDir}/", $"Broker__DataDir={dataDir}/" };
        if (bootstrap is not null)
            markers.Add($"Gateway__KafkaPort={bootstrap.Split(':')[1]}\0");
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == Environment.ProcessId)
                continue;
            string environ;
            try
            {
                environ = File.ReadAllText(Path.Combine(dir, "environ"));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            if (markers.Any(m => environ.Contains(m, StringComparison.Ordinal)))
                found.Add(pid);
        }
        return found;
    }

    /// <summary>True for the service's own process (its executable is the apphost of <paramref name="project"/>), not `dotnet run`.</summary>
    private static bool IsServiceItself(int pid, string project)
    {
        try
        {
            var args = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries);
            return args.Length > 0 && (Path.GetFileName(args[0]) == project || args.Any(a => Path.GetFileName(a) == project + ".dll"));
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static bool IsAlive(int pid)
    {
        // A zombie (state Z) has exited; only its parent has not reaped it yet.
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return StateRegex().Match(stat) is { Success: true } m && m.Groups[1].Value != "Z";
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static void SignalGroup(int processGroupId, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-" + signal, "--", "-" + processGroupId.ToString(CultureInfo.InvariantCulture)])
        {
            RedirectStandardError = true,
            UseShellExecute = false,
        });
        kill?.WaitForExit();
    }

    private static void Kill(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            process.Kill();
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // Already gone.
        }
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "StreamPlatform.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException($"StreamPlatform.sln not found above {AppContext.BaseDirectory}.");
    }

    /// <summary>Debug or Release: the AppHost and services were built alongside this test assembly.</summary>
    private static string BuildConfiguration() =>
        typeof(AppHostRunTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";

    private static string Snapshot(StringBuilder sb)
    {
        lock (sb)
            return sb.ToString();
    }

    /// <summary>The state field after the parenthesised command name in /proc/pid/stat.</summary>
    [GeneratedRegex(@"\) (\S) ")]
    private static partial Regex StateRegex();
}
