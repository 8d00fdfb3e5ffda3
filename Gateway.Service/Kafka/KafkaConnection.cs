using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Threading.Channels;
using StreamPlatform.Gateway.Apis;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Kafka;

/// <summary>
/// One client connection. The read loop (in the style of Kestrel's HTTP/2 loop: ReadAsync ->
/// TryReadFrame -> AdvanceTo) decodes each request synchronously, starts its handler and queues
/// the handler's task; the write loop awaits those tasks strictly in queue order, so responses go
/// out in request order however the handlers complete (Kafka clients match responses to requests
/// by order as well as by correlation id). At most MaxInFlightRequestsPerConnection requests are
/// queued; the read loop stops reading until the writer frees a slot. Sequential handlers start
/// in request order: an OrderedAtDispatch one (Produce) once the previous Sequential request has
/// dispatched (its effects are ordered), any other one (topic admin) once every earlier
/// Sequential request has completed; a ResponseMayBeLarge one (Fetch) once every earlier response
/// has been sent.
///
/// Memory bounds (Kafka's, see Gateway.Service/README.md): a frame's bytes are reserved from the
/// gateway-wide <see cref="RequestMemoryBudget"/> as soon as its size prefix is read (Kafka
/// allocates the receive buffer then), so partly received frames count too; a connection that
/// cannot reserve stops reading (is muted) until it can. It is also muted while its serialized,
/// unsent responses reach MaxQueuedResponseBytesPerConnection. A frame that takes longer than
/// FrameReadTimeoutMs to arrive, or a connection idle for ConnectionsMaxIdleMs, is closed.
/// Before the connection is authenticated its frames are limited to MaxUnauthenticatedFrameBytes.
/// </summary>
public sealed class KafkaConnection
{
    private readonly IDuplexPipe _transport;
    private readonly ApiRegistry _registry;
    private readonly GatewayOptions _options;
    private readonly GatewayMetrics _metrics;
    private readonly ILogger _logger;
    private readonly string _connectionId;
    private readonly string _clientHost;
    private readonly SemaphoreSlim _slots;
    private readonly RequestMemoryBudget _budget;
    private readonly TimeProvider _time;
    private readonly Channel<Task<Outgoing?>> _queue;
    // The next Sequential request starts when this is done: the last Sequential request's task,
    // or its dispatch signal when its handler is OrderedAtDispatch (pipelined Produce).
    private Task _sequentialTail = Task.CompletedTask;
    // The last OrderedAtDispatch request's "resends enqueued" signal (see RequestContext.PreviousResendsDispatched).
    private Task _resendsTail = Task.CompletedTask;
    // Completes when every Sequential request so far has completed: what a Sequential request
    // that is not OrderedAtDispatch (topic admin) waits for, as before pipelining.
    private Task _sequentialDone = Task.CompletedTask;
    // Fires when the client goes away: its long polls and pending calls are abandoned.
    private CancellationToken _clientGone;
    private volatile bool _authenticated;

    // Read-side timeouts: one timer, re-armed before each read, cancels the pending read when it
    // fires; the loop then decides from these timestamps whether a limit really passed.
    private readonly ITimer _readTimer;
    private long _lastActivity;
    private long _frameStarted; // 0: no partly received frame
    private int _frameReserved; // budget bytes reserved for the partly received frame
    private int _handlersRunning;

    // Responses serialized and not yet sent, and the read loop's wait for them to drain.
    private long _unsentResponseBytes;
    private TaskCompletionSource? _responseRoom;

    // Entries queued and entries the writer is done with (ResponseMayBeLarge requests wait on it).
    private readonly ResponseWriteProgress _progress = new();

    // Fetches asked of the brokers ahead of this client's next Fetch; dropped with the connection.
    private readonly Routing.FetchReadAhead _readAhead = new();

