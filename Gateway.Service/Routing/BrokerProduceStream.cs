using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using Grpc.Core;
using StreamPlatform.ServiceDefaults;
using StreamPlatform.Protos.Grpc.Broker;
using ErrorCode = StreamPlatform.Protos.Kafka.Messages.ErrorCode;

namespace StreamPlatform.Gateway.Routing;

/// <summary>What became of one produce request sent on a <see cref="BrokerProduceStream"/>: the broker's answer, or the Kafka error for all its partitions.</summary>
public readonly record struct BrokerProduceOutcome(ProduceResponse? Response, ErrorCode Error);

/// <summary>
/// The gateway's one long-lived <c>BrokerProduceService.ProduceStream</c> to one broker, shared by every
/// client connection. Requests are written in the order they are enqueued and the broker appends
/// them in that order, so a connection that enqueues its produce requests one after the other
/// gets its per-partition order kept without waiting for answers (pipelining).
/// <list type="bullet">
/// <item>At most <see cref="OutstandingRequestsMax"/> requests are enqueued and unanswered; the
/// next <see cref="EnqueueAsync"/> waits for a slot (until its deadline).</item>
/// <item>Each request has a deadline (the client's timeout plus a margin): passing it answers
/// REQUEST_TIMED_OUT (7); one still queued is skipped by the writer. A request whose write has not
/// finished by then means the stream is stalled, and the stream is failed as below.</item>
/// <item>A stream failure (broker gone, stream ended, channel disposed) answers every request
/// written or queued on it NOT_LEADER_OR_FOLLOWER (6), so clients refresh metadata; nothing is
/// ever resent (that could duplicate records). Later requests go to a fresh stream, opened after
/// a backoff that doubles while streams fail without ever being answered; requests enqueued
/// during that backoff are answered NOT_LEADER_OR_FOLLOWER at once rather than held (a client
/// request mixing this broker's partitions with others' would otherwise wait for the backoff).</item>
/// <item>A request above the channel's send limit is answered MESSAGE_TOO_LARGE (10) at once and
/// never reaches the stream (gRPC refusing it in the writer would fail the whole stream).</item>
/// </list>
/// The request's record bytes are slices of the client's pooled frame: a request's
/// <see cref="Pending.Completion"/> completes only once the stream no longer references them
/// (written, or dropped unwritten), so the frame may be returned to its pool right after.
/// </summary>
public sealed class BrokerProduceStream : IDisposable
{
    /// <summary>Requests enqueued on one broker's stream and not yet answered (each holds a client frame of up to a few MiB).</summary>
    public const int OutstandingRequestsMax = 128;
    public const int ReconnectBackoffMinMs = 50;
    public const int ReconnectBackoffMaxMs = 2_000;

    private readonly BrokerProduceService.BrokerProduceServiceClient _client;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _endpoint;
    private readonly SemaphoreSlim _slots;
    private readonly int _outstandingMax;
    private readonly object _gate = new();
    private Session _session;
    private bool _disposed;
    private long _nextRequestId;
    private int _backoffMs = ReconnectBackoffMinMs;

    // What a ProduceStreamRequest adds around its ProduceRequest at most: two tags, a request id
    // varint (up to 10 bytes) and the request's length varint (up to 5).
    private const int EnvelopeBytesMax = 1 + 10 + 1 + 5;

    private readonly int _messageBytesMax;

    /// <param name="messageBytesMax">The channel's send limit (MaxSendMessageSize): a larger request is refused before it reaches gRPC.</param>
    public BrokerProduceStream(BrokerProduceService.BrokerProduceServiceClient client, string endpoint, TimeProvider time, ILogger logger,
        int outstandingRequestsMax = OutstandingRequestsMax, int messageBytesMax = GrpcChannels.MessageBytesMaxDefault)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(outstandingRequestsMax, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(messageBytesMax, EnvelopeBytesMax + 1);
        _messageBytesMax = messageBytesMax;
        _client = client;
        _endpoint = endpoint;
        _time = time;
        _logger = logger;
        _outstandingMax = outstandingRequestsMax;
        _slots = new SemaphoreSlim(outstandingRequestsMax, outstandingRequestsMax);
        _session = StartSession(delayMs: 0);
    }

    /// <summary>Requests holding a slot (enqueued or written, not yet resolved).</summary>
    public int Outstanding => _outstandingMax - _slots.CurrentCount;

