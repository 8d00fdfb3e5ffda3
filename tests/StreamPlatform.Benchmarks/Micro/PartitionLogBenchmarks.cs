using System.Buffers;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using StreamPlatform.Broker.Services;
using StreamPlatform.Broker.Storage;

namespace StreamPlatform.Benchmarks.Micro;

/// <summary>
/// Broker storage: PartitionLog.Append of a ~16 KiB batch (100 records of ~150 B) into a fresh
/// log in a temp folder (page cache; no fsync, the default flush policy), as the produce path
/// calls it after RecordBatchValidator (crcVerified: true). A fixed invocation count bounds the
/// bytes written per iteration (2000 x 16 KiB = 32 MiB); the log is deleted after each iteration.
/// </summary>
[InvocationCount(2000)]
public class PartitionLogAppendBenchmarks
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "streamplatform-bench-append-" + Guid.NewGuid().ToString("N")[..8]);
    private byte[] _batch = [];
    private PartitionLog? _log;

    [GlobalSetup]
    public void Setup() => _batch = BenchData.Batch(100, 150);

    [IterationSetup]
    public void OpenLog()
    {
        var dir = Path.Combine(_root, "bench-0");
        if (Directory.Exists(dir))
            Directory.Delete(dir, recursive: true);
        _log = PartitionLog.Open(dir, new TopicPartition("bench", 0), Guid.NewGuid(), LogConfig.Default, TimeProvider.System, NullLogger.Instance);
    }

    [IterationCleanup]
    public void CloseLog()
    {
        _log?.Dispose();
        _log = null;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, recursive: true);
    }

    [Benchmark]
    [AllocationBudget(768, Reason = "688 B measured, per append (not per record): batch summaries, the 61-byte header copy, gather list, signal")]
    public long Append16KiB() => _log!.Append(_batch, crcVerified: true).LastOffset;
}

/// <summary>
/// Broker storage: PartitionLog.Read of up to 1 MiB from a 64 MiB log (offsets cycling through
/// it), locating the batches only, and locating plus copying them into a reused 1 MiB buffer
/// (what a fetch does before the bytes go on the wire).
/// </summary>
public class PartitionLogReadBenchmarks
{
    private const int MaxBytes = 1 << 20;
    private readonly string _root = Path.Combine(Path.GetTempPath(), "streamplatform-bench-read-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly byte[] _buffer = new byte[MaxBytes];
    private PartitionLog? _log;
    private long _offset;
    private long _end;

    [GlobalSetup]
    public void Setup()
    {
        var batch = BenchData.Batch(100, 150);
        _log = PartitionLog.Open(Path.Combine(_root, "bench-0"), new TopicPartition("bench", 0), Guid.NewGuid(), LogConfig.Default,
            TimeProvider.System, NullLogger.Instance);
        for (long bytes = 0; bytes < 64L << 20; bytes += batch.Length)
            _log.Append(batch, crcVerified: true);
        _end = _log.HighWatermark;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _log?.Dispose();
        if (Directory.Exists(_root))
            Directory.Delete(_root, recursive: true);
    }

    private long NextOffset()
    {
        // Step by 6400 records (~1 MiB) so consecutive reads locate different batches.
        _offset += 6_400;
        if (_offset >= _end) _offset %= 6_400 + 1;
        return _offset;
    }

    [Benchmark]
    [AllocationBudget(96, Reason = "one LogReadResult per read; no bytes are copied")]
    public int Read1MiBLocate() => _log!.Read(NextOffset(), MaxBytes).Length;

    [Benchmark]
    [AllocationBudget(MaxBytes + 256, Reason = "the broker's fetch before pooling (still its path without FetchBuffers): a new 1 MiB (LOH) array per partition per fetch")]
    public int Read1MiBToArray() => _log!.Read(NextOffset(), MaxBytes).ToArray().Length;

    [Benchmark]
    [AllocationBudget(96, Reason = "one LogReadResult per read; bytes go into the caller's buffer")]
    public int Read1MiBCopy()
    {
        var result = _log!.Read(NextOffset(), MaxBytes);
        result.CopyTo(_buffer);
        return result.Length;
    }

    [Benchmark]
    [AllocationBudget(256, Reason = "what BrokerGrpcService.ReadOnce does: one LogReadResult per read plus the per-fetch FetchBuffers; the bytes go into a rented buffer")]
    public int Read1MiBPooled()
    {
        using var buffers = new FetchBuffers(ArrayPool<byte>.Shared);
        var result = _log!.Read(NextOffset(), MaxBytes);
        result.CopyTo(buffers.Rent(result.Length));
        return result.Length;
    }
}
