using Grpc.Core;
using StreamPlatform.Protos.Grpc.Controller;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Transactions;

/// <summary>
/// The producer ids this broker hands out in InitProducerId (Kafka's RPCProducerIdManager): it
/// holds the current block from the controller (AllocateProducerIds, over the broker's one
/// controller channel) and asks for the next once 90% of the current is used, so producers
/// normally never wait for the controller. Ids are never given twice: a block is recorded by
/// the controller before it is answered, and a block is dropped (never reused) when the broker
/// restarts.
/// <para>While no id is at hand (first call after start, or the prefetch failed), callers wait
/// for the block being fetched, at most <see cref="WaitMs"/> and at most
/// <see cref="WaitersMax"/> of them; the rest, and those whose wait ends, get
/// COORDINATOR_LOAD_IN_PROGRESS (Kafka's answer while its block is empty: clients retry it).</para>
/// </summary>
public sealed class ProducerIdManager
{
    /// <summary>The next block is asked for once this share of the current one is used (Kafka's 90%).</summary>
    public const double PrefetchShare = 0.9;
    /// <summary>Pause after a failed controller call before the next (Kafka's RETRY_BACKOFF_MS is 50).</summary>
    public static readonly TimeSpan RetryBackoff = TimeSpan.FromMilliseconds(100);

    private readonly ControllerService.ControllerServiceClient _controller;
    private readonly int _brokerId;
    private readonly Func<long> _brokerEpoch;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TimeSpan _callTimeout;
    private readonly Lock _gate = new();
    private Block? _current;
    private Block? _next;
    private bool _fetching;
    private DateTimeOffset _retryAt = DateTimeOffset.MinValue;
    private int _waiters;
    // Completed (and replaced) whenever a fetch ends, successfully or not.
    private TaskCompletionSource _fetched = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ProducerIdManager(ControllerService.ControllerServiceClient controller, int brokerId, Func<long> brokerEpoch, TimeProvider time, ILogger<ProducerIdManager> logger,
        int callTimeoutMs = 5000, int waitMs = 1000, int waitersMax = 1024)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(waitMs);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(waitersMax);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(callTimeoutMs);
        _controller = controller;
        _brokerId = brokerId;
        _brokerEpoch = brokerEpoch;
        _time = time;
        _logger = logger;
        _callTimeout = TimeSpan.FromMilliseconds(callTimeoutMs);
        WaitMs = waitMs;
        WaitersMax = waitersMax;
    }

    /// <summary>Longest a caller waits for a block being fetched.</summary>
    public int WaitMs { get; }
    /// <summary>Most callers waiting for a block at once.</summary>
    public int WaitersMax { get; }
    /// <summary>Blocks received from the controller since start.</summary>
    public int BlocksReceived { get; private set; }

    /// <summary>A producer id never given before, or COORDINATOR_LOAD_IN_PROGRESS when none is at hand in time.</summary>
    public async ValueTask<(short ErrorCode, long ProducerId)> NextAsync(CancellationToken cancellationToken)
    {
        Task fetched;
        lock (_gate)
        {
            if (TryTake(out var id)) return (ErrorCodes.None, id);
            if (_next is null) StartFetchLocked();
            // Nothing to wait for while the retry backoff is on, nor beyond the waiter limit.
            if (!_fetching || _waiters >= WaitersMax || WaitMs == 0) return (ErrorCodes.CoordinatorLoadInProgress, -1);
            _waiters++;
            fetched = _fetched.Task;
        }
        try
        {
            await fetched.WaitAsync(TimeSpan.FromMilliseconds(WaitMs), _time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Answered below: the block did not come in time.
        }
        finally
        {
            lock (_gate) _waiters--;
        }
        lock (_gate)
            return TryTake(out var id) ? (ErrorCodes.None, id) : (ErrorCodes.CoordinatorLoadInProgress, -1);
    }

    /// <summary>Takes the next id of the current block (moving to the prefetched one when it is used up). Caller holds the lock.</summary>
    private bool TryTake(out long id)
    {
        if (_current is null || _current.Exhausted)
        {
            _current = _next;
            _next = null;
        }
        if (_current is null || _current.Exhausted)
        {
            id = -1;
            return false;
        }
        id = _current.NextId++;
        if (_next is null && _current.PastPrefetchPoint) StartFetchLocked();
        return true;
    }

    /// <summary>Starts one AllocateProducerIds call unless one is running or the retry backoff is on. Caller holds the lock.</summary>
    private void StartFetchLocked()
    {
        if (_fetching || _time.GetUtcNow() < _retryAt) return;
        _fetching = true;
        // Off the caller's stack and lock: the call's continuation takes the lock itself.
        _ = Task.Run(FetchAsync);
    }

    private async Task FetchAsync()
    {
        Block? block = null;
        try
        {
            var epoch = _brokerEpoch();
            if (epoch < 0)
                _logger.LogDebug("Producer id block not requested: broker {BrokerId} is not registered yet", _brokerId);
            else
            {
                var reply = await _controller.AllocateProducerIdsAsync(new AllocateProducerIdsRequest { BrokerId = _brokerId, BrokerEpoch = epoch },
                    deadline: DateTime.UtcNow + _callTimeout).ConfigureAwait(false);
                if (reply.ErrorCode != ErrorCodes.None)
                    _logger.LogWarning("AllocateProducerIds refused (error {Code}: {Message}); retrying after {BackoffMs} ms", reply.ErrorCode, reply.ErrorMessage, (int)RetryBackoff.TotalMilliseconds);
                else if (reply.ProducerIdStart < 0 || reply.ProducerIdLen <= 0 || reply.ProducerIdStart > long.MaxValue - reply.ProducerIdLen)
                    _logger.LogError("AllocateProducerIds answered an invalid block [{Start}, +{Length})", reply.ProducerIdStart, reply.ProducerIdLen);
                else
                    block = new Block(reply.ProducerIdStart, reply.ProducerIdLen);
            }
        }
        catch (RpcException ex)
        {
            _logger.LogWarning("AllocateProducerIds failed ({Status}: {Detail}); retrying after {BackoffMs} ms", ex.StatusCode, ex.Status.Detail, (int)RetryBackoff.TotalMilliseconds);
        }
#pragma warning disable CA1031 // the fetch must always end in the state update below, or no block would ever be asked for again
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _logger.LogError(ex, "AllocateProducerIds failed unexpectedly; retrying after {BackoffMs} ms", (int)RetryBackoff.TotalMilliseconds);
        }
        TaskCompletionSource done;
        lock (_gate)
        {
            _fetching = false;
            // A block below one already held would hand out ids twice: refuse it (the controller only moves forward).
            var highest = _next?.End ?? _current?.End ?? 0;
            if (block is not null && block.Start < highest)
            {
                _logger.LogError("AllocateProducerIds answered block [{Start}, {End}) below the ids already held (up to {Highest}); ignored", block.Start, block.End, highest);
                block = null;
            }
            if (block is null) _retryAt = _time.GetUtcNow() + RetryBackoff;
            else
            {
                BlocksReceived++;
                if (_current is null || _current.Exhausted) _current = block;
                else _next = block;
                _logger.LogInformation("Producer id block [{Start}, {End}) received", block.Start, block.End);
            }
            done = _fetched;
            _fetched = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        done.TrySetResult();
    }

    private sealed class Block(long start, int length)
    {
        public long Start { get; } = start;
        public long End { get; } = start + length;
        public long NextId { get; set; } = start;
        public bool Exhausted => NextId >= End;
        public bool PastPrefetchPoint => NextId - Start >= (long)(PrefetchShare * (End - Start));
    }
}
