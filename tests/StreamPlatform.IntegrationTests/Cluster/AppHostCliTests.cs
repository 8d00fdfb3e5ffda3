using System.Diagnostics;
using System.Text;
using StreamPlatform.AppHost.Orchestration;
using StreamPlatform.IntegrationTests.Infrastructure;

namespace StreamPlatform.IntegrationTests.Cluster;

/// <summary>The AppHost command line: help and bad arguments (a whole run: AppHostRunTests).</summary>
[Collection(ClusterCollection.Name)]
public sealed class AppHostCliTests
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task HelpExitsZeroAndExplainsTheOptions()
    {
        var (exit, stdout, _) = await RunToEndAsync("--help");
        Assert.Equal(0, exit);
        Assert.Contains("--data-dir", stdout);
        Assert.Contains("--kafka-port", stdout);
        Assert.Contains("--no-dashboard", stdout);
        Assert.Contains("--dynamic-ports", stdout);
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
