using System.Diagnostics;
using System.Globalization;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using StreamPlatform.AppHost.Orchestration;
using StreamPlatform.Protos.Grpc;

namespace StreamPlatform.Faults;

/// <summary>
/// Issue 10's acceptance scenario: an acks=all producer writes continuously to a topic with
/// replication factor 3 and min.insync.replicas 2 while, round after round, the broker leading
/// a (seeded) random partition is killed -9, the controller elects a new leader, writes resume,
/// and the broker is restarted and rejoins the ISR. Afterwards every acknowledged record is
/// read back (<see cref="AckChecker"/>) and every restarted broker must be in every ISR again.
/// The cluster must be started with <see cref="FaultClusterSettings.Apply"/> (crashed services
/// stay down; short failure-detection timeouts).
/// </summary>
public sealed class FaultScenario(ClusterOrchestrator orchestrator, FaultScenarioOptions options, Action<string> log)
{
    /// <summary>The producer must get its first acknowledgements this soon, or the cluster is not working at all.</summary>
    private static readonly TimeSpan FirstAckTimeout = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan FlushTimeout = TimeSpan.FromSeconds(90);

    private static readonly TimeSpan ProgressInterval = TimeSpan.FromSeconds(5);

    private readonly Random _random = new(options.Seed);
    private readonly Stopwatch _clock = new();

    public async Task<FaultReport> RunAsync(CancellationToken cancellationToken = default)
    {
        options.Validate();
        _clock.Start();
        var topic = $"fault-{options.Seed}-{Guid.NewGuid().ToString("N")[..8]}";
        var report = new FaultReport { Seed = options.Seed, Topic = topic };
        Log($"seed {options.Seed} (set STREAMPLATFORM_FAULT_SEED or --seeds to repeat it): topic {topic}, {options.Partitions} partitions, " +
            $"RF {options.ReplicationFactor}, min.insync.replicas {options.MinInsyncReplicas}, {options.Rounds} round(s), " +
            $"{options.RecordsPerSecond} records/s of {options.RecordBytes} B, acks=all");

        using var controller = new ControllerView(orchestrator.Controller.GrpcEndpoint);
        await CreateTopicAsync(controller, topic, cancellationToken);

        using var pump = new ProducerPump(orchestrator.BootstrapServers, topic, options);
        pump.Start();
        using (var progress = new Timer(_ => Log($"progress: sent {pump.Sent}, acked {pump.Acked}, failed {pump.Failed}"), null, ProgressInterval, ProgressInterval))
        {
            await WaitForAsync(() => pump.Acked > 0, FirstAckTimeout, cancellationToken);
            if (pump.Acked == 0)
                throw new InvalidOperationException($"No record acknowledged within {FirstAckTimeout.TotalSeconds} s of starting to produce; errors: {Describe(pump.Errors)}");

            var killed = new HashSet<int>();
            var previous = -1;
            for (var round = 1; round <= options.Rounds; round++)
            {
                var started = _clock.Elapsed;
                var r = await RoundAsync(round, controller, pump, topic, previous, cancellationToken);
                report.Rounds.Add(r);
                killed.Add(r.KilledBroker);
                previous = r.KilledBroker;
                Log(r.ToString());
                var spacingLeft = started + options.RoundSpacing - _clock.Elapsed;
                if (spacingLeft > TimeSpan.Zero)
                    await Task.Delay(spacingLeft, cancellationToken);
            }

            Log($"rounds done: stopping the producer (sent {pump.Sent}, acked {pump.Acked}, failed {pump.Failed})");
            report.Undelivered = pump.StopAndFlush(FlushTimeout);
            report.Sent = pump.Sent;
            report.DeliveryFailed = pump.Failed;
            report.Errors = new Dictionary<string, long>(pump.Errors);
            Log($"producer closed: sent {report.Sent}, acked {pump.Acked}, failed {report.DeliveryFailed} ({Describe(report.Errors)}), undelivered {report.Undelivered}");

            await CheckIsrRestoredAsync(controller, topic, killed, report, cancellationToken);
        }

        Log("reading every partition back from offset 0");
        var read = await Task.Run(() => LogReader.ReadAll(orchestrator.BootstrapServers, topic, options), cancellationToken);
        report.ReadError = read.Error;
        report.Check = AckChecker.Check(options.Partitions, pump.AckedRecords(), read.Records);
        Log($"high watermarks {string.Join(", ", read.EndOffsets.OrderBy(e => e.Key).Select(e => $"p{e.Key} {e.Value}"))}; {report.Check}");
        report.ElapsedSeconds = _clock.Elapsed.TotalSeconds;
        Log(report.Summary());
        return report;
    }

