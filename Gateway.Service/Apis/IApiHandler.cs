using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

/// <summary>What a handler knows about the request beyond its body.</summary>
public sealed record RequestContext(short ApiVersion, int CorrelationId, string? ClientId, string ConnectionId)
{
    /// <summary>The client's address as Kafka shows it ("/127.0.0.1", see <see cref="Kafka.ClientAddress"/>); "" when unknown.</summary>
    public string ClientHost { get; init; } = "";

    /// <summary>The connection's read-ahead fetches (Fetch uses them); null where a request has no connection (tests).</summary>
    public Routing.FetchReadAhead? ReadAhead { get; init; }

    /// <summary>Completed by <see cref="Dispatched"/> or when the handler returns; set by the connection for <see cref="IApiHandler.OrderedAtDispatch"/> handlers.</summary>
    internal TaskCompletionSource? DispatchedSignal { get; init; }

    /// <summary>
    /// An <see cref="IApiHandler.OrderedAtDispatch"/> handler calls this once its effects are
    /// ordered (Produce: every broker's share enqueued on the broker streams): the connection's
    /// next Sequential request may start from then on. Harmless for other handlers and when
    /// called twice.
    /// </summary>
    public void Dispatched() => DispatchedSignal?.TrySetResult();

    /// <summary>Set by the connection for <see cref="IApiHandler.OrderedAtDispatch"/> handlers: completed by <see cref="ResendsDispatched"/> or when the handler returns.</summary>
    internal TaskCompletionSource? ResendsDispatchedSignal { get; init; }

    /// <summary>
    /// For <see cref="IApiHandler.OrderedAtDispatch"/> handlers (Produce): completes once the
    /// connection's previous such request has enqueued its own resends to new leaders, or
    /// decided on none, or returned. A request resends only after that, so resent batches of
    /// one partition reach the new leader in the client's order (idempotent sequences must
    /// arrive in order). Completed for other handlers.
    /// </summary>
    public Task PreviousResendsDispatched { get; init; } = Task.CompletedTask;

    /// <summary>Signals that this request's resends are enqueued (or that it has none): the next request may enqueue its own. Harmless when called twice.</summary>
    public void ResendsDispatched() => ResendsDispatchedSignal?.TrySetResult();

    private List<IDisposable>? _disposeAfterResponse;

    /// <summary>
    /// Keeps <paramref name="resource"/> (e.g. the pooled buffer a response's records are slices
    /// of) alive until the response has been serialized, or dropped; the connection disposes it
    /// then. Call from the handler's own flow only (not thread-safe).
    /// </summary>
    public void DisposeAfterResponse(IDisposable resource) => (_disposeAfterResponse ??= []).Add(resource);

    /// <summary>Called by the connection once the response is serialized or dropped.</summary>
    internal void DisposeResponseResources()
    {
        if (_disposeAfterResponse is null) return;
        foreach (var resource in _disposeAfterResponse) resource.Dispose();
        _disposeAfterResponse = null;
    }
}

/// <summary>One Kafka API. Implementations live one per file in this folder.</summary>
public interface IApiHandler
{
    ApiKey Key { get; }
    short MinVersion { get; }
    short MaxVersion { get; }

    /// <summary>
    /// True for requests whose effects must happen in the order the client sent them (Produce,
    /// topic admin): a Kafka broker handles one request per connection at a time, and idempotent
    /// producers pipelining batches to one partition rely on that order. Reads run concurrently.
    /// </summary>
    bool Sequential { get; }

    /// <summary>
    /// For a <see cref="Sequential"/> handler: true when the next Sequential request of the
    /// connection may start as soon as this one calls <see cref="RequestContext.Dispatched"/>
    /// (or returns), rather than when it completes. Produce: once a request is enqueued on the
    /// ordered broker streams its append order is fixed, so the next one can be enqueued behind
    /// it while the first is still being answered (pipelining, as Kafka clients expect).
    /// </summary>
    bool OrderedAtDispatch { get; }

    /// <summary>
    /// True when the response can be large (Fetch: up to the client's max_bytes). Such a request
    /// starts only once every earlier response of the connection has been sent, as every request
    /// does on a Kafka broker (it mutes the connection until the response is sent): a client that
    /// pipelines fetches and never reads makes the gateway hold one fetch answer, not one per
    /// request in flight.
    /// </summary>
    bool ResponseMayBeLarge { get; }

    /// <summary>Decodes the body synchronously; malformed input throws <see cref="KafkaProtocolException"/>.</summary>
    IKafkaRequest Decode(ReadOnlyMemory<byte> body, short version);

    /// <summary>The response, or null when none is sent (acks=0 produce).</summary>
    Task<IKafkaResponse?> HandleAsync(IKafkaRequest request, RequestContext context, CancellationToken cancellationToken);
}

/// <summary>Typed base: decoding and casting done once here.</summary>
public abstract class ApiHandler<TRequest> : IApiHandler where TRequest : class, IKafkaRequest, new()
{
    public abstract ApiKey Key { get; }
    public abstract short MinVersion { get; }
    public abstract short MaxVersion { get; }
    public virtual bool Sequential => false;
    public virtual bool OrderedAtDispatch => false;
    public virtual bool ResponseMayBeLarge => false;

    public IKafkaRequest Decode(ReadOnlyMemory<byte> body, short version)
    {
        var request = new TRequest();
        var reader = new KafkaReader(body);
        request.Read(ref reader, version);
        return request;
    }

    public Task<IKafkaResponse?> HandleAsync(IKafkaRequest request, RequestContext context, CancellationToken cancellationToken)
        => HandleAsync((TRequest)request, context, cancellationToken);

    protected abstract Task<IKafkaResponse?> HandleAsync(TRequest request, RequestContext context, CancellationToken cancellationToken);
}
