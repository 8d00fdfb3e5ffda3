using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Apis;

/// <summary>What a handler knows about the request beyond its body.</summary>
public sealed record RequestContext(short ApiVersion, int CorrelationId, string? ClientId, string ConnectionId)
{
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
