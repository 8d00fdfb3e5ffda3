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
/// Sequential request has completed.
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
    private readonly Channel<Task<Outgoing?>> _queue;
    // The next Sequential request starts when this is done: the last Sequential request's task,
    // or its dispatch signal when its handler is OrderedAtDispatch (pipelined Produce).
    private Task _sequentialTail = Task.CompletedTask;
    // Completes when every Sequential request so far has completed: what a Sequential request
    // that is not OrderedAtDispatch (topic admin) waits for, as before pipelining.
    private Task _sequentialDone = Task.CompletedTask;
    // Fires when the client goes away: its long polls and pending calls are abandoned.
    private CancellationToken _clientGone;

    public KafkaConnection(IDuplexPipe transport, ApiRegistry registry, GatewayOptions options, GatewayMetrics metrics,
        ILogger logger, string connectionId, RequestMemoryBudget? budget = null, string clientHost = "")
    {
        _transport = transport;
        _registry = registry;
        _options = options;
        _metrics = metrics;
        _logger = logger;
        _connectionId = connectionId;
        _clientHost = clientHost;
        _slots = new SemaphoreSlim(options.MaxInFlightRequestsPerConnection, options.MaxInFlightRequestsPerConnection);
        // Without a shared one (tests), a budget of this connection's own.
        _budget = budget ?? new RequestMemoryBudget(options.MaxInFlightRequestBytes);
        // Bounded by the slots above; unbounded here so enqueueing never blocks the reader.
        _queue = Channel.CreateUnbounded<Task<Outgoing?>>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    }

    /// <summary>A serialized response (pooled buffer), or an instruction to close.</summary>
    internal sealed class Outgoing(byte[]? buffer, int length, bool close)
    {
        public byte[]? Buffer { get; } = buffer;
        public int Length { get; } = length;
        public bool Close { get; } = close;
        public static readonly Outgoing CloseConnection = new(null, 0, true);
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _clientGone = cancellationToken;
        var writer = WriteLoopAsync(stop);
        try
        {
            await ReadLoopAsync(stop.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException)
        {
            // Kestrel reports a reset connection as ConnectionResetException (an IOException) and
            // an aborted one as ConnectionAbortedException (an OperationCanceledException).
            _logger.LogDebug("Connection {ConnectionId} read failed: {Reason}", _connectionId, ex.Message);
        }
        finally
        {
            _queue.Writer.TryComplete();
            await writer.ConfigureAwait(false);
            await _transport.Input.CompleteAsync().ConfigureAwait(false);
        }
    }

    private async Task ReadLoopAsync(CancellationToken cancellationToken)
    {
        var input = _transport.Input;
        while (true)
        {
            var result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            var close = false;
            try
            {
                while (!close)
                {
                    var status = FrameReader.TryReadFrame(ref buffer, _options.MaxFrameBytes, out var frame, out var declared);
                    if (status == FrameStatus.Incomplete) break;
                    if (status == FrameStatus.Invalid)
                    {
                        _logger.LogWarning("Connection {ConnectionId}: frame size {Size} is negative or above {Max} bytes; closing",
                            _connectionId, declared, _options.MaxFrameBytes);
                        _metrics.ConnectionRejected("frame_size");
                        close = true;
                        break;
                    }
                    _metrics.BytesIn(FrameReader.SizePrefixBytes + frame.Length);
                    // Stop reading while the client has too many requests outstanding.
                    await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
                    // And while the gateway holds too many request bytes (all connections).
                    try
                    {
                        await _budget.WaitAsync((int)frame.Length, cancellationToken).ConfigureAwait(false);
                    }
                    catch
                    {
                        _slots.Release();
                        throw;
                    }
                    // Dispatch owns the frame's budget from here: released when its copy goes back to the pool.
                    var outcome = Dispatch(frame);
                    if (outcome is null) { _slots.Release(); close = true; _metrics.ConnectionRejected("protocol"); break; }
                    _queue.Writer.TryWrite(outcome);
                }
            }
            finally
            {
                // Everything before buffer.Start is consumed; all of it has been looked at.
                input.AdvanceTo(buffer.Start, buffer.End);
            }
            if (close || result.IsCompleted || result.IsCanceled) return;
        }
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
                return Task.FromResult<Outgoing?>(Serialize(correlationId, 0, response, 0));
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
            var context = new RequestContext(apiVersion, correlationId, header.ClientId, _connectionId) { DispatchedSignal = signal, ClientHost = _clientHost };
            task = RunAfterAsync(_sequentialTail, handler, request, context, responseHeaderVersion, rented, length, started);
            _sequentialTail = signal.Task;
            _sequentialDone = _sequentialDone.IsCompleted ? task : Task.WhenAll(_sequentialDone, task);
        }
        else if (handler.Sequential)
        {
            var context = new RequestContext(apiVersion, correlationId, header.ClientId, _connectionId) { ClientHost = _clientHost };
            task = RunAfterAsync(_sequentialDone, handler, request, context, responseHeaderVersion, rented, length, started);
            _sequentialTail = task;
            _sequentialDone = task;
        }
        else
        {
            var context = new RequestContext(apiVersion, correlationId, header.ClientId, _connectionId) { ClientHost = _clientHost };
            task = RunAsync(handler, request, context, responseHeaderVersion, rented, length, started);
        }
        return task;
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
        try
        {
            IKafkaResponse? response;
            try
            {
                response = await handler.HandleAsync(request, context, _clientGone).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_clientGone.IsCancellationRequested)
            {
                return null; // nobody left to answer
            }
            catch (Exception ex)
            {
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
            if (response is null) return null;
            try
            {
                return Serialize(context.CorrelationId, responseHeaderVersion, response, context.ApiVersion);
            }
            catch (Exception ex)
            {
                // A response we cannot encode is a bug; the client cannot be answered in order any more.
                _logger.LogError(ex, "Connection {ConnectionId}: encoding the {Api} v{Version} response failed; closing",
                    _connectionId, handler.Key, context.ApiVersion);
                return Outgoing.CloseConnection;
            }
        }
        finally
        {
            // A handler that returned (or failed) without signalling releases the next request too.
            context.Dispatched();
            // Serialize copied everything the response referenced: its pooled resources can go.
            context.DisposeResponseResources();
            ReturnFrame(frame, frameLength);
        }
    }

    /// <summary>A request frame's copy goes back to the pool and its bytes back to the gateway's budget.</summary>
    private void ReturnFrame(byte[] rented, int length)
    {
        ArrayPool<byte>.Shared.Return(rented);
        _budget.Release(length);
    }

    /// <summary>Size prefix + response header (v0: correlation id; v1: + empty tagged fields) + body.</summary>
    internal static Outgoing Serialize(int correlationId, short headerVersion, IKafkaResponse response, short version)
    {
        var bodySize = response.ComputeSize(version);
        var headerSize = headerVersion >= 1 ? 5 : 4;
        var total = FrameReader.SizePrefixBytes + headerSize + bodySize;
        var buffer = ArrayPool<byte>.Shared.Rent(total);
        BinaryPrimitives.WriteInt32BigEndian(buffer, headerSize + bodySize);
        BinaryPrimitives.WriteInt32BigEndian(buffer.AsSpan(4), correlationId);
        if (headerVersion >= 1) buffer[8] = 0; // no tagged fields
        var writer = new KafkaWriter(buffer.AsSpan(FrameReader.SizePrefixBytes + headerSize, bodySize));
        response.Write(ref writer, version);
        return new Outgoing(buffer, total, false);
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
                    if (outgoing?.Buffer is { } buffer)
                    {
                        var flush = await output.WriteAsync(buffer.AsMemory(0, outgoing.Length)).ConfigureAwait(false);
                        _metrics.BytesOut(outgoing.Length);
                        if (flush.IsCompleted || flush.IsCanceled) break;
                    }
                }
                finally
                {
                    if (outgoing?.Buffer is { } b) ArrayPool<byte>.Shared.Return(b);
                    _slots.Release();
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
            // The reader stops too: nobody can receive its responses any more.
            stop.Cancel();
            // Return the buffers of responses that will never be written.
            while (_queue.Reader.TryRead(out var left))
            {
                try { if (await left.ConfigureAwait(false) is { Buffer: { } b }) ArrayPool<byte>.Shared.Return(b); }
                catch (Exception) { /* already logged by the handler wrapper */ }
            }
            await output.CompleteAsync().ConfigureAwait(false);
        }
    }
}
