using System.Diagnostics;

namespace StreamPlatform.IntegrationTests.Infrastructure;

/// <summary>Runs another Kafka client (kcat, /usr/bin/python3) with a time limit.</summary>
public static class ExternalProcess
{
    public sealed record Result(int ExitCode, string StandardOutput, string StandardError)
    {
        public override string ToString() => $"exit {ExitCode}\nstdout:\n{StandardOutput}\nstderr:\n{StandardError}";
    }

    public static async Task<Result> RunAsync(string fileName, IEnumerable<string> arguments, string? standardInput = null,
        TimeSpan? timeout = null)
    {
        if (!File.Exists(fileName) && !fileName.Contains('/'))
            fileName = FindOnPath(fileName);
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {fileName}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (standardInput is not null) await process.StandardInput.WriteAsync(standardInput);
        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{fileName} {string.Join(' ', arguments)} did not finish in time:\n{await stdout}\n{await stderr}");
        }
        return new Result(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Debian's Python 3, whose packages are the kafka-python and confluent_kafka clients (.ci/run installs them).</summary>
    public const string Python = "/usr/bin/python3";

    /// <summary>Runs <paramref name="script"/> with <see cref="Python"/> from a temporary file, deleted afterwards.</summary>
    public static async Task<Result> RunPythonAsync(string script, IEnumerable<string> arguments, TimeSpan? timeout = null)
    {
        var path = Path.Combine(Path.GetTempPath(), $"sp-{Guid.NewGuid():N}.py");
        await File.WriteAllTextAsync(path, script);
        try
        {
            return await RunAsync(Python, [path, .. arguments], timeout: timeout);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Absolute path of a program, or a failure telling what to install (.ci/run installs these).</summary>
    public static string FindOnPath(string program)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, program);
            if (File.Exists(candidate)) return candidate;
        }
        throw new InvalidOperationException(
            $"'{program}' is not installed. Run: apt-get update && apt-get install -y kcat python3-kafka (what .ci/run does).");
    }
}
