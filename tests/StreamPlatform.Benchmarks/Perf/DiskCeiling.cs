using System.Diagnostics;

namespace StreamPlatform.Benchmarks.Perf;

/// <summary>
/// Appending to a new file the way a broker appends to a new log segment: 1 MiB writes at
/// increasing offsets, no fsync (the page cache takes them), the file deleted afterwards. On
/// this kind of VM writing into page-cache pages the guest has not touched recently costs far
/// more than a memcpy (each first touch of a page faults on the host), so this is the ceiling
/// for everything the cluster stores: every produced byte is appended once.
/// </summary>
public static class DiskCeiling
{
    public const int WriteBytes = 1 << 20;

    public static RunResult Measure(int run, long totalBytes, string directory)
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, $"ceiling-disk-{Environment.ProcessId}-{run}.log");
        var buffer = new byte[WriteBytes];
        Random.Shared.NextBytes(buffer);
        long written = 0;
        var meter = new RateMeter();
        try
        {
            using var progress = new Progress($"{ScenarioCatalog.Disk} run {run}", () => $"{meter.PerSecond(Interlocked.Read(ref written)) / 1e6,8:F0} MB/s");
            using var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, FileOptions.None);
            var clock = Stopwatch.StartNew();
            while (written < totalBytes)
            {
                var length = (int)Math.Min(WriteBytes, totalBytes - written);
                RandomAccess.Write(file, buffer.AsSpan(0, length), written);
                Interlocked.Add(ref written, length);
            }
            var seconds = clock.Elapsed.TotalSeconds;
            return new RunResult
            {
                Run = run,
                Records = (written + WriteBytes - 1) / WriteBytes,
                Bytes = written,
                Seconds = seconds,
                RecordsPerSec = written / (double)WriteBytes / seconds,
                MBPerSec = written / 1e6 / seconds,
            };
        }
        finally
        {
            File.Delete(path);
        }
    }
}
