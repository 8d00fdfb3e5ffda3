using Grpc.Core;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Broker;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Gateway.Routing;

/// <summary>
/// The per-partition routing that Produce, Fetch, ListOffsets and DeleteRecords share: each
/// requested partition has a slot in the Kafka response (created by the API in request order, so
/// the response keeps that order); <see cref="Route(string, int, TSlot)"/> resolves the partition
/// in one metadata snapshot and files the slot under the broker that leads it, whose gRPC request
/// (<typeparamref name="TRequest"/>, one per broker) the API then adds the partition to.
/// <see cref="SendAllAsync"/> makes one call per leading broker, all in parallel, and applies
/// each answer (or the call's error) to that broker's slots.
/// </summary>
/// <param name="metadata">The snapshot every partition of one request is routed by.</param>
/// <param name="newRequest">A broker's gRPC request, made when the first partition it leads is routed.</param>
/// <param name="setError">Marks a slot failed (error code plus whatever the API resets with it).</param>
public sealed class LeaderFanOut<TRequest, TSlot>(ClusterMetadata metadata, Func<TRequest> newRequest, Action<TSlot, ErrorCode> setError)
    where TRequest : class
{
    private readonly Dictionary<int, Batch> _byBroker = [];

    /// <summary>One leading broker's share of the request.</summary>
    public sealed class Batch(BrokerInfo broker, TRequest request, Action<TSlot, ErrorCode> setError)
    {
        private readonly List<(string Topic, int Partition, TSlot Slot)> _slots = [];

        public BrokerInfo Broker { get; } = broker;
        public TRequest Request { get; } = request;

        internal void Add(string topic, int partition, TSlot slot) => _slots.Add((topic, partition, slot));

        /// <summary>Every slot of this broker gets <paramref name="error"/>.</summary>
        public void Fail(ErrorCode error)
        {
            foreach (var (_, _, slot) in _slots) setError(slot, error);
        }

        /// <summary>
        /// Copies the broker's per-partition results to the slots, matched by (topic, partition);
        /// a partition the broker left out of its answer is UNKNOWN_SERVER_ERROR (-1).
        /// </summary>
        public void Apply<TResult>(IEnumerable<TResult> results, Func<TResult, (string Topic, int Partition)> keyOf, Action<TSlot, TResult> apply)
        {
            var byKey = new Dictionary<(string, int), TResult>();
            foreach (var r in results) byKey[keyOf(r)] = r;
            foreach (var (topic, partition, slot) in _slots)
            {
                if (byKey.TryGetValue((topic, partition), out var r)) apply(slot, r);
                else setError(slot, ErrorCode.UnknownServerError);
            }
        }
    }

    public IReadOnlyCollection<Batch> Batches => _byBroker.Values;

    /// <summary>
    /// Routes one partition of a topic looked up by name: null with the slot already marked
    /// UNKNOWN_TOPIC_OR_PARTITION (3) or NOT_LEADER_OR_FOLLOWER (6, no live leader), else the
    /// leader's request to add the partition to.
    /// </summary>
    public TRequest? Route(string topic, int partition, TSlot slot)
    {
        if (!metadata.TopicsByName.TryGetValue(topic, out var info))
        {
            setError(slot, ErrorCode.UnknownTopicOrPartition);
            return default;
        }
        return Route(info, partition, slot);
    }

    /// <summary>Like <see cref="Route(string, int, TSlot)"/> for a topic the API already resolved (Fetch: by id from v13).</summary>
    public TRequest? Route(TopicInfo topic, int partition, TSlot slot)
    {
        if ((uint)partition >= (uint)topic.Partitions.Count)
        {
            setError(slot, ErrorCode.UnknownTopicOrPartition);
            return default;
        }
        var leader = metadata.LeaderOf(topic.Partitions[partition]);
        if (leader is null)
        {
            setError(slot, ErrorCode.NotLeaderOrFollower);
            return default;
        }
        if (!_byBroker.TryGetValue(leader.BrokerId, out var batch))
            _byBroker[leader.BrokerId] = batch = new Batch(leader, newRequest(), setError);
        batch.Add(topic.Name, partition, slot);
        return batch.Request;
    }

    /// <summary>
    /// One call per leading broker, in parallel, each with a deadline <paramref name="deadlineMs"/>
    /// from now; <paramref name="onAnswer"/> applies an answer (usually via <see cref="Batch.Apply"/>),
    /// a failed call marks the broker's slots with <see cref="BrokerCaller.ErrorFor"/>.
    /// </summary>
    public Task SendAllAsync<TResponse>(
        BrokerCaller caller,
        long deadlineMs,
        Func<BrokerService.BrokerServiceClient, TRequest, DateTime, CancellationToken, AsyncUnaryCall<TResponse>> call,
        Action<Batch, TResponse> onAnswer,
        CancellationToken cancellationToken,
        ErrorCode onDeadline = ErrorCode.RequestTimedOut)
    {
        return _byBroker.Count == 0 ? Task.CompletedTask : Task.WhenAll(_byBroker.Values.Select(SendAsync));

        async Task SendAsync(Batch batch)
        {
            try
            {
                var answer = await caller.CallAsync(batch.Broker, deadlineMs,
                    (client, deadline, ct) => call(client, batch.Request, deadline, ct), cancellationToken).ConfigureAwait(false);
                onAnswer(batch, answer);
            }
            catch (RpcException ex)
            {
                caller.LogFailure(batch.Broker, ex);
                batch.Fail(BrokerCaller.ErrorFor(ex, onDeadline));
            }
        }
    }
}
