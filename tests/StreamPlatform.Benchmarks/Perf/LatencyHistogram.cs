using System.Diagnostics;
using System.Numerics;

namespace StreamPlatform.Benchmarks.Perf;

/// <summary>
/// Log-linear latency histogram in microseconds (HdrHistogram style): exact below 256 µs, then
/// 128 sub-buckets per power of two (under 0.8 % error), up to 2^40 µs. Fixed size (about 43 KB),
/// no allocation per value. Single writer (the consumer thread); read after the writer stopped.
/// </summary>
public sealed class LatencyHistogram
{
    private const int LinearBuckets = 256;
    private const int SubBuckets = 128;
    private const int ShiftMax = 40;
    private readonly long[] _counts = new long[LinearBuckets + ShiftMax * SubBuckets];

    public long Count { get; private set; }

    public long MaxMicros { get; private set; }

    public static double TicksToMicros(long ticks) => ticks * 1_000_000.0 / Stopwatch.Frequency;

    public void RecordTicks(long ticks) => Record((long)TicksToMicros(Math.Max(ticks, 0)));

    public void Record(long micros)
    {
        if (micros < 0) micros = 0;
        _counts[Index(micros)]++;
        Count++;
        if (micros > MaxMicros) MaxMicros = micros;
    }

    /// <summary>The value at or below which <paramref name="percentile"/> % of the values lie (bucket upper bound); -1 when empty.</summary>
    public double PercentileMicros(double percentile)
    {
        if (Count == 0) return -1;
        var rank = (long)Math.Ceiling(percentile / 100.0 * Count);
        rank = Math.Clamp(rank, 1, Count);
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
                return Math.Min(UpperBound(i), MaxMicros);
        }
        return MaxMicros;
    }

    private static int Index(long micros)
    {
        if (micros < LinearBuckets) return (int)micros;
        var msb = 63 - BitOperations.LeadingZeroCount((ulong)micros);
        var shift = msb - 7; // micros >> shift is in [128, 255]
        if (shift > ShiftMax) return LinearBuckets + ShiftMax * SubBuckets - 1;
        return LinearBuckets + (shift - 1) * SubBuckets + (int)((micros >> shift) - SubBuckets);
    }

    private static long UpperBound(int index)
    {
        if (index < LinearBuckets) return index;
        var shift = (index - LinearBuckets) / SubBuckets + 1;
        var mantissa = (index - LinearBuckets) % SubBuckets + SubBuckets;
        return ((long)(mantissa + 1) << shift) - 1;
    }
}