    /// <summary>Streams opened so far (the first plus one per failure): for tests and diagnostics.</summary>
    public int SessionsStarted { get; private set; }

    /// <summary>
    /// Enqueues <paramref name="request"/> behind every request enqueued before it (in call order:
    /// callers that need order must not enqueue concurrently). Completes as soon as the request is
    /// queued, which is at once unless <see cref="OutstandingRequestsMax"/> requests are
    /// outstanding; the answer comes through the returned <see cref="Pending.Completion"/>.
    /// </summary>
    public async ValueTask<Pending> EnqueueAsync(ProduceRequest request, long deadlineMs)
    {
        // One stream carries many requests: the caller's trace context (the Kafka request's span)
        // rides in the message. Activity.Id is the W3C traceparent value; nothing when not traced.
        if (Activity.Current is { IdFormat: ActivityIdFormat.W3C } traced) request.Traceparent = traced.Id;
        // gRPC's serializer would refuse it (ResourceExhausted) in the writer, which fails the
        // stream and with it every request of every connection written on it, and the client,
        // told NOT_LEADER_OR_FOLLOWER, would send it again. Refused here, it fails alone.
        if (request.CalculateSize() > _messageBytesMax - EnvelopeBytesMax)
            return Pending.Resolved(new BrokerProduceOutcome(null, ErrorCode.MessageTooLarge));
        var deadline = TimeSpan.FromMilliseconds(Math.Max(deadlineMs, 0));
        if (!_slots.Wait(0))
        {
            using var timeout = new CancellationTokenSource(deadline, _time);
            var waitStarted = _time.GetTimestamp();
            try
            {
                await _slots.WaitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return Pending.Resolved(new BrokerProduceOutcome(null, ErrorCode.RequestTimedOut));
            }
            deadline -= _time.GetElapsedTime(waitStarted);
            if (deadline <= TimeSpan.Zero)
            {
                _slots.Release();
                return Pending.Resolved(new BrokerProduceOutcome(null, ErrorCode.RequestTimedOut));
            }
        }

        Pending pending;
        lock (_gate)
        {
            // While the stream waits out its reconnect backoff the broker is known unreachable:
            // answering at once keeps this broker's partitions from holding up a client request
            // that also carries partitions of healthy brokers (its answer needs every share).
            if (_disposed || _session.BackingOff)
            {
                _slots.Release();
                return Pending.Resolved(new BrokerProduceOutcome(null, ErrorCode.NotLeaderOrFollower));
            }
            var message = new ProduceStreamRequest { RequestId = ++_nextRequestId, Request = request };
            pending = new Pending(this, _session, message);
            // Never fails: a session's queue is completed only under this lock, when it is replaced.
            _session.Queue.Writer.TryWrite(pending);
        }
        pending.ArmDeadline(_time, deadline);
        return pending;
    }

    /// <summary>One enqueued request.</summary>
    public sealed class Pending
    {
        private readonly BrokerProduceStream? _owner;
        private readonly TaskCompletionSource<BrokerProduceOutcome> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly object _lock = new();
        private BrokerProduceOutcome _outcome;
        private bool _resolved;
        private bool _released;
        private ITimer? _deadline;

        internal Pending(BrokerProduceStream owner, Session session, ProduceStreamRequest message)
        {
            _owner = owner;
            Session = session;
            Message = message;
        }

        private Pending()
        {
            Session = null!;
            Message = null!;
            _resolved = _released = true;
        }

        internal static Pending Resolved(BrokerProduceOutcome outcome)
        {
            var p = new Pending { _outcome = outcome };
            p._completion.SetResult(outcome);
            return p;
        }

        internal Session Session { get; }
        internal ProduceStreamRequest Message { get; }
        internal long Id => Message.RequestId;
        // Queued -> Writing (the writer took it) -> Written (handed to gRPC completely).
        internal const int Queued = 0, Writing = 1, Written = 2;
        private int _writeState;
        internal int WriteState => Volatile.Read(ref _writeState);
        internal void SetWriteState(int state) => Volatile.Write(ref _writeState, state);

        internal bool IsResolved { get { lock (_lock) return _resolved; } }

        /// <summary>The outcome, once it is known and the stream no longer references the request.</summary>
        public Task<BrokerProduceOutcome> Completion => _completion.Task;

