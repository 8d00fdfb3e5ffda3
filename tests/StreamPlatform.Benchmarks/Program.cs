using StreamPlatform.Benchmarks.Fault;
using StreamPlatform.Benchmarks.Micro;
using StreamPlatform.Benchmarks.Perf;

namespace StreamPlatform.Benchmarks;

public static class Program
{
    private const string Usage = """
        StreamPlatform benchmarks (run in Release):
          dotnet run -c Release --project tests/StreamPlatform.Benchmarks -- perf [options]    Kafka client figures (perf --help)
          dotnet run -c Release --project tests/StreamPlatform.Benchmarks -- fault [options]   replication fault runs over seeds (fault --help)
          dotnet run -c Release --project tests/StreamPlatform.Benchmarks -- micro [BDN args]  hot-path micro-benchmarks (micro --help)
        """;

    public static async Task<int> Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            Console.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }
        var rest = args[1..];
        return args[0] switch
        {
            "perf" => await PerfCommand.RunAsync(rest),
            "fault" => await FaultCommand.RunAsync(rest),
            "micro" => MicroCommand.Run(rest),
            _ => Unknown(args[0]),
        };
    }

    private static int Unknown(string command)
    {
        Console.Error.WriteLine($"Unknown command '{command}'.");
        Console.Error.WriteLine(Usage);
        return 2;
    }
}
