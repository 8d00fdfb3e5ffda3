using Grpc.Core;
using Microsoft.Extensions.Options;
using StreamPlatform.Protos.Configs;
using StreamPlatform.Protos.Groups;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka.Messages;
using Ctl = StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.Gateway.Cluster;

/// <summary>Topic and partition administration through the controller (CreateTopics and auto-creation, DeleteTopics, CreatePartitions, ElectLeaders, reassignments) and waiting for the result to appear in metadata.</summary>
public sealed class TopicAdmin(
    ControllerConnection controller,
    MetadataWatcher watcher,
    IOptions<GatewayOptions> options,
    TimeProvider time,
    ILogger<TopicAdmin> logger)
{
    /// <summary>
    /// How long an auto-creation waits for the new topic's leaders to take writes (at the
    /// controller) and then for the topic to show up in the gateway's metadata.
    /// </summary>
    public static readonly TimeSpan AutoCreateWaitMax = TimeSpan.FromSeconds(2);

    /// <summary>Largest wait for created topics to appear in metadata after CreateTopics.</summary>
    public static readonly TimeSpan CreateWaitMax = TimeSpan.FromSeconds(10);

    public MetadataWatcher Watcher => watcher;

    /// <summary>auto.create.topics.enable from the cluster's broker configs, else the catalog default (true).</summary>
    public static bool AutoCreateEnabled(ClusterMetadata metadata)
    {
        const string key = "auto.create.topics.enable";
        var value = metadata.Snapshot.BrokerConfigs.TryGetValue(key, out var v) ? v : ConfigCatalog.Broker[key].DefaultValue;
        return string.Equals(value, "true", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>What the controller keeps of a call's deadline for answering after its wait for leaders ends.</summary>
    private const int AnswerMarginMs = 500;

    /// <summary>
    /// Creates topics; with <paramref name="waitForLeaders"/> the controller answers once every new
    /// partition's leader has applied the creation (writable), within the call's deadline.
    /// </summary>
    public async Task<Ctl.CreateTopicsResponse> CreateAsync(Ctl.CreateTopicsRequest request, int timeoutMs, CancellationToken cancellationToken,
        bool waitForLeaders = true)
    {
        var deadlineMs = timeoutMs > 0 ? Math.Max(timeoutMs, 1_000) : options.Value.ControllerCallTimeoutMs;
        if (waitForLeaders) request.WaitForLeadersMs = Math.Max(deadlineMs - AnswerMarginMs, 0);
        var response = await controller.Client.CreateTopicsAsync(request,
            deadline: time.GetUtcNow().UtcDateTime.AddMilliseconds(deadlineMs), cancellationToken: cancellationToken).ConfigureAwait(false);
        return response;
    }

    public async Task<Ctl.DeleteTopicsResponse> DeleteAsync(Ctl.DeleteTopicsRequest request, int timeoutMs, CancellationToken cancellationToken)
    {
        var deadlineMs = timeoutMs > 0 ? Math.Max(timeoutMs, 1_000) : options.Value.ControllerCallTimeoutMs;
        return await controller.Client.DeleteTopicsAsync(request,
            deadline: time.GetUtcNow().UtcDateTime.AddMilliseconds(deadlineMs), cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    public async Task<Ctl.CreatePartitionsResponse> CreatePartitionsAsync(Ctl.CreatePartitionsRequest request, int timeoutMs, CancellationToken cancellationToken)
    {
        var deadlineMs = timeoutMs > 0 ? Math.Max(timeoutMs, 1_000) : options.Value.ControllerCallTimeoutMs;
        return await controller.Client.CreatePartitionsAsync(request,
            deadline: time.GetUtcNow().UtcDateTime.AddMilliseconds(deadlineMs), cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    public async Task<Ctl.ElectLeadersResponse> ElectLeadersAsync(Ctl.ElectLeadersRequest request, int timeoutMs, CancellationToken cancellationToken)
    {
        var deadlineMs = timeoutMs > 0 ? Math.Max(timeoutMs, 1_000) : options.Value.ControllerCallTimeoutMs;
        return await controller.Client.ElectLeadersAsync(request,
            deadline: time.GetUtcNow().UtcDateTime.AddMilliseconds(deadlineMs), cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    public async Task<Ctl.AlterReassignmentsResponse> AlterReassignmentsAsync(Ctl.AlterReassignmentsRequest request, int timeoutMs, CancellationToken cancellationToken)
    {
        var deadlineMs = timeoutMs > 0 ? Math.Max(timeoutMs, 1_000) : options.Value.ControllerCallTimeoutMs;
        return await controller.Client.AlterPartitionReassignmentsAsync(request,
            deadline: time.GetUtcNow().UtcDateTime.AddMilliseconds(deadlineMs), cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    public async Task<Ctl.ListReassignmentsResponse> ListReassignmentsAsync(Ctl.ListReassignmentsRequest request, int timeoutMs, CancellationToken cancellationToken)
    {
        var deadlineMs = timeoutMs > 0 ? Math.Max(timeoutMs, 1_000) : options.Value.ControllerCallTimeoutMs;
        return await controller.Client.ListPartitionReassignmentsAsync(request,
            deadline: time.GetUtcNow().UtcDateTime.AddMilliseconds(deadlineMs), cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Creates missing topics with the cluster defaults (num.partitions, default.replication.factor),
    /// then waits briefly for them to appear. Returns the per-topic error (None, or why not).
    /// </summary>
    public async Task<Dictionary<string, ErrorCode>> AutoCreateAsync(IReadOnlyCollection<string> names, CancellationToken cancellationToken)
    {
        var result = new Dictionary<string, ErrorCode>(StringComparer.Ordinal);
        // Internal topics are created by their coordinators with their own partition counts and
        // configs (__consumer_offsets: FindCoordinator), never as ordinary topics with the defaults.
        foreach (var name in names.Where(InternalTopics.IsInternal)) result[name] = ErrorCode.UnknownTopicOrPartition;
        names = names.Where(n => !InternalTopics.IsInternal(n)).ToList();
        if (names.Count == 0) return result;
        var request = new Ctl.CreateTopicsRequest();
        foreach (var name in names)
            request.Topics.Add(new Ctl.CreatableTopic { Name = name, NumPartitions = -1, ReplicationFactor = -1 });
        try
        {
            request.WaitForLeadersMs = (int)AutoCreateWaitMax.TotalMilliseconds;
            var response = await CreateAsync(request, 0, cancellationToken, waitForLeaders: false).ConfigureAwait(false);
            foreach (var r in response.Results)
            {
                // Created meanwhile by someone else: as good as created by us.
                var code = (ErrorCode)(short)r.ErrorCode;
                result[r.Name] = code == ErrorCode.TopicAlreadyExists ? ErrorCode.None : code;
                if (code is not ErrorCode.None and not ErrorCode.TopicAlreadyExists)
                    logger.LogInformation("Auto-creating topic {Topic} failed: {Code} {Message}", r.Name, code, r.ErrorMessage);
            }
        }
        catch (RpcException ex)
        {
            ControllerConnection.LogFailure(logger, "Auto-creating topics", ex, cancellationToken);
            foreach (var name in names) result[name] = ErrorCode.LeaderNotAvailable;
            return result;
        }
        // The controller answered once the leaders could take writes; this gateway's own metadata
        // may still be a moment behind.
        await WaitForAsync(m => names.All(n => m.TopicsByName.ContainsKey(n)), AutoCreateWaitMax, cancellationToken).ConfigureAwait(false);
        return result;
    }

    /// <summary>Waits until the applied metadata satisfies <paramref name="condition"/> or <paramref name="max"/> passes.</summary>
    public async Task<ClusterMetadata> WaitForAsync(Func<ClusterMetadata, bool> condition, TimeSpan max, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(max, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        while (true)
        {
            var next = watcher.WaitForNextAsync(linked.Token);
            var current = watcher.Current;
            if (condition(current)) return current;
            try
            {
                await next.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return watcher.Current;
            }
        }
    }
}