        internal void ArmDeadline(TimeProvider time, TimeSpan due)
        {
            var timer = time.CreateTimer(static s => ((Pending)s!).OnDeadline(), this, due, Timeout.InfiniteTimeSpan);
            bool dispose;
            lock (_lock)
            {
                dispose = _resolved;
                if (!dispose) _deadline = timer;
            }
            if (dispose) timer.Dispose();
        }

        private void OnDeadline()
        {
            if (!TryResolve(new BrokerProduceOutcome(null, ErrorCode.RequestTimedOut))) return;
            switch (WriteState)
            {
                case Written:
                    Session.Sent.TryRemove(Id, out _); // a late answer is ignored
                    break;
                case Writing:
                    // Its write has not finished by its deadline: the broker stopped reading (HTTP/2
                    // flow control) or cannot be reached. Only failing the stream ends the write
                    // (and so releases the bytes); everything behind it is answered too.
                    _owner!.Fail(Session, "a request's write did not finish by its deadline");
                    break;
                default:
                    // Still queued behind others: the writer skips it (and releases it) when it
                    // gets there; the stream itself is moving, so it stays.
                    break;
            }
        }

        /// <summary>First outcome wins; frees the outstanding slot. False if already resolved.</summary>
        internal bool TryResolve(BrokerProduceOutcome outcome)
        {
            ITimer? timer;
            bool complete;
            lock (_lock)
            {
                if (_resolved) return false;
                _resolved = true;
                _outcome = outcome;
                timer = _deadline;
                _deadline = null;
                complete = _released;
            }
            timer?.Dispose();
            _owner!._slots.Release();
            if (complete) _completion.TrySetResult(outcome);
            return true;
        }

        /// <summary>The stream will not touch the request's bytes any more.</summary>
        internal void Release()
        {
            BrokerProduceOutcome outcome;
            lock (_lock)
            {
                if (_released) return;
                _released = true;
                if (!_resolved) return;
                outcome = _outcome;
            }
            _completion.TrySetResult(outcome);
        }
    }

