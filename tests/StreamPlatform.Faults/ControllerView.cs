using Grpc.Core;
using Grpc.Net.Client;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.Faults;

/// <summary>
/// The controller's own view of the cluster, over its gRPC API: real broker ids as leaders and
/// ISR members. Kafka clients cannot show these, because the gateway presents itself as the
/// leader of every partition.
/// </summary>
public sealed class ControllerView : IDisposable
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(10);

    private readonly GrpcChannel _channel;
    private readonly ControllerService.ControllerServiceClient _client;

    public ControllerView(Uri controllerGrpcEndpoint)
    {
        _channel = GrpcChannel.ForAddress(controllerGrpcEndpoint);
        _client = new ControllerService.ControllerServiceClient(_channel);
    }

    public async Task<MetadataSnapshot> SnapshotAsync(CancellationToken cancellationToken = default) =>
        await _client.GetMetadataAsync(new GetMetadataRequest(), deadline: DateTime.UtcNow + CallTimeout, cancellationToken: cancellationToken);

    /// <summary>The topic's partitions by index, or null while the controller does not know the topic.</summary>
    public async Task<IReadOnlyDictionary<int, PartitionInfo>?> PartitionsAsync(string topic, CancellationToken cancellationToken = default)
    {
        MetadataSnapshot snapshot;
        try
        {
            snapshot = await SnapshotAsync(cancellationToken);
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
        {
            // The controller is busy or restarting: the callers poll, so "unknown now" is an answer.
            return null;
        }
        var info = snapshot.Topics.FirstOrDefault(t => t.Name == topic);
        return info?.Partitions.ToDictionary(p => p.Partition);
    }

    /// <summary>Polls until <paramref name="condition"/> holds for the topic's partitions; false after <paramref name="timeout"/>.</summary>
    public async Task<bool> WaitUntilAsync(string topic, Func<IReadOnlyDictionary<int, PartitionInfo>, bool> condition, TimeSpan timeout,
        CancellationToken cancellationToken = default)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var partitions = await PartitionsAsync(topic, cancellationToken);
            if (partitions is not null && condition(partitions))
                return true;
            if (DateTime.UtcNow >= deadline)
                return false;
            await Task.Delay(PollInterval, cancellationToken);
        }
    }

    /// <summary>Often enough to time a failover to a tenth of a second, rare enough to cost the controller nothing.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>"p0 leader 2 isr [2,3] replicas [1,2,3]; ..." for logs and failure messages.</summary>
    public static string Describe(IReadOnlyDictionary<int, PartitionInfo> partitions) =>
        string.Join("; ", partitions.Values.OrderBy(p => p.Partition).Select(p =>
            $"p{p.Partition} leader {p.Leader} epoch {p.LeaderEpoch} isr [{string.Join(",", p.Isr)}] replicas [{string.Join(",", p.Replicas)}]"));

    public void Dispose() => _channel.Dispose();
}
