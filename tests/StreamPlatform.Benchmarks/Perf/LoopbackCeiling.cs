using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace StreamPlatform.Benchmarks.Perf;

/// <summary>
/// Raw loopback TCP: one thread writes 1 MiB buffers into a connected socket pair, another reads
/// them, for a fixed time. Nothing any Kafka path on this machine does can move bytes faster.
/// </summary>
public static class LoopbackCeiling
{
    public const int BufferBytes = 1 << 20;

    public static RunResult Measure(int run, TimeSpan duration, TimeSpan warmup)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var writer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        writer.Connect(listener.LocalEndPoint!);
        using var reader = listener.Accept();

        long received = 0;
        var stop = 0;
        var send = new Thread(() =>
        {
            var buffer = new byte[BufferBytes];
            Random.Shared.NextBytes(buffer);
            try
            {
                while (Volatile.Read(ref stop) == 0)
                    writer.Send(buffer);
            }
            catch (SocketException)
            {
            }
            catch (ObjectDisposedException)
            {
            }
        }) { IsBackground = true, Name = "loopback-send" };
        var receive = new Thread(() =>
        {
            var buffer = new byte[BufferBytes];
            try
            {
                int n;
                while ((n = reader.Receive(buffer)) > 0)
                    Interlocked.Add(ref received, n);
            }
            catch (SocketException)
            {
            }
            catch (ObjectDisposedException)
            {
            }
        }) { IsBackground = true, Name = "loopback-receive" };
        send.Start();
        receive.Start();

        var meter = new RateMeter();
        using (new Progress($"{ScenarioCatalog.Loopback} run {run}", () => $"{meter.PerSecond(Interlocked.Read(ref received)) / 1e6,8:F0} MB/s"))
        {
            Thread.Sleep(warmup);
            var startBytes = Interlocked.Read(ref received);
            var clock = Stopwatch.StartNew();
            Thread.Sleep(duration);
            var bytes = Interlocked.Read(ref received) - startBytes;
            var seconds = clock.Elapsed.TotalSeconds;
            Volatile.Write(ref stop, 1);
            writer.Shutdown(SocketShutdown.Both);
            send.Join(TimeSpan.FromSeconds(5));
            reader.Shutdown(SocketShutdown.Both);
            receive.Join(TimeSpan.FromSeconds(5));
            return new RunResult
            {
                Run = run,
                Records = bytes / BufferBytes,
                Bytes = bytes,
                Seconds = seconds,
                RecordsPerSec = bytes / (double)BufferBytes / seconds,
                MBPerSec = bytes / 1e6 / seconds,
            };
        }
    }
}
