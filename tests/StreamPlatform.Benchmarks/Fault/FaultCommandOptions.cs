using System.Globalization;
using StreamPlatform.Benchmarks.Perf;
using StreamPlatform.Faults;

namespace StreamPlatform.Benchmarks.Fault;

/// <summary>Command-line options of <c>fault</c>. Every option has a default and a bound.</summary>
public sealed class FaultCommandOptions
{
    public const int SeedsMax = 1000;

    public IReadOnlyList<int> Seeds { get; private set; } = [1, 2, 3];
    public int Rounds { get; private set; } = 5;
    public int Partitions { get; private set; } = 6;
    public double DurationSeconds { get; private set; }
    public int RecordsPerSecond { get; private set; } = 2_000;
    public int RecordBytes { get; private set; } = 100;
    public int Brokers { get; private set; } = 3;
    public string? JsonFile { get; private set; }
    public bool ShowClusterLog { get; private set; }
    public bool HelpRequested { get; private set; }

    public const string Help = """
        StreamPlatform fault: issue 10's replication fault scenario, over several seeds.

        Usage:
          dotnet run -c Release --project tests/StreamPlatform.Benchmarks -- fault [options]

        For each seed, starts a fresh cluster through the AppHost orchestration library (1 controller,
        --brokers brokers, 1 gateway; dynamic ports; data in a temp folder deleted afterwards; the
        services of this build configuration), with the fault settings the CI test uses:
        replica.lag.time.max.ms=5000, broker session timeout 4 s, crashed services not restarted.
        Then (the same code as the CI test ReplicationFaultTests, in tests/StreamPlatform.Faults):
          1. creates a topic with --partitions partitions, replication factor 3, min.insync.replicas 2;
          2. a Confluent.Kafka producer (acks=all, retries on, not idempotent, one request in flight)
             writes --rate records/s of --record-size bytes, record n to partition n % partitions;
          3. each round: produces 1-3 s, picks a partition at random, kill -9s the broker that leads it
             (the controller's metadata gives the real broker id), waits until the controller elects a
             new leader and the partition acknowledges writes again, keeps the broker down 0-2 s more,
             restarts it and waits until it is back in the ISR of every partition;
          4. stops the producer, waits until every restarted broker is in every ISR, reads every
             partition from offset 0 to its high watermark and checks every acknowledged record.
        Every random choice and pause comes from the seed, so a failing seed can be run again (the CI
        test takes its seed from STREAMPLATFORM_FAULT_SEED).

        Options:
          --seeds LIST            comma-separated seeds, one run (and one cluster) each (default 1,2,3)
          --rounds N              kill/restart rounds per seed (default 5; 1..1000)
          --partitions N          partitions of the topic (default 6; 1..1000)
          --duration SECONDS      at least this long per seed: the rounds are spread over it (a round
                                  starts every SECONDS/N at the earliest) and the producer runs until it
                                  has passed (default 0: rounds back to back)
          --rate N                records per second the producer writes (default 2000; 1..100000)
          --record-size BYTES     value size of each record (default 100; 32..65536)
          --brokers N             brokers of each cluster (default 3; 3..9)
          --json FILE             also write every seed's report as JSON to FILE
          --cluster-log           copy the clusters' output (services log at Warning) to stderr
          -h, --help              this text

        Output: progress lines on stderr (every 5 s and at every step of a round), then per seed a
        summary: acked, delivery failures, lost (must be 0), offsets reused (must be 0), order
        violations (must be 0), corrupt records (must be 0), duplicates (allowed: the producer
        retries without idempotence), whether every restarted broker is back in every ISR, and per
        round the failover, writes-resumed and ISR-rejoin times.
        Exit code: 0 when every seed passed, 1 when one failed, 2 on bad options.
        """;

    public static FaultCommandOptions Parse(IReadOnlyList<string> args)
    {
        var o = new FaultCommandOptions();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string Value()
            {
                if (i + 1 >= args.Count)
                    throw new PerfOptionsException($"{arg} needs a value.");
                return args[++i];
            }

            switch (arg)
            {
                case "-h" or "--help" or "-?":
                    o.HelpRequested = true;
                    break;
                case "--seeds":
                    o.Seeds = ParseSeeds(Value());
                    break;
                case "--rounds":
                    o.Rounds = (int)ParseLong(arg, Value(), 1, FaultScenarioOptions.RoundsMax);
                    break;
                case "--partitions":
                    o.Partitions = (int)ParseLong(arg, Value(), 1, FaultScenarioOptions.PartitionsMax);
                    break;
                case "--duration":
                    o.DurationSeconds = ParseLong(arg, Value(), 0, 24 * 3600);
                    break;
                case "--rate":
                    o.RecordsPerSecond = (int)ParseLong(arg, Value(), 1, FaultScenarioOptions.RecordsPerSecondMax);
                    break;
                case "--record-size":
                    o.RecordBytes = (int)PerfOptions.ParseBytes(arg, Value(), FaultScenarioOptions.RecordBytesMin, FaultScenarioOptions.RecordBytesMax);
                    break;
                case "--brokers":
                    o.Brokers = (int)ParseLong(arg, Value(), 3, 9);
                    break;
                case "--json":
                    o.JsonFile = Value();
                    break;
                case "--cluster-log":
                    o.ShowClusterLog = true;
                    break;
                default:
                    throw new PerfOptionsException($"Unknown option '{arg}' (see fault --help).");
            }
        }
        return o;
    }

    public FaultScenarioOptions ScenarioOptions(int seed) => new()
    {
        Seed = seed,
        Rounds = Rounds,
        Partitions = Partitions,
        RecordsPerSecond = RecordsPerSecond,
        RecordBytes = RecordBytes,
        RoundSpacing = TimeSpan.FromSeconds(DurationSeconds / Rounds),
    };

    private static int[] ParseSeeds(string list)
    {
        var parts = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length is 0 or > SeedsMax)
            throw new PerfOptionsException($"--seeds needs 1..{SeedsMax} comma-separated integers, got '{list}'.");
        return parts.Select(p => (int)ParseLong("--seeds", p, int.MinValue, int.MaxValue)).ToArray();
    }

    private static long ParseLong(string arg, string value, long min, long max)
    {
        if (!long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) || n < min || n > max)
            throw new PerfOptionsException($"{arg} must be an integer in {min}..{max}, got '{value}'.");
        return n;
    }
}
