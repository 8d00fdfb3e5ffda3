using System.Diagnostics;
using System.Net;
using System.Text;
using Confluent.Kafka;
using StreamPlatform.AppHost.Orchestration;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Cluster;

/// <summary>
/// The orchestrator as a supervisor (ClusterOptions.RestartCrashed): a broker killed from outside
/// comes back on its ports and data, and says so in the log, until the restart limit; a deliberate
/// kill does not; with the supervisor off (the test harness's default) a crashed service stays down.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class SupervisorTests(HarnessClusterFixture fixture, ITestOutputHelper output) : IClassFixture<HarnessClusterFixture>
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(5) };

    /// <summary>A restart under load on a shared 2-core machine: backoff, start, re-registration, health.</summary>
    private static readonly TimeSpan RestartTimeout = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task ABrokerKilledFromOutsideIsRestartedOnItsPortsAndDataUntilTheRestartLimit()
    {
        const int partitions = 4, count = 400;
        // Gives up on the third crash within the window, so the test sees that too.
        await using var cluster = await TestCluster.StartAsync(o =>
        {
            o.Brokers = 2;
            o.RestartCrashed = true;
        }, configureOrchestrator: o => o.Restart = new RestartPolicy { RestartLimitCount = 2 });
        using var attach = cluster.AttachOutput(output);
        var orchestrator = cluster.Orchestrator;
        var bootstrap = cluster.BootstrapServers;
        var broker = orchestrator["broker-2"];

        var topic = KafkaHelpers.UniqueTopic("supervised");
        await KafkaHelpers.CreateTopicAsync(bootstrap, topic, partitions);
        var acknowledged = new List<(int Partition, long Offset, string Value)>();
        using (var producer = new ProducerBuilder<string, string>(KafkaHelpers.ProducerConfig(bootstrap)).Build())
        {
            for (var i = 0; i < count; i++)
            {
                var result = await producer.ProduceAsync(new TopicPartition(topic, i % partitions),
                    new Message<string, string> { Key = $"k{i}", Value = $"value-{i}" });
                acknowledged.Add((result.Partition.Value, result.Offset.Value, result.Message.Value));
            }
        }

        // Some of them live on broker-2 (clients see only the gateway as leader, so ask its log).
        Assert.Contains($"Opened log {topic}-", cluster.Output.Dump("broker-2"));

        // kill -9 from outside: the orchestrator is not asked, it only sees the process end.
        var oldPid = broker.ProcessId!.Value;
        var environmentBefore = SharedClusterTests.ReadEnvironment(oldPid);
        using (var process = Process.GetProcessById(oldPid))
            process.Kill();

        await orchestrator.WaitRestartedAsync("broker-2", 1, RestartTimeout);
        var newPid = broker.ProcessId!.Value;
        Assert.NotEqual(oldPid, newPid);
        Assert.False(SharedClusterTests.IsAlive(oldPid));
        Assert.Equal(HttpStatusCode.OK, await HealthAsync(broker));
        // Same name, id, ports, data directory and environment as before.
        Assert.Equal(environmentBefore, SharedClusterTests.ReadEnvironment(newPid));
        var log = cluster.Output.Dump("apphost");
        Assert.Contains("broker-2 exited with code 137 (killed, SIGKILL); restarting in 1 s (restart 1)", log);
        Assert.Contains("broker-2 is healthy again (restart 1)", log);

        // What the killed broker had acknowledged is still there, on its data.
        using (var admin = KafkaHelpers.Admin(bootstrap))
            await KafkaHelpers.WaitForLeadersAsync(admin, topic, partitions);
        var read = KafkaHelpers.ReadAll(bootstrap, topic, partitions, count, RestartTimeout)
            .Select(r => (r.Partition.Value, r.Offset.Value, Encoding.UTF8.GetString(r.Message.Value)))
            .OrderBy(r => r.Item1).ThenBy(r => r.Item2).ToList();
        Assert.Equal(acknowledged.OrderBy(a => a.Partition).ThenBy(a => a.Offset).ToList(), read);

        // A crash through the API is a crash too; still in the same loop (it was healthy only
        // briefly), so the backoff has doubled.
        await orchestrator.CrashServiceAsync("broker-2");
        await orchestrator.WaitRestartedAsync("broker-2", 2, RestartTimeout);
        Assert.Contains("broker-2 exited with code 137 (killed, SIGKILL); restarting in 2 s (restart 2)",
            cluster.Output.Dump("apphost"));

        // The third crash within the window is one too many: the supervisor gives up, loudly.
        // Longer than any backoff the loop could be at (4 s next), so a restart would have begun.
        var starts = broker.StartCount;
        await orchestrator.CrashServiceAsync("broker-2");
        await Task.Delay(TimeSpan.FromSeconds(6));
        Assert.Contains("GIVING UP on broker-2: broker-2 exited with code 137 (killed, SIGKILL), after 2 restarts within 5 min (limit 2)",
            cluster.Output.Dump("apphost"));
        Assert.Equal(ServiceState.Exited, broker.State);
        Assert.Equal(starts, broker.StartCount);
        Assert.Equal(2, broker.RestartCount);

        // A deliberate start forgets the crash history; a deliberate kill stays down.
        await orchestrator.StartServiceAsync("broker-2");
        starts = broker.StartCount;
        await orchestrator.KillServiceAsync("broker-2");
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Equal(ServiceState.Stopped, broker.State);
        Assert.False(broker.IsProcessAlive);
        Assert.Equal(starts, broker.StartCount);
        Assert.Equal(2, broker.RestartCount);
        Assert.DoesNotContain("restart 3", cluster.Output.Dump("apphost"));
    }

    [Fact]
    public async Task WithTheSupervisorOffABrokerKilledFromOutsideStaysDown()
    {
        using var attach = fixture.Cluster.AttachOutput(output);
        var orchestrator = fixture.Orchestrator;
        Assert.False(orchestrator.RestartCrashed);
        var broker = orchestrator["broker-1"];
        var starts = broker.StartCount;
        var pid = broker.ProcessId!.Value;
        try
        {
            using (var process = Process.GetProcessById(pid))
                process.Kill();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (broker.State != ServiceState.Exited)
            {
                Assert.True(DateTime.UtcNow < deadline, $"broker-1 is {broker.State} 30 s after its kill");
                await Task.Delay(50);
            }
            Assert.Equal(137, broker.ExitCode);
            Assert.Contains("broker-1 exited with code 137 (killed, SIGKILL); not restarting it",
                fixture.Cluster.Output.Dump("apphost"));
            // Longer than the first backoff: nothing starts it.
            await Task.Delay(TimeSpan.FromSeconds(3));
            Assert.Equal(ServiceState.Exited, broker.State);
            Assert.Equal(starts, broker.StartCount);
        }
        finally
        {
            // The shared cluster's next tests need every broker.
            await orchestrator.StartServiceAsync("broker-1");
        }
        Assert.Equal(ServiceState.Running, broker.State);
    }

    private static async Task<HttpStatusCode> HealthAsync(ServiceInstance service)
    {
        using var response = await Http.GetAsync(new Uri(service.HttpEndpoint, "/health"));
        return response.StatusCode;
    }
}