    private async Task<RoundReport> RoundAsync(int round, ControllerView controller, ProducerPump pump, string topic, int previousKilled,
        CancellationToken cancellationToken)
    {
        await Task.Delay(Between(options.LoadBeforeKillMin, options.LoadBeforeKillMax), cancellationToken);

        var partitions = await controller.PartitionsAsync(topic, cancellationToken)
                         ?? throw new InvalidOperationException($"The controller does not know topic {topic}.");
        var led = partitions.Values.Where(p => p.Leader >= 0).OrderBy(p => p.Partition).ToList();
        if (led.Count == 0)
            throw new InvalidOperationException($"No partition of {topic} has a leader: {ControllerView.Describe(partitions)}");
        // "Then kills another": prefer a partition led by a broker other than the last one killed.
        var candidates = led.Where(p => p.Leader != previousKilled).ToList() is { Count: > 0 } others ? others : led;
        var victim = candidates[_random.Next(candidates.Count)];
        var broker = orchestrator.Brokers.Single(b => b.Resource.NodeId == victim.Leader).Name;
        var r = new RoundReport { Round = round, Partition = victim.Partition, KilledBroker = victim.Leader, AckedAtKill = pump.Acked };
        Log($"round {round}: kill -9 {broker}, leader of p{victim.Partition} (epoch {victim.LeaderEpoch}); before: {ControllerView.Describe(partitions)}");

        var kill = Stopwatch.StartNew();
        await orchestrator.KillServiceAsync(broker, cancellationToken);
        try
        {
            // The controller fences the silent broker after its session timeout and elects a new leader from the ISR.
            var moved = await controller.WaitUntilAsync(topic,
                ps => ps.TryGetValue(victim.Partition, out var p) && p.Leader >= 0 && p.Leader != victim.Leader,
                options.FailoverTimeout, cancellationToken);
            var now = await controller.PartitionsAsync(topic, cancellationToken);
            if (moved && now is not null && now.TryGetValue(victim.Partition, out var after))
            {
                r.FailoverMs = kill.Elapsed.TotalMilliseconds;
                r.NewLeader = after.Leader;
                var ackedAtFailover = pump.AckedOn(victim.Partition);
                if (await WaitForAsync(() => pump.AckedOn(victim.Partition) > ackedAtFailover, options.WritesResumeTimeout, cancellationToken))
                    r.WritesResumedMs = kill.Elapsed.TotalMilliseconds;
                else
                    r.Problems.Add($"p{victim.Partition} acknowledged no write within {options.WritesResumeTimeout.TotalSeconds} s under its new leader {after.Leader}");
                Log($"round {round}: new leader {after.Leader} after {r.FailoverMs / 1000:F1} s; {ControllerView.Describe(now)}");
            }
            else
            {
                r.Problems.Add($"no new leader for p{victim.Partition} within {options.FailoverTimeout.TotalSeconds} s of killing broker {victim.Leader}" +
                               (now is null ? "" : $": {ControllerView.Describe(now)}"));
            }
            await Task.Delay(Between(options.ExtraDownMin, options.ExtraDownMax), cancellationToken);
        }
        finally
        {
            r.DownMs = kill.Elapsed.TotalMilliseconds;
            // Back whatever happened: the next round and the final checks need every broker.
            await orchestrator.StartServiceAsync(broker, CancellationToken.None);
        }

        var restart = Stopwatch.StartNew();
        if (await controller.WaitUntilAsync(topic, ps => InEveryIsr(ps, victim.Leader), options.IsrRestoreTimeout, cancellationToken))
            r.IsrRejoinedMs = restart.Elapsed.TotalMilliseconds;
        // Not rejoining here is not yet a failure (the final check gives it all the time there is), but it is logged in the round.
        return r;
    }

