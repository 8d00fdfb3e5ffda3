using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using StreamPlatform.AppHost.Orchestration;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Cluster;

/// <summary>
/// What the services export over OTLP, received by a collector the test hosts
/// (<see cref="OtlpReceiver"/>): a produce is one trace from the gateway's Kafka request to the
/// broker's append; the project's meters arrive; an unreachable collector does not hold up a stop.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class TelemetryTests(ITestOutputHelper output)
{
    private static readonly TimeSpan ArrivalTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Exports every second instead of every 5 s (spans) and 60 s (metrics), so the test does not idle.</summary>
    private static void ExportQuickly(ClusterOptions options)
    {
        foreach (var kind in Enum.GetValues<ServiceKind>())
        {
            options.WithEnvironment(kind, "OTEL_METRIC_EXPORT_INTERVAL", "1000");
            options.WithEnvironment(kind, "OTEL_BSP_SCHEDULE_DELAY", "500");
        }
    }

    [Fact]
    public async Task ProduceIsOneTraceFromGatewayRequestToBrokerAppend_AndTheMetersArrive()
    {
        await using var receiver = await OtlpReceiver.StartAsync();
        await using var cluster = await TestCluster.StartAsync(o =>
        {
            o.OtlpEndpoint = receiver.Endpoint;
            ExportQuickly(o);
        });
        using var attach = cluster.AttachOutput(output);
        var topic = $"telemetry-{Guid.NewGuid():N}";
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = cluster.BootstrapServers }).Build())
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 1, ReplicationFactor = 3 }]);

        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig
               { BootstrapServers = cluster.BootstrapServers, ClientId = "telemetry-test", Acks = Acks.All }).Build())
        {
            for (var i = 0; i < 5; i++)
                Assert.Equal(PersistenceStatus.Persisted, (await producer.ProduceAsync(topic, new Message<string, string> { Key = $"k{i}", Value = "v" })).Status);
        }

        // A group commits offsets behind the end of the log: its lag must be measured.
        var group = $"telemetry-group-{Guid.NewGuid():N}";
        using (var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
               { BootstrapServers = cluster.BootstrapServers, GroupId = group, EnableAutoCommit = false, AutoOffsetReset = AutoOffsetReset.Earliest }).Build())
        {
            consumer.Assign(new TopicPartitionOffset(topic, 0, 0));
            var first = consumer.Consume(TimeSpan.FromSeconds(20));
            Assert.NotNull(first);
            consumer.Commit([new TopicPartitionOffset(topic, 0, first.Offset + 1)]);
        }

        // The gateway's "kafka Produce" span of this topic, and the broker's append as its child in the same trace.
        (ReceivedSpan Gateway, ReceivedSpan Append)? linked = null;
        var deadline = Stopwatch.StartNew();
        while (linked is null && deadline.Elapsed < ArrivalTimeout)
        {
            var spans = receiver.Spans;
            linked = (from g in spans
                      where g.Name == "kafka Produce" && g.Attributes.GetValueOrDefault("messaging.destination.name") == topic
                      from b in spans
                      where b.Name == "Produce append" && b.TraceId == g.TraceId && b.ParentSpanId == g.SpanId
                      select ((ReceivedSpan, ReceivedSpan)?)(g, b)).FirstOrDefault();
            if (linked is null) await Task.Delay(250);
        }
        var received = receiver.Spans;
        Assert.True(linked is not null, $"No 'kafka Produce' span of {topic} with a 'Produce append' child arrived within {ArrivalTimeout}; " +
            $"received {received.Count} spans: {string.Join(", ", received.Select(s => $"{s.ServiceName}/{s.Name}").Distinct().Take(30))}");
        var (gateway, append) = linked.Value;
        Assert.Equal("gateway", gateway.ServiceName);
        Assert.Equal("gateway-1", gateway.InstanceId);
        Assert.Equal("broker", append.ServiceName);
        Assert.StartsWith("broker-", append.InstanceId);
        Assert.Equal("kafka", gateway.Attributes["messaging.system"]);
        Assert.Equal("0", gateway.Attributes["kafka.api_key"]);
        Assert.Equal("telemetry-test", gateway.Attributes["messaging.client.id"]);
        Assert.Equal("0", gateway.Attributes["kafka.error_code"]);
        Assert.Equal(topic, append.Attributes["messaging.destination.name"]);
        Assert.Equal("0", append.Attributes["kafka.error_code"]);
        // acks=all with three replicas: the wait for the followers is in the same trace.
        Assert.Contains(received, s => s.Name == "Produce replicate" && s.TraceId == gateway.TraceId && s.ParentSpanId == gateway.SpanId);
        // The produce stream's own gRPC call must not have joined the request's trace.
        Assert.DoesNotContain(received, s => s.TraceId == gateway.TraceId && s.Name.Contains("ProduceStream", StringComparison.Ordinal));

        // The project's meters, each from the service that owns it, with its unit.
        var expected = new (string Service, string Metric, string Unit)[]
        {
            ("gateway", "gateway.requests", "{request}"),
            ("gateway", "gateway.bytes.in", "By"),
            ("broker", "broker.bytes_in", "By"),
            ("broker", "broker.partitions", "{partition}"),
            ("broker", "broker.partitions.leader", "{partition}"),
            ("broker", "broker.partitions.under_replicated", "{partition}"),
            ("broker", "broker.consumer_group.lag", "{message}"),
            ("controller", "streamplatform.controller.partitions.under_replicated", ""),
        };
        deadline.Restart();
        List<(string, string, string)> missing;
        do
        {
            var metrics = receiver.Metrics;
            missing = expected.Where(e => !metrics.Any(m => m.ServiceName == e.Service && m.Name == e.Metric && m.Unit == e.Unit)).ToList();
            if (missing.Count > 0) await Task.Delay(250);
        }
        while (missing.Count > 0 && deadline.Elapsed < ArrivalTimeout);
        Assert.True(missing.Count == 0, $"Metrics not received within {ArrivalTimeout}: {string.Join(", ", missing)}; received: " +
            string.Join(", ", receiver.Metrics.Select(m => $"{m.ServiceName}/{m.Name}[{m.Unit}]").Distinct().Take(80)));
        Assert.True(receiver.LogExports > 0, "No log export arrived.");
    }

    [Fact]
    public async Task ServicesStopWithinTwoSecondsWhenTheCollectorNeverAnswers()
    {
        // A collector that accepts connections and never answers: the worst case for a flush (a
        // closed port fails at once). Each connection is held open until the test ends.
        using var blackHole = new TcpListener(IPAddress.Loopback, 0);
        blackHole.Start();
        var held = new List<Socket>();
        using var stop = new CancellationTokenSource();
        var accepting = Task.Run(async () =>
        {
            try
            {
                while (true) { var s = await blackHole.AcceptSocketAsync(stop.Token); lock (held) held.Add(s); }
            }
            catch (OperationCanceledException) { }
        });
        try
        {
            await using var cluster = await TestCluster.StartAsync(o =>
            {
                o.Brokers = 1;
                o.OtlpEndpoint = $"http://127.0.0.1:{((IPEndPoint)blackHole.LocalEndpoint).Port}";
                ExportQuickly(o);
            });
            using var attach = cluster.AttachOutput(output);
            // Exports have started (and hang): telemetry is waiting to go out when the stop comes.
            await Task.Delay(3_000);
            foreach (var name in new[] { "gateway-1", "broker-1", "controller-1" })
            {
                var started = Stopwatch.StartNew();
                await cluster.Orchestrator.StopServiceAsync(name);
                output.WriteLine($"{name} stopped in {started.ElapsedMilliseconds} ms");
                // Unbounded, the exporters' flushes would take 10 s each (their default timeout);
                // bounded, a stop takes about 1 s on an idle machine. 5 s tells the two apart on a
                // loaded one too.
                Assert.True(started.Elapsed < TimeSpan.FromSeconds(5), $"{name} took {started.ElapsedMilliseconds} ms to stop on SIGTERM.");
            }
            lock (held) Assert.NotEmpty(held); // the exporters did try the collector
        }
        finally
        {
            stop.Cancel();
            await accepting;
            lock (held) foreach (var s in held) s.Dispose();
        }
    }
}
