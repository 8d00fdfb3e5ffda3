using Grpc.Core;
using Microsoft.Extensions.Options;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using Brk = StreamPlatform.Protos.Grpc.Broker;

namespace StreamPlatform.Gateway.Apis;

// DescribeLogDirs v0-v4. Clients see this gateway as one broker, so the answer covers the whole
// cluster: every live broker is asked (in parallel) for its log directories and the results are
// merged, one entry per broker directory. topics null = every partition; else only the listed
// partitions. A broker that does not answer shows as a directory named after its endpoint with
// KAFKA_STORAGE_ERROR (56) (Kafka's code for an offline log dir).
public sealed class DescribeLogDirsApi(
    TopicAdmin admin,
    BrokerClientPool brokers,
    IOptions<GatewayOptions> options,
    TimeProvider time,
    ILogger<DescribeLogDirsApi> logger) : ApiHandler<DescribeLogDirsRequest>
{
    public override ApiKey Key => ApiKey.DescribeLogDirs;
    public override short MinVersion => 0;
    public override short MaxVersion => Math.Min((short)4, DescribeLogDirsResponse.HighestSupportedVersion);

    protected override async Task<IKafkaResponse?> HandleAsync(DescribeLogDirsRequest request, RequestContext context, CancellationToken cancellationToken)
    {
        var metadata = admin.Watcher.Current;
        // (topic -> partitions) wanted; null = all.
        Dictionary<string, HashSet<int>>? wanted = null;
        if (request.Topics is not null)
        {
            wanted = new Dictionary<string, HashSet<int>>(StringComparer.Ordinal);
            foreach (var t in request.Topics)
            {
                if (!wanted.TryGetValue(t.Topic, out var set)) wanted[t.Topic] = set = [];
                set.UnionWith(t.Partitions);
            }
        }
        var forward = new Brk.DescribeLogDirsRequest();
        if (wanted is not null) forward.Topics.AddRange(wanted.Keys);
        var response = new DescribeLogDirsResponse();
        // Nothing asked for: no broker call (an empty topics list means all to the broker).
        if (wanted is { Count: 0 }) return response;
        var live = metadata.BrokersById.Values.Where(b => !b.Fenced).OrderBy(b => b.BrokerId).ToList();
        var caller = new BrokerCaller(brokers, time, logger, "DescribeLogDirs");
        var answers = await Task.WhenAll(live.Select(b => CallAsync(caller, b, forward, cancellationToken))).ConfigureAwait(false);
        foreach (var dirs in answers)
        {
            foreach (var dir in dirs)
            {
                var result = new DescribeLogDirsResponse.DescribeLogDirsResult
                {
                    ErrorCode = (short)dir.ErrorCode, LogDir = dir.Path, TotalBytes = dir.TotalBytes, UsableBytes = dir.UsableBytes,
                };
                foreach (var group in dir.Partitions.GroupBy(p => p.Topic, StringComparer.Ordinal))
                {
                    var topic = new DescribeLogDirsResponse.DescribeLogDirsTopic { Name = group.Key };
                    foreach (var p in group)
                    {
                        if (wanted is not null && !(wanted.TryGetValue(p.Topic, out var set) && set.Contains(p.Partition))) continue;
                        topic.Partitions.Add(new DescribeLogDirsResponse.DescribeLogDirsPartition
                        {
                            PartitionIndex = p.Partition, PartitionSize = p.SizeBytes, OffsetLag = p.OffsetLag, IsFutureKey = false,
                        });
                    }
                    if (topic.Partitions.Count > 0) result.Topics.Add(topic);
                }
                response.Results.Add(result);
            }
        }
        return response;
    }

    private async Task<IReadOnlyList<Brk.LogDir>> CallAsync(BrokerCaller caller, BrokerInfo broker, Brk.DescribeLogDirsRequest request, CancellationToken cancellationToken)
    {
        try
        {
            var answer = await caller.CallAsync(broker, options.Value.ControllerCallTimeoutMs,
                (client, deadline, ct) => client.DescribeLogDirsAsync(request, deadline: deadline, cancellationToken: ct), cancellationToken).ConfigureAwait(false);
            return answer.Dirs;
        }
        catch (RpcException ex)
        {
            caller.LogFailure(broker, ex);
            return [new Brk.LogDir { Path = broker.GrpcEndpoint, ErrorCode = (int)ErrorCode.KafkaStorageError, TotalBytes = -1, UsableBytes = -1 }];
        }
    }
}
