using Grpc.Core;
using StreamPlatform.Broker.Services;
using StreamPlatform.Protos.Grpc.Broker;

namespace StreamPlatform.UnitTests.Broker;

/// <summary>A produce stream's messages from a list (what the gRPC request stream hands the broker).</summary>
internal sealed class ListReader(IEnumerable<PooledProduceStreamRequest> items) : IAsyncStreamReader<PooledProduceStreamRequest>
{
    private readonly IEnumerator<PooledProduceStreamRequest> _items = items.GetEnumerator();
    public PooledProduceStreamRequest Current => _items.Current;
    public Task<bool> MoveNext(CancellationToken cancellationToken) => Task.FromResult(_items.MoveNext());
}

/// <summary>The answers a produce stream wrote, in write order.</summary>
internal sealed class ListWriter : IAsyncStreamWriter<ProduceStreamResponse>
{
    public List<ProduceStreamResponse> Written { get; } = [];
    public WriteOptions? WriteOptions { get; set; }
    public Task WriteAsync(ProduceStreamResponse message)
    {
        lock (Written) Written.Add(message);
        return Task.CompletedTask;
    }
}
