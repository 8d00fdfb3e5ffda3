using System.Buffers;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Protos.Records;

/// <summary>
/// The buffers decompressed records are validated in, with two named limits. Before it, each
/// batch's decompressed records went to <see cref="ArrayPool{T}.Shared"/>, which keeps returned
/// arrays (up to 1 GiB each, several per core): a stream of 99 KiB gzip bombs (64 MiB each)
/// left a broker at 0.9 GB that never shrank.
/// <list type="bullet">
/// <item><see cref="BytesHeldMax"/>: decompressed bytes lent out at once, across every user of
/// this instance (the broker has one). A thread's first rent that would go above it waits up to
/// <see cref="WaitMsMax"/> for others to give bytes back, then fails with REQUEST_TIMED_OUT
/// (retriable: the producer sends again). A rent by a thread that already holds bytes (a buffer
/// growing) never waits: waiting while holding lets growing validations wait on each other until
/// all time out; it fails at once instead when it does not fit. One rent larger than the whole
/// limit fails at once with MESSAGE_TOO_LARGE.</item>
/// <item><see cref="RetainedArrayBytesMax"/>: only arrays up to this size are kept for reuse
/// (at most <see cref="ArraysPerBucketMax"/> per size class, so at most about 2 x 8 x 1 MiB
/// stay allocated); larger ones are allocated for one use and left to the GC when returned.</item>
/// </list>
/// </summary>
public sealed class DecompressionMemory : ArrayPool<byte>
{
    /// <summary>Default for <see cref="BytesHeldMax"/>: four batches at the default decompressed cap.</summary>
    public const long BytesHeldMaxDefault = 256L * 1024 * 1024;
    public const int WaitMsMaxDefault = 1000;
    public const int RetainedArrayBytesMax = 1024 * 1024;
    public const int ArraysPerBucketMax = 8;

    /// <summary>The process's instance when no other is given (the broker configures its own).</summary>
    public static DecompressionMemory Default { get; } = new();

    private readonly ArrayPool<byte> _retained = Create(RetainedArrayBytesMax, ArraysPerBucketMax);
    // A plain monitor (not System.Threading.Lock): rents wait on it for returns.
    private readonly object _lock = new();
    private long _held;
    private long _heldPeak;
    // Validation is synchronous: what the current thread holds tells a growing buffer from a new one.
    private readonly ThreadLocal<long> _heldByThread = new();

    public DecompressionMemory(long bytesHeldMax = BytesHeldMaxDefault, int waitMsMax = WaitMsMaxDefault)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytesHeldMax);
        ArgumentOutOfRangeException.ThrowIfNegative(waitMsMax);
        BytesHeldMax = bytesHeldMax;
        WaitMsMax = waitMsMax;
    }

    public long BytesHeldMax { get; }
    public int WaitMsMax { get; }

    /// <summary>Bytes lent out now (array lengths, as handed out).</summary>
    public long BytesHeld { get { lock (_lock) return _held; } }
    /// <summary>Most bytes ever lent out at once.</summary>
    public long BytesHeldPeak { get { lock (_lock) return _heldPeak; } }

    public override byte[] Rent(int minimumLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(minimumLength);
        if (minimumLength == 0) return [];
        // The pool rounds up to its size classes; the reservation is for what it will hand out.
        var length = minimumLength <= RetainedArrayBytesMax ? Math.Max(16L, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)minimumLength)) : minimumLength;
        Reserve(length, mayWait: _heldByThread.Value == 0);
        try
        {
            var array = minimumLength <= RetainedArrayBytesMax ? _retained.Rent(minimumLength) : GC.AllocateUninitializedArray<byte>(minimumLength);
            _heldByThread.Value += array.Length;
            return array;
        }
        catch
        {
            Release(length);
            throw;
        }
    }

    public override void Return(byte[] array, bool clearArray = false)
    {
        if (array.Length == 0) return;
        // Clamped: an array returned on another thread than it was rented on only skews the wait decision.
        _heldByThread.Value = Math.Max(0, _heldByThread.Value - array.Length);
        Release(array.Length);
        if (array.Length <= RetainedArrayBytesMax) _retained.Return(array, clearArray);
    }

    private void Reserve(long bytes, bool mayWait)
    {
        if (bytes > BytesHeldMax)
            throw new RecordBatchFormatException($"Decompressing needs {bytes} bytes at once, above the broker's limit of {BytesHeldMax}.", ErrorCodes.MessageTooLarge);
        var started = Environment.TickCount64;
        lock (_lock)
        {
            while (_held + bytes > BytesHeldMax)
            {
                var leftMs = mayWait ? WaitMsMax - (Environment.TickCount64 - started) : 0;
                if (leftMs <= 0)
                    throw new RecordBatchFormatException(
                        $"The broker holds {_held} bytes of decompressed records (limit {BytesHeldMax}); {bytes} more did not fit within {WaitMsMax} ms.",
                        ErrorCodes.RequestTimedOut);
                Monitor.Wait(_lock, (int)leftMs);
            }
            _held += bytes;
            if (_held > _heldPeak) _heldPeak = _held;
        }
    }

    private void Release(long bytes)
    {
        lock (_lock)
        {
            _held -= bytes;
            Monitor.PulseAll(_lock);
        }
    }
}
