using Confluent.Kafka;
using Confluent.Kafka.Admin;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Kafka;

/// <summary>Consumer groups and committed offsets with Confluent.Kafka (librdkafka), kafka-python and kcat.</summary>
[Collection(ClusterCollection.Name)]
public sealed class ConsumerGroupTests : IDisposable, IClassFixture<HarnessClusterFixture>
{
    private const int Partitions = 6;
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(60);
    private readonly HarnessClusterFixture _fixture;
    private readonly ITestOutputHelper _output;
    private readonly IDisposable _attach;

    public ConsumerGroupTests(HarnessClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _output = output;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    private string Bootstrap => _fixture.BootstrapServers;

    private ConsumerConfig Config(string group, string? instanceId = null, PartitionAssignmentStrategy strategy = PartitionAssignmentStrategy.Range,
        int sessionTimeoutMs = 6000) => new()
    {
        BootstrapServers = Bootstrap,
        GroupId = group,
        GroupInstanceId = instanceId,
        EnableAutoCommit = false,
        AutoOffsetReset = AutoOffsetReset.Earliest,
        SessionTimeoutMs = sessionTimeoutMs,
        HeartbeatIntervalMs = 500,
        PartitionAssignmentStrategy = strategy,
        ClientId = instanceId ?? group,
    };

    private async Task<string> TopicAsync(string prefix)
    {
        var topic = KafkaHelpers.UniqueTopic(prefix);
        await KafkaHelpers.CreateTopicAsync(Bootstrap, topic, Partitions);
        return topic;
    }

    private async Task ProduceAsync(string topic, int from, int count)
    {
        using var producer = new ProducerBuilder<string, string>(KafkaHelpers.ProducerConfig(Bootstrap)).Build();
        for (var i = from; i < from + count; i++)
            producer.Produce(topic, new Message<string, string> { Key = $"k{i}", Value = $"v{i}" }, r => Assert.False(r.Error.IsError, r.Error.ToString()));
        Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(60)));
        await Task.CompletedTask;
    }

    private static List<(int Partition, long Offset, string Key)> All(params GroupConsumer[] consumers)
        => consumers.SelectMany(c => c.Received).ToList();

    [Fact]
    public async Task ThreeConsumersSplitSixPartitionsReceiveEveryRecordOnceAndASecondGroupReadsItAllAgain()
    {
        const int count = 600;
        var topic = await TopicAsync("group3");
        var group = KafkaHelpers.UniqueTopic("g3");
        var consumers = Enumerable.Range(0, 3).Select(i => new GroupConsumer($"c{i}", Config(group), topic)).ToArray();
        try
        {
            await GroupConsumer.WaitUntilAsync(() => consumers.All(c => c.Assignment.Count == 2)
                && consumers.SelectMany(c => c.Assignment).Distinct().Count() == Partitions, Settle, "2 partitions each");
            await ProduceAsync(topic, 0, count);
            await GroupConsumer.WaitUntilAsync(() => All(consumers).Count >= count, Settle, $"{count} records");
            await Task.Delay(1000); // anything delivered twice would show up now
            var all = All(consumers);
            Assert.Equal(count, all.Count);
            Assert.Equal(count, all.Select(r => (r.Partition, r.Offset)).Distinct().Count());
            Assert.Equal(Enumerable.Range(0, count).Select(i => $"k{i}").Order(), all.Select(r => r.Key).Order());
            // Each consumer read only its own partitions.
            foreach (var c in consumers) Assert.All(c.Received, r => Assert.Contains(r.Partition, c.Assignment));
            Assert.All(consumers, c => Assert.Null(c.Failure));

            // Committed offsets (written synchronously per record) are the end of every partition.
            using var admin = KafkaHelpers.Admin(Bootstrap);
            var committed = await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions(group, null)]);
            var byPartition = committed[0].Partitions.Where(p => p.Topic == topic).ToDictionary(p => p.Partition.Value, p => p.Offset.Value);
            var ends = all.GroupBy(r => r.Partition).ToDictionary(g => g.Key, g => g.Max(r => r.Offset) + 1);
            Assert.Equal(ends.OrderBy(kv => kv.Key), byPartition.Where(kv => ends.ContainsKey(kv.Key)).OrderBy(kv => kv.Key));

            var described = await admin.DescribeConsumerGroupsAsync([group]);
            var d = Assert.Single(described.ConsumerGroupDescriptions);
            Assert.Equal(ConsumerGroupState.Stable, d.State);
            Assert.Equal(3, d.Members.Count);
            Assert.Equal("range", d.PartitionAssignor);
        }
        finally
        {
            foreach (var c in consumers) c.Dispose();
        }

        // A second group is independent: it reads everything from the beginning.
        using var second = new GroupConsumer("other", Config(KafkaHelpers.UniqueTopic("g3b")), topic);
        await GroupConsumer.WaitUntilAsync(() => second.Received.Count >= count, Settle, "second group reads all");
        Assert.Equal(count, second.Received.Select(r => (r.Partition, r.Offset)).Distinct().Count());
    }

    [Fact]
    public async Task PartitionsOfALeavingConsumerMoveToTheOthersWithinTheSessionTimeout()
    {
        var topic = await TopicAsync("leave");
        var group = KafkaHelpers.UniqueTopic("gl");
        using var a = new GroupConsumer("a", Config(group), topic);
        var b = new GroupConsumer("b", Config(group), topic);
        try
        {
            await GroupConsumer.WaitUntilAsync(() => a.Assignment.Count == 3 && b.Assignment.Count == 3, Settle, "3 partitions each");
            var started = DateTime.UtcNow;
            b.Stop(); // Close: LeaveGroup
            await GroupConsumer.WaitUntilAsync(() => a.Assignment.Count == Partitions, TimeSpan.FromSeconds(30), "a owns all partitions");
            var moved = DateTime.UtcNow - started;
            _output.WriteLine($"partitions moved after {moved.TotalMilliseconds:F0} ms");
            Assert.True(moved < TimeSpan.FromMilliseconds(6000), $"took {moved}");
        }
        finally
        {
            b.Dispose();
        }
        await ProduceAsync(topic, 0, 60);
        await GroupConsumer.WaitUntilAsync(() => a.Received.Count >= 60, Settle, "a reads every partition");
        Assert.Equal(Partitions, a.Received.Select(r => r.Partition).Distinct().Count());
    }

    [Fact]
    public async Task ACrashedMembersSessionExpiresAndItsPartitionsMove()
    {
        var topic = await TopicAsync("crash");
        var group = KafkaHelpers.UniqueTopic("gx");
        using var survivor = new GroupConsumer("survivor", Config(group), topic);
        await GroupConsumer.WaitUntilAsync(() => survivor.Assignment.Count == Partitions, Settle, "survivor owns all partitions");
        // A second member in another process (kcat), then killed: no LeaveGroup, only its session ends.
        var start = new System.Diagnostics.ProcessStartInfo(ExternalProcess.FindOnPath("kcat"))
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var arg in new[] { "-b", Bootstrap, "-G", group, "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500", topic })
            start.ArgumentList.Add(arg);
        using var crashing = System.Diagnostics.Process.Start(start)!;
        try
        {
            await GroupConsumer.WaitUntilAsync(() => survivor.Assignment.Count == 3, Settle, "the kcat member takes half");
            await Task.Delay(1000);
        }
        finally
        {
            crashing.Kill(entireProcessTree: true);
        }
        var killed = DateTime.UtcNow;
        await GroupConsumer.WaitUntilAsync(() => survivor.Assignment.Count == Partitions, TimeSpan.FromSeconds(30), "survivor owns all partitions again");
        var moved = DateTime.UtcNow - killed;
        _output.WriteLine($"partitions moved {moved.TotalMilliseconds:F0} ms after the kill");
        // Not before the 6 s session timeout could have passed (allowing for the last heartbeat
        // up to 0.5 s before the kill), and not much after it.
        Assert.InRange(moved, TimeSpan.FromMilliseconds(5000), TimeSpan.FromMilliseconds(6000 + 4000));
    }

    [Fact]
    public async Task CooperativeStickyMovesOnlyWhatItMustWhenAConsumerJoins()
    {
        var topic = await TopicAsync("coop");
        var group = KafkaHelpers.UniqueTopic("gc");
        var config = Config(group, strategy: PartitionAssignmentStrategy.CooperativeSticky);
        using var a = new GroupConsumer("a", config, topic);
        using var b = new GroupConsumer("b", config, topic);
        await GroupConsumer.WaitUntilAsync(() => a.Assignment.Count == 3 && b.Assignment.Count == 3, Settle, "3 partitions each");
        var before = (A: a.Assignment, B: b.Assignment);
        var revokedBefore = (A: a.Revoked.Count, B: b.Revoked.Count);

        using var c = new GroupConsumer("c", config, topic);
        await GroupConsumer.WaitUntilAsync(() => a.Assignment.Count == 2 && b.Assignment.Count == 2 && c.Assignment.Count == 2
            && a.Assignment.Concat(b.Assignment).Concat(c.Assignment).Distinct().Count() == Partitions, Settle, "2 partitions each");
        // The old members kept 2 of their 3 and gave up exactly one each; nothing moved between them.
        Assert.Subset(before.A.ToHashSet(), a.Assignment.ToHashSet());
        Assert.Subset(before.B.ToHashSet(), b.Assignment.ToHashSet());
        Assert.Equal(1, a.Revoked.Count - revokedBefore.A);
        Assert.Equal(1, b.Revoked.Count - revokedBefore.B);
    }

    [Fact]
    public async Task StaticMemberRestartKeepsItsPartitionsWithoutARebalance()
    {
        var topic = await TopicAsync("static");
        var group = KafkaHelpers.UniqueTopic("gs");
        using var other = new GroupConsumer("s2", Config(group, "s2", sessionTimeoutMs: 15000), topic);
        var first = new GroupConsumer("s1", Config(group, "s1", sessionTimeoutMs: 15000), topic);
        IReadOnlySet<int> before;
        try
        {
            await GroupConsumer.WaitUntilAsync(() => first.Assignment.Count == 3 && other.Assignment.Count == 3, Settle, "3 partitions each");
            before = first.Assignment;
        }
        finally
        {
            first.Dispose(); // a static member's close sends no LeaveGroup
        }
        var changesBefore = other.AssignmentChanges;
        using var restarted = new GroupConsumer("s1-again", Config(group, "s1", sessionTimeoutMs: 15000), topic);
        await GroupConsumer.WaitUntilAsync(() => restarted.Assignment.Count == 3, Settle, "restarted member gets partitions");
        Assert.Equal(before.Order(), restarted.Assignment.Order());
        await Task.Delay(2000);
        // The other member saw no rebalance at all.
        Assert.Equal(changesBefore, other.AssignmentChanges);
        Assert.Empty(other.Revoked);
        Assert.Equal(3, other.Assignment.Count);
    }

    [Fact]
    public async Task CommittedOffsetsSurviveAFullClusterRestart()
    {
        var topic = await TopicAsync("grestart");
        var group = KafkaHelpers.UniqueTopic("gr");
        await ProduceAsync(topic, 0, 120);
        using (var consumer = new GroupConsumer("before", Config(group), topic))
            await GroupConsumer.WaitUntilAsync(() => consumer.Received.Count >= 120, Settle, "120 records");

        await _fixture.Orchestrator.StopAsync();
        await _fixture.Orchestrator.StartAsync();

        using (var admin = KafkaHelpers.Admin(Bootstrap))
            await KafkaHelpers.WaitForLeadersAsync(admin, topic, Partitions);
        await ProduceAsync(topic, 120, 60);
        using var after = new GroupConsumer("after", Config(group), topic);
        await GroupConsumer.WaitUntilAsync(() => after.Received.Count >= 60, Settle, "the 60 new records");
        await Task.Delay(1000);
        // Resumed from the committed offsets: only the new records, none of the old ones again.
        Assert.Equal(Enumerable.Range(120, 60).Select(i => $"k{i}").Order(), after.Received.Select(r => r.Key).Order());
    }

    [Fact]
    public async Task CommittedOffsetsSurviveRestartsOfEveryBrokerWhileTheGroupRuns()
    {
        var topic = await TopicAsync("brestart");
        var group = KafkaHelpers.UniqueTopic("gb");
        await ProduceAsync(topic, 0, 60);
        using (var consumer = new GroupConsumer("before", Config(group), topic))
            await GroupConsumer.WaitUntilAsync(() => consumer.Received.Count >= 60, Settle, "60 records");
        // Whichever broker coordinates the group (and leads its offsets partition) is killed and restarted.
        foreach (var broker in _fixture.Orchestrator.Brokers.Select(b => b.Name).ToList())
            await _fixture.Orchestrator.RestartServiceAsync(broker, kill: true);
        using (var admin = KafkaHelpers.Admin(Bootstrap))
            await KafkaHelpers.WaitForLeadersAsync(admin, topic, Partitions);
        await ProduceAsync(topic, 60, 30);
        using var after = new GroupConsumer("after", Config(group), topic);
        await GroupConsumer.WaitUntilAsync(() => after.Received.Count >= 30, Settle, "the 30 new records");
        await Task.Delay(1000);
        Assert.Equal(Enumerable.Range(60, 30).Select(i => $"k{i}").Order(), after.Received.Select(r => r.Key).Order());
    }

    [Theory]
    [InlineData("uniform")]
    [InlineData("range")]
    public async Task ConsumerProtocolAssignsServerSideAndAJoiningMemberTakesOnlyItsShare(string assignor)
    {
        var topic = await TopicAsync("kip848");
        var group = KafkaHelpers.UniqueTopic("g848");
        // group.protocol=consumer: no session timeout, heartbeat interval or assignment strategy
        // on the client; the coordinator decides them.
        var config = new ConsumerConfig
        {
            BootstrapServers = Bootstrap, GroupId = group, GroupProtocol = GroupProtocol.Consumer, GroupRemoteAssignor = assignor,
            EnableAutoCommit = false, AutoOffsetReset = AutoOffsetReset.Earliest,
        };
        using var a = new GroupConsumer("a", config, topic);
        using var b = new GroupConsumer("b", config, topic);
        await GroupConsumer.WaitUntilAsync(() => a.Assignment.Count == 3 && b.Assignment.Count == 3, Settle, "3 partitions each");
        var before = (A: a.Assignment, B: b.Assignment);
        using var c = new GroupConsumer("c", config, topic);
        await GroupConsumer.WaitUntilAsync(() => a.Assignment.Count == 2 && b.Assignment.Count == 2 && c.Assignment.Count == 2
            && a.Assignment.Concat(b.Assignment).Concat(c.Assignment).Distinct().Count() == Partitions, Settle, "2 partitions each");
        if (assignor == "uniform")
        {
            // Sticky: the old members kept what they had, minus what the newcomer needed.
            Assert.Subset(before.A.ToHashSet(), a.Assignment.ToHashSet());
            Assert.Subset(before.B.ToHashSet(), b.Assignment.ToHashSet());
        }
        await ProduceAsync(topic, 0, 120);
        await GroupConsumer.WaitUntilAsync(() => All(a, b, c).Count >= 120, Settle, "120 records");
        await Task.Delay(1000);
        var all = All(a, b, c);
        Assert.Equal(120, all.Select(r => (r.Partition, r.Offset)).Distinct().Count());
        Assert.Equal(120, all.Count);
        Assert.All(new[] { a, b, c }, x => Assert.Null(x.Failure));

        // Commits made with the member epoch (OffsetCommit v9) are visible to an admin.
        using var admin = KafkaHelpers.Admin(Bootstrap);
        var committed = await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions(group, null)]);
        Assert.Equal(120, committed[0].Partitions.Where(p => p.Topic == topic).Sum(p => p.Offset.Value));
    }

    [Fact]
    public async Task ConsumerProtocolStaticMemberRestartKeepsItsPartitions()
    {
        var topic = await TopicAsync("kip848s");
        var group = KafkaHelpers.UniqueTopic("g848s");
        ConsumerConfig Static(string instance) => new()
        {
            BootstrapServers = Bootstrap, GroupId = group, GroupProtocol = GroupProtocol.Consumer, GroupInstanceId = instance,
            EnableAutoCommit = false, AutoOffsetReset = AutoOffsetReset.Earliest,
        };
        using var other = new GroupConsumer("s2", Static("s2"), topic);
        IReadOnlySet<int> before;
        using (var first = new GroupConsumer("s1", Static("s1"), topic))
        {
            await GroupConsumer.WaitUntilAsync(() => first.Assignment.Count == 3 && other.Assignment.Count == 3, Settle, "3 partitions each");
            before = first.Assignment;
        }
        var changesBefore = other.AssignmentChanges;
        using var restarted = new GroupConsumer("s1-again", Static("s1"), topic);
        await GroupConsumer.WaitUntilAsync(() => restarted.Assignment.Count == 3, Settle, "restarted member gets its partitions");
        Assert.Equal(before.Order(), restarted.Assignment.Order());
        await Task.Delay(2000);
        Assert.Equal(changesBefore, other.AssignmentChanges);
        Assert.Equal(3, other.Assignment.Count);
    }

    [Fact]
    public async Task KafkaPythonGroupConsumerSubscribesPollsAndCommits()
    {
        var topic = await TopicAsync("pygroup");
        var group = KafkaHelpers.UniqueTopic("gpy");
        await ProduceAsync(topic, 0, 90);
        var script = """
            import sys, time
            from kafka import KafkaConsumer, TopicPartition
            bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
            def run(expected):
                c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, auto_offset_reset='earliest',
                                  enable_auto_commit=False, consumer_timeout_ms=20000)
                c.subscribe([topic])
                seen = []
                deadline = time.time() + 60
                while len(seen) < expected and time.time() < deadline:
                    batch = c.poll(timeout_ms=1000)
                    for tp, records in batch.items():
                        seen.extend(r.key for r in records)
                    if batch:
                        c.commit()
                assigned = len(c.assignment())
                committed = sum(c.committed(TopicPartition(topic, p)) or 0 for p in range(6))
                c.close()
                return seen, assigned, committed
            seen, assigned, committed = run(90)
            assert len(set(seen)) == 90, 'read %d distinct of 90' % len(set(seen))
            print('FIRST', len(seen), assigned, committed)
            """;
        var run = await ExternalProcess.RunPythonAsync(script, [Bootstrap, topic, group], timeout: TimeSpan.FromSeconds(120));
        _output.WriteLine(run.ToString());
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("FIRST 90 6 90", run.StandardOutput);
        using var admin = KafkaHelpers.Admin(Bootstrap);
        var committed = await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions(group, null)]);
        Assert.Equal(90, committed[0].Partitions.Where(p => p.Topic == topic).Sum(p => p.Offset.Value));
    }

    [Fact]
    public async Task TwoKcatBalancedConsumersSplitThePartitions()
    {
        var topic = await TopicAsync("kcatgroup");
        var group = KafkaHelpers.UniqueTopic("gk");
        await ProduceAsync(topic, 0, 120);
        // kcat -G runs until interrupted: `timeout -s INT` stops it cleanly (it leaves the group).
        Task<ExternalProcess.Result> Kcat(string name) => ExternalProcess.RunAsync("timeout",
            ["-s", "INT", "25", ExternalProcess.FindOnPath("kcat"), "-b", Bootstrap, "-G", group, "-o", "beginning",
             "-X", "session.timeout.ms=6000", "-f", $"{name} %p %k\\n", topic], timeout: TimeSpan.FromSeconds(60));
        var runs = await Task.WhenAll(Kcat("A"), Kcat("B"));
        foreach (var r in runs) _output.WriteLine(r.ToString());
        var lines = runs.SelectMany(r => r.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries)).Select(l => l.Split(' ')).ToList();
        Assert.Equal(Enumerable.Range(0, 120).Select(i => $"k{i}").Order(), lines.Select(l => l[2]).Distinct().Order());
        // Both consumers got a share: each ended the first rebalance with 3 of the 6 partitions.
        foreach (var r in runs)
            Assert.Contains(r.StandardError.Split('\n'), l => l.Contains("assigned:") && l.Split(topic + " [").Length - 1 == 3);
    }
}
