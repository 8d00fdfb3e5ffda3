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
/// this instance (the broker has one). A rent that would go above it waits up to
/// <see cref="WaitMsMax"/> for others to give bytes back, then fails with REQUEST_TIMED_OUT
/// (retriable: the producer sends again). One rent larger than the whole limit fails at once.</item>
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
        Reserve(length);
        try
        {
            return minimumLength <= RetainedArrayBytesMax ? _retained.Rent(minimumLength) : GC.AllocateUninitializedArray<byte>(minimumLength);
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
        Release(array.Length);
        if (array.Length <= RetainedArrayBytesMax) _retained.Return(array, clearArray);
    }

    private void Reserve(long bytes)
    {
        if (bytes > BytesHeldMax)
            throw new RecordBatchFormatException($"Decompressing needs {bytes} bytes at once, above the broker's limit of {BytesHeldMax}.", ErrorCodes.MessageTooLarge);
        var started = Environment.TickCount64;
        lock (_lock)
        {
            while (_held + bytes > BytesHeldMax)
            {
                var leftMs = WaitMsMax - (Environment.TickCount64 - started);
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
