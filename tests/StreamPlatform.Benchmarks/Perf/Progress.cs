using System.Diagnostics;

namespace StreamPlatform.Benchmarks.Perf;

/// <summary>
/// A status line on stderr once a second while a scenario runs: rewritten in place on a
/// terminal, one line per second when stderr is redirected (logs stay readable).
/// </summary>
public sealed class Progress : IDisposable
{
    private readonly string _label;
    private readonly Func<string> _status;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Timer _timer;
    private readonly bool _inPlace = !Console.IsErrorRedirected;
    private const int LineWidthChars = 110; // pads over a longer previous line
    private readonly object _gate = new();
    private bool _disposed;

    public Progress(string label, Func<string> status)
    {
        _label = label;
        _status = status;
        _timer = new Timer(_ => Print(final: false), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    private void Print(bool final)
    {
        lock (_gate)
        {
            if (_disposed) return;
            var line = $"[{_label}] {_clock.Elapsed.TotalSeconds,5:F0}s {_status()}";
            if (_inPlace)
                Console.Error.Write("\r" + line.PadRight(LineWidthChars) + (final ? "\n" : ""));
            else
                Console.Error.WriteLine(line);
        }
    }

    public void Dispose()
    {
        _timer.Dispose();
        Print(final: true);
        lock (_gate) _disposed = true;
    }
}

/// <summary>Per-second rates from monotonically growing counters.</summary>
public sealed class RateMeter
{
    private long _lastValue;
    private long _lastTicks = Stopwatch.GetTimestamp();

    public double PerSecond(long value)
    {
        var now = Stopwatch.GetTimestamp();
        var seconds = (now - _lastTicks) / (double)Stopwatch.Frequency;
        var rate = seconds > 0 ? (value - _lastValue) / seconds : 0;
        _lastValue = value;
        _lastTicks = now;
        return rate;
    }
}