    /// <summary>One gRPC stream and the requests enqueued for it.</summary>
    internal sealed class Session
    {
        // Several readers: the writer loop, and a failure draining what is left.
        public readonly Channel<Pending> Queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleWriter = false, SingleReader = false });
        public readonly ConcurrentDictionary<long, Pending> Sent = new();
        public readonly CancellationTokenSource Stop = new();
        public bool Failed;
        public volatile bool Answered;
        /// <summary>Within the reconnect backoff after a failed stream: requests are refused at once.</summary>
        public volatile bool BackingOff;
    }

    private Session StartSession(int delayMs)
    {
        var session = new Session { BackingOff = delayMs > 0 };
        SessionsStarted++;
        // The stream outlives the request that happens to open it: started outside that request's
        // span, or the gRPC call (and the broker's server span for it) would join its trace and
        // last as long as the stream.
        var current = Activity.Current;
        Activity.Current = null;
        try
        {
            _ = RunAsync(session, delayMs);
        }
        finally
        {
            Activity.Current = current;
        }
        return session;
    }

    private async Task RunAsync(Session session, int delayMs)
    {
        try
        {
            // The backoff runs from the failure (requests meanwhile are refused, see EnqueueAsync).
            if (delayMs > 0)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(delayMs), _time, session.Stop.Token).ConfigureAwait(false);
                session.BackingOff = false;
            }
            // Opened on the first request only: an idle broker costs no stream, and a broker that
            // is down is not reconnected to in a loop while nobody produces to it.
            if (!await session.Queue.Reader.WaitToReadAsync(session.Stop.Token).ConfigureAwait(false)) return;
            using var call = _client.ProduceStream(cancellationToken: session.Stop.Token);
            var reader = ReadAsync(session, call.ResponseStream);
            try
            {
                await foreach (var pending in session.Queue.Reader.ReadAllAsync(session.Stop.Token).ConfigureAwait(false))
                {
                    if (pending.IsResolved)
                    {
                        pending.Release(); // timed out while queued: never sent
                        continue;
                    }
                    session.Sent[pending.Id] = pending; // before writing: the answer can come before WriteAsync returns
                    pending.SetWriteState(Pending.Writing);
                    // Timed out between the check above and now: its deadline callback saw it queued.
                    if (pending.IsResolved)
                    {
                        session.Sent.TryRemove(pending.Id, out _);
                        pending.Release();
                        continue;
                    }
                    try
                    {
                        await call.RequestStream.WriteAsync(pending.Message).ConfigureAwait(false);
                        pending.SetWriteState(Pending.Written);
                    }
                    finally
                    {
                        pending.Release();
                    }
                    if (pending.IsResolved) session.Sent.TryRemove(pending.Id, out _); // timed out meanwhile
                }
            }
            finally
            {
                Fail(session, "the stream was stopped");
                await reader.ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is RpcException or OperationCanceledException or ObjectDisposedException or InvalidOperationException or IOException)
        {
            Fail(session, ex.Message);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Produce stream to {Endpoint} failed unexpectedly", _endpoint);
            Fail(session, ex.Message);
        }
        finally
        {
            // The writer is done with every request it took; anything still queued was never sent.
            DrainUnsent(session);
        }
    }

    private async Task ReadAsync(Session session, IAsyncStreamReader<ProduceStreamResponse> responses)
    {
        try
        {
            while (await responses.MoveNext(session.Stop.Token).ConfigureAwait(false))
            {
                var answer = responses.Current;
                if (!session.Answered)
                {
                    session.Answered = true;
                    lock (_gate) _backoffMs = ReconnectBackoffMinMs;
                }
                if (session.Sent.TryRemove(answer.RequestId, out var pending))
                    pending.TryResolve(new BrokerProduceOutcome(answer.Response ?? new ProduceResponse(), ErrorCode.None));
            }
            Fail(session, "the broker ended the stream");
        }
        catch (Exception ex) when (ex is RpcException or OperationCanceledException or ObjectDisposedException or InvalidOperationException or IOException)
        {
            Fail(session, ex.Message);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Produce stream to {Endpoint}: reading answers failed unexpectedly", _endpoint);
            Fail(session, ex.Message);
        }
    }

    /// <summary>
    /// Ends <paramref name="session"/> (once): later requests go to a fresh stream; every request
    /// written on it is answered NOT_LEADER_OR_FOLLOWER, as is every queued one (whose bytes are
    /// released here, or by the writer if it holds one).
    /// </summary>
    private void Fail(Session session, string reason)
    {
        bool disposed;
        lock (_gate)
        {
            if (session.Failed) return;
            session.Failed = true;
            session.Queue.Writer.TryComplete();
            disposed = _disposed;
            if (!disposed && ReferenceEquals(_session, session))
            {
                var delayMs = 0;
                if (!session.Answered)
                {
                    delayMs = _backoffMs;
                    _backoffMs = Math.Min(_backoffMs * 2, ReconnectBackoffMaxMs);
                }
                _session = StartSession(delayMs);
            }
        }
        if (!disposed && (session.Answered || !session.Sent.IsEmpty))
            _logger.LogWarning("Produce stream to {Endpoint} failed ({Reason}); {Count} requests answered NOT_LEADER_OR_FOLLOWER",
                _endpoint, reason, session.Sent.Count);
        else
            _logger.LogDebug("Produce stream to {Endpoint} ended: {Reason}", _endpoint, reason);
        session.Stop.Cancel();
        foreach (var id in session.Sent.Keys)
            if (session.Sent.TryRemove(id, out var pending))
                pending.TryResolve(new BrokerProduceOutcome(null, ErrorCode.NotLeaderOrFollower));
        DrainUnsent(session);
    }

    private static void DrainUnsent(Session session)
    {
        while (session.Queue.Reader.TryRead(out var pending))
        {
            pending.TryResolve(new BrokerProduceOutcome(null, ErrorCode.NotLeaderOrFollower));
            pending.Release();
        }
        // A request taken by the writer after the failure's sweep and written on the dying call.
        foreach (var id in session.Sent.Keys)
            if (session.Sent.TryRemove(id, out var pending))
                pending.TryResolve(new BrokerProduceOutcome(null, ErrorCode.NotLeaderOrFollower));
    }

    /// <summary>Fails every pending request (the channel is about to be disposed); later enqueues answer NOT_LEADER_OR_FOLLOWER.</summary>
    public void Dispose()
    {
        Session session;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            session = _session;
        }
        Fail(session, "the broker's channel was closed");
    }
}