    private async Task CreateTopicAsync(ControllerView controller, string topic, CancellationToken cancellationToken)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = orchestrator.BootstrapServers, SocketTimeoutMs = 30_000 }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification
        {
            Name = topic,
            NumPartitions = options.Partitions,
            ReplicationFactor = options.ReplicationFactor,
            Configs = new Dictionary<string, string> { ["min.insync.replicas"] = options.MinInsyncReplicas.ToString(CultureInfo.InvariantCulture) },
        }]);
        // Every partition led, with its full replica set in sync, before the first kill.
        if (!await controller.WaitUntilAsync(topic, FullyInSync, options.IsrRestoreTimeout, cancellationToken))
        {
            var now = await controller.PartitionsAsync(topic, cancellationToken);
            throw new InvalidOperationException($"Topic {topic} is not fully in sync {options.IsrRestoreTimeout.TotalSeconds} s after creation: " +
                                                (now is null ? "unknown to the controller" : ControllerView.Describe(now)));
        }
    }

    /// <summary>Waits (up to the ISR timeout) until every restarted broker is in the ISR of every partition it replicates; records which are not.</summary>
    private async Task CheckIsrRestoredAsync(ControllerView controller, string topic, IReadOnlySet<int> restarted, FaultReport report,
        CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var ok = await controller.WaitUntilAsync(topic, ps => restarted.All(b => InEveryIsr(ps, b)) && FullyInSync(ps),
            options.IsrRestoreTimeout, cancellationToken);
        var final = await controller.PartitionsAsync(topic, cancellationToken);
        report.FinalPartitions = final is null ? "unknown" : ControllerView.Describe(final);
        Log(ok
            ? $"every restarted broker ({string.Join(", ", restarted.Order())}) is in every ISR ({clock.Elapsed.TotalSeconds:F1} s after the producer stopped): {report.FinalPartitions}"
            : $"ISR NOT restored within {options.IsrRestoreTimeout.TotalSeconds} s: {report.FinalPartitions}");
        if (ok)
            return;
        if (final is null)
        {
            report.IsrNotRestored.Add("the controller did not answer");
            return;
        }
        foreach (var p in final.Values.OrderBy(p => p.Partition))
        {
            foreach (var b in p.Replicas.Where(b => !p.Isr.Contains(b)))
                report.IsrNotRestored.Add($"broker {b}{(restarted.Contains(b) ? " (restarted)" : "")} not in the ISR of p{p.Partition} (isr [{string.Join(",", p.Isr)}])");
            if (p.Leader < 0)
                report.IsrNotRestored.Add($"p{p.Partition} has no leader");
        }
    }

    private bool FullyInSync(IReadOnlyDictionary<int, PartitionInfo> partitions) =>
        partitions.Count == options.Partitions &&
        partitions.Values.All(p => p.Leader >= 0 && p.Replicas.Count == options.ReplicationFactor && p.Replicas.All(p.Isr.Contains));

    private static bool InEveryIsr(IReadOnlyDictionary<int, PartitionInfo> partitions, int broker) =>
        partitions.Values.Where(p => p.Replicas.Contains(broker)).All(p => p.Isr.Contains(broker));

    private TimeSpan Between(TimeSpan min, TimeSpan max) =>
        min + TimeSpan.FromMilliseconds(_random.NextDouble() * (max - min).TotalMilliseconds);

    private static async Task<bool> WaitForAsync(Func<bool> condition, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow >= deadline) return false;
            await Task.Delay(20, cancellationToken);
        }
        return true;
    }

    private static string Describe(IReadOnlyDictionary<string, long> errors) =>
        errors.Count == 0 ? "none" : string.Join(", ", errors.OrderByDescending(e => e.Value).Select(e => $"{e.Key} x{e.Value}"));

    private void Log(string line) => log($"[fault {_clock.Elapsed.TotalSeconds,6:F1}s] {line}");
}
