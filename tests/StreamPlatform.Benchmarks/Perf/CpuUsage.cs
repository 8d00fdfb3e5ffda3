using System.Diagnostics;
using System.Globalization;

namespace StreamPlatform.Benchmarks.Perf;

/// <summary>CPU used by one process (or the whole machine) during a run.</summary>
public sealed record CpuFigure(double Seconds, double CoresUsed);

/// <summary>
/// Where the CPU went during a run, from /proc: user+system time of this process and of each
/// cluster service, and the whole machine's busy time (which includes other users of the box:
/// on a shared machine that is the contention the figures suffered). Linux only; empty elsewhere.
/// </summary>
public sealed class CpuUsage
{
    private readonly IReadOnlyDictionary<string, int> _pids;
    private readonly Dictionary<string, double> _start;
    private readonly (double Busy, double Total)? _machineStart;
    private readonly long _startTicks = Stopwatch.GetTimestamp();

    private CpuUsage(IReadOnlyDictionary<string, int> pids)
    {
        _pids = pids;
        _start = Snapshot();
        _machineStart = MachineTicks();
    }

    /// <summary>Starts measuring this process ("bench") and the given services.</summary>
    public static CpuUsage Start(IReadOnlyDictionary<string, int>? services) =>
        new(services ?? new Dictionary<string, int>());

    public Dictionary<string, CpuFigure> Stop()
    {
        var wall = (Stopwatch.GetTimestamp() - _startTicks) / (double)Stopwatch.Frequency;
        var end = Snapshot();
        var result = new Dictionary<string, CpuFigure>(StringComparer.Ordinal);
        foreach (var (name, seconds) in end)
        {
            if (_start.TryGetValue(name, out var before))
                result[name] = new CpuFigure(Math.Round(seconds - before, 3), wall > 0 ? Math.Round((seconds - before) / wall, 3) : 0);
        }
        if (_machineStart is { } m0 && MachineTicks() is { } m1 && m1.Total > m0.Total)
        {
            // Busy share of all cores, expressed in cores (2.0 = both cores of a 2-core box fully busy).
            var cores = (m1.Busy - m0.Busy) / (m1.Total - m0.Total) * Environment.ProcessorCount;
            result["machine"] = new CpuFigure(Math.Round(cores * wall, 3), Math.Round(cores, 3));
        }
        return result;
    }

    private Dictionary<string, double> Snapshot()
    {
        var result = new Dictionary<string, double>(StringComparer.Ordinal)
        {
            ["bench"] = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds,
        };
        foreach (var (name, pid) in _pids)
        {
            if (ProcessSeconds(pid) is { } s)
                result[name] = s;
        }
        return result;
    }

    /// <summary>utime + stime of a process in seconds (fields 14 and 15 of /proc/PID/stat, in clock ticks of 1/100 s).</summary>
    private static double? ProcessSeconds(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // The command name (field 2) may contain spaces; fields are counted after its closing parenthesis.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var utime = long.Parse(fields[11], CultureInfo.InvariantCulture);
            var stime = long.Parse(fields[12], CultureInfo.InvariantCulture);
            return (utime + stime) / 100.0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>Busy and total jiffies of all cpus from the first line of /proc/stat.</summary>
    private static (double Busy, double Total)? MachineTicks()
    {
        try
        {
            var first = File.ReadLines("/proc/stat").First();
            var values = first.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            var idle = values[3] + (values.Length > 4 ? values[4] : 0); // idle + iowait
            var total = values.Take(8).Sum(); // user nice system idle iowait irq softirq steal
            return (total - idle, total);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or InvalidOperationException)
        {
            return null;
        }
    }
}