    public KafkaConnection(IDuplexPipe transport, ApiRegistry registry, GatewayOptions options, GatewayMetrics metrics,
        ILogger logger, string connectionId, RequestMemoryBudget? budget = null, TimeProvider? time = null, bool authenticated = true, string clientHost = "")
    {
        _transport = transport;
        _registry = registry;
        _options = options;
        _metrics = metrics;
        _logger = logger;
        _connectionId = connectionId;
        _authenticated = authenticated;
        _time = time ?? TimeProvider.System;
        _clientHost = clientHost;
        _slots = new SemaphoreSlim(options.MaxInFlightRequestsPerConnection, options.MaxInFlightRequestsPerConnection);
        // Without a shared one (tests), a budget of this connection's own.
        _budget = budget ?? new RequestMemoryBudget(options.MaxInFlightRequestBytes);
        // Bounded by the slots above; unbounded here so enqueueing never blocks the reader.
        _queue = Channel.CreateUnbounded<Task<Outgoing?>>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        _readTimer = _time.CreateTimer(static state => ((KafkaConnection)state!).OnReadTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>
    /// False until the client has authenticated (SASL, later): until then frames above
    /// MaxUnauthenticatedFrameBytes close the connection, as Kafka's SaslServerAuthenticator
    /// limits what it reads before authentication.
    /// </summary>
    public bool IsAuthenticated => _authenticated;

    /// <summary>Called by the authentication exchange once it has succeeded: the full frame limit applies from then on.</summary>
    public void MarkAuthenticated() => _authenticated = true;

    private int FrameBytesMax => _authenticated ? _options.MaxFrameBytes : Math.Min(_options.MaxFrameBytes, _options.MaxUnauthenticatedFrameBytes);

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _clientGone = cancellationToken;
        _lastActivity = _time.GetTimestamp();
        var writer = WriteLoopAsync(stop);
        var abandon = false;
        try
        {
            abandon = await ReadLoopAsync(stop.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException)
        {
            // Kestrel reports a reset connection as ConnectionResetException (an IOException) and
            // an aborted one as ConnectionAbortedException (an OperationCanceledException).
            _logger.LogDebug("Connection {ConnectionId} read failed: {Reason}", _connectionId, ex.Message);
        }
        finally
        {
            await _readTimer.DisposeAsync().ConfigureAwait(false);
            _readAhead.Dispose();
            if (_frameReserved > 0)
            {
                _budget.Release(_frameReserved);
                _frameReserved = 0;
            }
            _queue.Writer.TryComplete();
            // Closed for a timeout: the client is not reading, so do not wait for it to take the responses.
            if (abandon) _transport.Output.CancelPendingFlush();
            await writer.ConfigureAwait(false);
            await _transport.Input.CompleteAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Reads and dispatches frames until the client is done or the connection must close; true when the close must not wait for pending responses.</summary>
    private async Task<bool> ReadLoopAsync(CancellationToken cancellationToken)
    {
        var input = _transport.Input;
        long unconsumed = 0; // bytes left in the pipe by the previous round (a partial frame)
        var abandon = false;
        while (true)
        {
            ArmReadTimer();
            var result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (buffer.Length > unconsumed) Volatile.Write(ref _lastActivity, _time.GetTimestamp());
            var close = false;
            try
            {
                while (!close)
                {
                    var status = FrameReader.TryReadFrame(ref buffer, FrameBytesMax, out var frame, out var declared);
                    if (status == FrameStatus.Invalid)
                    {
                        _logger.LogWarning("Connection {ConnectionId}: frame size {Size} is negative or above {Max} bytes; closing",
                            _connectionId, declared, FrameBytesMax);
                        _metrics.ConnectionRejected("frame_size");
                        close = true;
                        break;
                    }
                    if (status == FrameStatus.Incomplete)
                    {
                        if (buffer.Length == 0) break;
                        if (_frameStarted == 0) _frameStarted = _time.GetTimestamp();
                        // The size is known: reserve the whole frame before buffering its body, as
                        // Kafka allocates the receive buffer from its memory pool on the size.
                        if (buffer.Length >= FrameReader.SizePrefixBytes && _frameReserved == 0 && declared > 0)
                        {
                            // Without keeping a place in the budget's queue: a client that declares a
                            // frame and sends nothing must not hold back everyone who comes after it.
                            await MutedWhileAsync(_budget.WaitAsync(declared, cancellationToken, keepsPlace: false)).ConfigureAwait(false);
                            _frameReserved = declared;
                            // Time spent muted by the gateway is not the client's.
                            _frameStarted = _time.GetTimestamp();
                        }
                        break;
                    }
                    _frameStarted = 0;
                    _metrics.BytesIn(FrameReader.SizePrefixBytes + frame.Length);
                    // Stop reading while the client's earlier responses wait to be sent (Kafka mutes
                    // a connection until its response is sent).
                    if (!await WaitForResponseRoomAsync(cancellationToken).ConfigureAwait(false))
                    {
                        close = abandon = true;
                        break;
                    }
                    // Stop reading while the client has too many requests outstanding.
                    await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
                    // And while the gateway holds too many request bytes (all connections), unless
                    // this frame's bytes were reserved while it arrived.
                    if (_frameReserved > 0)
                    {
                        _frameReserved = 0;
                    }
                    else
                    {
                        try
                        {
                            var wait = _budget.WaitAsync((int)frame.Length, cancellationToken);
                            if (!wait.IsCompletedSuccessfully) await MutedWhileAsync(wait).ConfigureAwait(false);
                        }
                        catch
                        {
                            _slots.Release();
                            throw;
                        }
                    }
                    // Dispatch owns the frame's budget from here: released when its copy goes back to the pool.
                    var outcome = Dispatch(frame);
                    if (outcome is null) { _slots.Release(); close = true; _metrics.ConnectionRejected("protocol"); break; }
                    _progress.EntryQueued();
                    _queue.Writer.TryWrite(outcome);
                }
            }
            finally
            {
                // Everything before buffer.Start is consumed; all of it has been looked at.
                input.AdvanceTo(buffer.Start, buffer.End);
                unconsumed = buffer.Length;
            }
            if (close || result.IsCompleted) return abandon;
            if (result.IsCanceled)
            {
                if (cancellationToken.IsCancellationRequested) return false;
                if (TimedOut() is { } reason)
                {
                    _logger.LogInformation("Connection {ConnectionId}: {Reason}; closing", _connectionId, reason);
                    return true;
                }
            }
        }
    }

    /// <summary>Arms the read timer for the limit that applies now: the partly received frame's, or the idle one.</summary>
    private void ArmReadTimer()
    {
        var limitMs = _frameStarted != 0 ? _options.FrameReadTimeoutMs : _options.ConnectionsMaxIdleMs;
        var since = _frameStarted != 0 ? _frameStarted : Volatile.Read(ref _lastActivity);
        var left = TimeSpan.FromMilliseconds(limitMs) - _time.GetElapsedTime(since);
        _readTimer.Change(left > TimeSpan.Zero ? left : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
    }

    /// <summary>The read timer: cancels the pending read, and wakes the wait for response room, so the loop checks its timeouts.</summary>
    private void OnReadTimer()
    {
        _transport.Input.CancelPendingRead();
        Interlocked.Exchange(ref _responseRoom, null)?.TrySetResult();
    }

    /// <summary>After the read timer cancelled a read: why the connection must close, or null (activity meanwhile).</summary>
    private string? TimedOut()
    {
        if (_frameStarted != 0)
        {
            return _time.GetElapsedTime(_frameStarted).TotalMilliseconds >= _options.FrameReadTimeoutMs
                ? Rejected("frame_read_timeout", $"a frame took more than {_options.FrameReadTimeoutMs} ms (FrameReadTimeoutMs) to arrive")
                : null;
        }
        // A request being handled (a long poll, a rebalance) is not idleness.
        if (Volatile.Read(ref _handlersRunning) > 0)
        {
            Volatile.Write(ref _lastActivity, _time.GetTimestamp());
            return null;
        }
        return _time.GetElapsedTime(Volatile.Read(ref _lastActivity)).TotalMilliseconds >= _options.ConnectionsMaxIdleMs
            ? Rejected("idle_timeout", $"idle for more than {_options.ConnectionsMaxIdleMs} ms (ConnectionsMaxIdleMs)")
            : null;
    }

    private string Rejected(string reason, string message)
    {
        _metrics.ConnectionRejected(reason);
        return message;
    }

    /// <summary>Awaits a wait during which the connection reads nothing, counted as muted.</summary>
    private async Task MutedWhileAsync(ValueTask wait)
    {
        if (wait.IsCompletedSuccessfully) return;
        _metrics.ConnectionMuted();
        try { await wait.ConfigureAwait(false); }
        finally { _metrics.ConnectionUnmuted(); }
    }

    /// <summary>
    /// Waits while this connection's unsent responses are at MaxQueuedResponseBytesPerConnection;
    /// false when the connection went idle meanwhile (the client takes none of them) and must close.
    /// </summary>
    private async ValueTask<bool> WaitForResponseRoomAsync(CancellationToken cancellationToken)
    {
        while (Interlocked.Read(ref _unsentResponseBytes) >= _options.MaxQueuedResponseBytesPerConnection)
        {
            var room = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _responseRoom, room);
            // Re-checked after publishing: the writer may have drained in between.
            if (Interlocked.Read(ref _unsentResponseBytes) < _options.MaxQueuedResponseBytesPerConnection) break;
            ArmReadTimer();
            await MutedWhileAsync(new ValueTask(room.Task.WaitAsync(cancellationToken))).ConfigureAwait(false);
            if (TimedOut() is { } reason)
            {
                _logger.LogInformation("Connection {ConnectionId}: {Reason}; closing", _connectionId, reason);
                return false;
            }
        }
        return true;
    }

    private void AddUnsent(long bytes)
    {
        var now = Interlocked.Add(ref _unsentResponseBytes, bytes);
        _metrics.ResponseBytesQueued(bytes);
        if (bytes < 0 && now < _options.MaxQueuedResponseBytesPerConnection)
            Interlocked.Exchange(ref _responseRoom, null)?.TrySetResult();
    }

    /// <summary>
    /// Decodes one frame and starts its handler. Null: the connection must close (malformed frame,
    /// unknown API or unsupported version of an API other than ApiVersions, as Kafka does).
    /// </summary>
    private Task<Outgoing?>? Dispatch(ReadOnlySequence<byte> frame)
    {
        var started = Stopwatch.GetTimestamp();
        var length = (int)frame.Length;
        // Header v0 is api key, api version and correlation id: 8 bytes.
        if (frame.Length < 8)
        {
            _budget.Release(length);
            _logger.LogWarning("Connection {ConnectionId}: {Length}-byte frame is too short for a request header; closing", _connectionId, frame.Length);
            return null;
        }
        Span<byte> head = stackalloc byte[8];
        frame.Slice(0, 8).CopyTo(head);
        var apiKey = BinaryPrimitives.ReadInt16BigEndian(head);
        var apiVersion = BinaryPrimitives.ReadInt16BigEndian(head[2..]);
        var correlationId = BinaryPrimitives.ReadInt32BigEndian(head[4..]);

        if (!_registry.IsSupported(apiKey, apiVersion))
        {
            _budget.Release(length);
            if (apiKey == (short)ApiKey.ApiVersions)
            {
                // Kafka answers an ApiVersions it cannot parse with UNSUPPORTED_VERSION and its
                // list in a v0 response (header v0), so the client can retry at a known version.
                var response = _registry.BuildApiVersionsResponse(ErrorCode.UnsupportedVersion);
                var outgoing = Outgoing.For(correlationId, 0, response, 0);
                AddUnsent(outgoing.Length);
                return Task.FromResult<Outgoing?>(outgoing);
            }
            _logger.LogWarning("Connection {ConnectionId}: unsupported api {ApiKey} v{ApiVersion}; closing", _connectionId, apiKey, apiVersion);
            return null;
        }

        var handler = _registry.Find(apiKey)!;
        // The frame is copied once out of the socket's pipe buffers into a pooled array: handling
        // is asynchronous and pipelined, so it must outlive AdvanceTo. Decoded byte fields (record
        // batches) are slices of this array, not copies; the array goes back to the pool only
        // after the handler (and every gRPC call it made with those slices) has completed.
        var rented = ArrayPool<byte>.Shared.Rent(length);
        frame.CopyTo(rented);
        var memory = new ReadOnlyMemory<byte>(rented, 0, length);
        IKafkaRequest request;
        RequestHeader header;
        try
        {
            header = new RequestHeader();
            var reader = new KafkaReader(memory);
            header.Read(ref reader, KafkaApis.RequestHeaderVersion((ApiKey)apiKey, apiVersion));
            request = handler.Decode(memory[reader.Position..], apiVersion);
        }
        catch (KafkaProtocolException ex)
        {
            ReturnFrame(rented, length);
            _logger.LogWarning("Connection {ConnectionId}: malformed {Api} v{Version} request ({Reason}); closing",
                _connectionId, handler.Key, apiVersion, ex.Message);
            return null;
        }

        if (_logger.IsEnabled(LogLevel.Debug))
            _logger.LogDebug("Connection {ConnectionId}: {Api} v{Version} correlation {CorrelationId} from {ClientId}",
                _connectionId, handler.Key, apiVersion, correlationId, header.ClientId);
        var responseHeaderVersion = KafkaApis.ResponseHeaderVersion((ApiKey)apiKey, apiVersion);
        Task<Outgoing?> task;
        if (handler.Sequential && handler.OrderedAtDispatch)
        {
            // Continuations asynchronous: a handler signalling from inside its own call must not
            // run the next request's handler inline (a chain of ~100 pipelined produces would
            // nest that deep).
            var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var resends = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var context = new RequestContext(apiVersion, correlationId, header.ClientId, _connectionId)
            {
                DispatchedSignal = signal, ClientHost = _clientHost, ReadAhead = _readAhead, ResendsDispatchedSignal = resends, PreviousResendsDispatched = _resendsTail,
            };
            task = RunAfterAsync(_sequentialTail, handler, request, context, responseHeaderVersion, rented, length, started);
            _sequentialTail = signal.Task;
            _resendsTail = resends.Task;
            _sequentialDone = _sequentialDone.IsCompleted ? task : Task.WhenAll(_sequentialDone, task);
        }
        else if (handler.Sequential)
        {
            var context = new RequestContext(apiVersion, correlationId, header.ClientId, _connectionId) { ClientHost = _clientHost, ReadAhead = _readAhead };
            task = RunAfterAsync(_sequentialDone, handler, request, context, responseHeaderVersion, rented, length, started);
            _sequentialTail = task;
            _sequentialDone = task;
        }
        else if (handler.ResponseMayBeLarge && _progress.Queued > 0)
        {
            var context = new RequestContext(apiVersion, correlationId, header.ClientId, _connectionId) { ClientHost = _clientHost, ReadAhead = _readAhead };
            task = RunWhenWrittenAsync(_progress.WhenWritten(_progress.Queued), handler, request, context, responseHeaderVersion, rented, length, started);
        }
        else
        {
            var context = new RequestContext(apiVersion, correlationId, header.ClientId, _connectionId) { ClientHost = _clientHost, ReadAhead = _readAhead };
            task = RunAsync(handler, request, context, responseHeaderVersion, rented, length, started);
        }
        return task;
    }

    /// <summary>Runs the handler once every earlier response has been sent; not at all when the writer stopped meanwhile.</summary>
    private async Task<Outgoing?> RunWhenWrittenAsync(Task earlierWritten, IApiHandler handler, IKafkaRequest request, RequestContext context,
        short responseHeaderVersion, byte[] frame, int frameLength, long started)
    {
        await earlierWritten.ConfigureAwait(false);
        if (_progress.Stopped)
        {
            ReturnFrame(frame, frameLength);
            return null; // nobody will write the response
        }
        return await RunAsync(handler, request, context, responseHeaderVersion, frame, frameLength, started).ConfigureAwait(false);
    }

    private async Task<Outgoing?> RunAfterAsync(Task previous, IApiHandler handler, IKafkaRequest request, RequestContext context,
        short responseHeaderVersion, byte[] frame, int frameLength, long started)
    {
        try { await previous.ConfigureAwait(false); } catch { /* its own failure is reported by its own response */ }
        return await RunAsync(handler, request, context, responseHeaderVersion, frame, frameLength, started).ConfigureAwait(false);
    }

    private async Task<Outgoing?> RunAsync(IApiHandler handler, IKafkaRequest request, RequestContext context,
        short responseHeaderVersion, byte[] frame, int frameLength, long started)
    {
        Interlocked.Increment(ref _handlersRunning);
        // The request's span is Activity.Current while the handler runs: the broker calls it makes carry its context.
        using var activity = GatewayTracing.StartRequest(handler.Key, request, context.ApiVersion, context.ClientId, context.ConnectionId);
        var handedOver = false;
        try
        {
            IKafkaResponse? response;
            try
            {
                response = await handler.HandleAsync(request, context, _clientGone).ConfigureAwait(false);
            }
            catch (Exception ex) when (_clientGone.IsCancellationRequested)
            {
                // The client went away mid-request: its calls were cancelled (an RpcException
                // Cancelled from gRPC, an OperationCanceledException elsewhere). Routine, not a fault.
                _logger.LogDebug("Connection {ConnectionId}: client disconnected during {Api} v{Version} ({Reason})",
                    _connectionId, handler.Key, context.ApiVersion, ex.Message);
                return null; // nobody left to answer
            }
            catch (Exception ex)
            {
                GatewayTracing.Failed(activity, ex);
                // A bug or an unexpected failure: answer like Kafka, every partition UNKNOWN_SERVER_ERROR.
                _logger.LogError(ex, "Connection {ConnectionId}: {Api} v{Version} failed", _connectionId, handler.Key, context.ApiVersion);
                // An acks=0 producer reads no response: an unexpected one would be taken as the
                // answer to its next request. Kafka closes the connection instead, which is how
                // such a producer learns that something failed.
                if (request is ProduceRequest { Acks: 0 }) return Outgoing.CloseConnection;
                response = ErrorResponses.Build(request, context.ApiVersion, ErrorCode.UnknownServerError);
                if (response is null) return Outgoing.CloseConnection;
            }
            _metrics.RequestCompleted(handler.Key.ToString(), Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            GatewayTracing.Completed(activity, response);
            if (response is null) return null;
            try
            {
                // Serialized by the writer, straight into the transport: the response's pooled
                // resources are the writer's to release from here on.
                var outgoing = Outgoing.For(context.CorrelationId, responseHeaderVersion, response, context.ApiVersion, context);
                handedOver = true;
                AddUnsent(outgoing.Length);
                return outgoing;
            }
            catch (Exception ex)
            {
                // A response we cannot size is a bug; the client cannot be answered in order any more.
                _logger.LogError(ex, "Connection {ConnectionId}: encoding the {Api} v{Version} response failed; closing",
                    _connectionId, handler.Key, context.ApiVersion);
                return Outgoing.CloseConnection;
            }
        }
        finally
        {
            Interlocked.Decrement(ref _handlersRunning);
            // A handler that returned (or failed) without signalling releases the next request too.
            context.Dispatched();
            context.ResendsDispatched();
            // No response to write (or none that can be): its pooled resources can go now.
            if (!handedOver) context.DisposeResponseResources();
            ReturnFrame(frame, frameLength);
        }
    }

    /// <summary>A request frame's copy goes back to the pool and its bytes back to the gateway's budget.</summary>
    private void ReturnFrame(byte[] rented, int length)
    {
        ArrayPool<byte>.Shared.Return(rented);
        _budget.Release(length);
    }

    private async Task WriteLoopAsync(CancellationTokenSource stop)
    {
        var output = _transport.Output;
        try
        {
            await foreach (var pending in _queue.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                var outgoing = await pending.ConfigureAwait(false);
                try
                {
                    if (outgoing is { Close: true }) break;
                    if (outgoing is not null)
                    {
                        try
                        {
                            outgoing.WriteTo(output.GetSpan(outgoing.Length));
                        }
                        catch (Exception ex)
                        {
                            // A response we cannot encode is a bug; the client cannot be answered in order any more.
                            _logger.LogError(ex, "Connection {ConnectionId}: encoding a response failed; closing", _connectionId);
                            break;
                        }
                        output.Advance(outgoing.Length);
                        // Completes once the transport has taken the bytes below its buffer limit:
                        // while the client does not read, this waits and the response stays unsent.
                        var flush = await output.FlushAsync().ConfigureAwait(false);
                        if (flush.IsCompleted || flush.IsCanceled) break;
                        _metrics.BytesOut(outgoing.Length);
                        Volatile.Write(ref _lastActivity, _time.GetTimestamp());
                    }
                }
                finally
                {
                    if (outgoing is { Close: false })
                    {
                        outgoing.Release();
                        AddUnsent(-outgoing.Length);
                    }
                    _slots.Release();
                    _progress.EntryWritten();
                }
            }
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or OperationCanceledException)
        {
            _logger.LogDebug("Connection {ConnectionId} write failed: {Reason}", _connectionId, ex.Message);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Connection {ConnectionId}: response writer failed; closing", _connectionId);
        }
        finally
        {
            // Requests waiting for earlier responses to be sent give up: none will be.
            _progress.WriterStopped();
            // The reader stops too: nobody can receive its responses any more.
            stop.Cancel();
            // Return the buffers of responses that will never be written.
            while (_queue.Reader.TryRead(out var left))
            {
                try
                {
                    if (await left.ConfigureAwait(false) is { Close: false } dropped)
                    {
                        dropped.Release();
                        AddUnsent(-dropped.Length);
                    }
                }
                catch (Exception) { /* already logged by the handler wrapper */ }
            }
            await output.CompleteAsync().ConfigureAwait(false);
        }
    }
}
