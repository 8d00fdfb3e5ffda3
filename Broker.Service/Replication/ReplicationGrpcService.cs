using System.Buffers;
using Google.Protobuf;
using Grpc.Core;
using StreamPlatform.Broker.Services;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Grpc.Broker;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Replication;

/// <summary>
/// Leader side of replication: serves each follower broker's <c>Replicate</c> stream. Every
/// request is answered once (in order): per partition the leadership and epoch checks, the
/// divergence check and the read (<see cref="Partition.ReadForFollower"/>, which also records the
/// follower's log end offset and so may advance the high watermark and complete acks=-1
/// produces). With no records, no error and no high-watermark news for the follower, the answer
/// waits (long poll) for an append to any of its partitions, for at most max_wait_ms.
/// Records travel as the stored bytes, read into rented buffers that go back to the pool once
/// the answer was written.
/// </summary>
public sealed class ReplicationGrpcService : ReplicationService.ReplicationServiceBase
{
    /// <summary>Upper bound of a request's max_wait_ms (a follower asks replica.fetch.wait.max.ms, 500).</summary>
    public const int MaxWaitMsLimit = 30000;
    /// <summary>Upper bound of a response's record bytes: below the gRPC message limit (64 MiB).</summary>
    public const int ResponseBytesMax = 60 * 1024 * 1024;

    private readonly ReplicaManager _replicas;
    private readonly TimeProvider _time;
    private readonly BrokerMetrics? _metrics;

    public ReplicationGrpcService(ReplicaManager replicas, TimeProvider time, BrokerMetrics? metrics = null)
    {
        _replicas = replicas;
        _time = time;
        _metrics = metrics;
    }

    public override async Task Replicate(IAsyncStreamReader<ReplicaFetchRequest> requestStream, IServerStreamWriter<ReplicaFetchResponse> responseStream, ServerCallContext context)
    {
        var buffers = new FetchBuffers(ArrayPool<byte>.Shared);
        var sentHighWatermarks = new Dictionary<TopicPartition, long>();
        try
        {
            while (await requestStream.MoveNext(context.CancellationToken).ConfigureAwait(false))
            {
                var response = await AnswerAsync(requestStream.Current, buffers, sentHighWatermarks, context.CancellationToken).ConfigureAwait(false);
                // Serialized into the stream once WriteAsync completes: the buffers may go back then.
                await responseStream.WriteAsync(response).ConfigureAwait(false);
                buffers.ReturnAll();
            }
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            // The follower went away or the broker stops: routine.
        }
        finally
        {
            buffers.ReturnAll();
        }
    }

    /// <summary>
    /// Answers one follower request (the gRPC stream is a thin loop around this).
    /// <paramref name="sentHighWatermarks"/> holds, per partition, the high watermark this
    /// stream last told the follower: a higher one is news worth answering at once.
    /// </summary>
    public async Task<ReplicaFetchResponse> AnswerAsync(ReplicaFetchRequest request, FetchBuffers buffers, Dictionary<TopicPartition, long> sentHighWatermarks,
        CancellationToken cancellationToken)
    {
        var maxWaitMs = Math.Clamp(request.MaxWaitMs, 0, MaxWaitMsLimit);
        var started = _time.GetTimestamp();
        while (true)
        {
            var signals = new List<Task>(request.Partitions.Count * 2);
            var (response, bytes, answerNow) = ReadOnce(request, signals, buffers, sentHighWatermarks);
            var remaining = TimeSpan.FromMilliseconds(maxWaitMs) - _time.GetElapsedTime(started);
            if (answerNow || bytes >= Math.Max(request.MinBytes, 1) || signals.Count == 0 || remaining <= TimeSpan.Zero || cancellationToken.IsCancellationRequested)
            {
                foreach (var r in response.Results)
                    if (r.HighWatermark >= 0) sentHighWatermarks[new TopicPartition(r.Topic, r.Partition)] = r.HighWatermark;
                _metrics?.ReplicationBytesOut.Add(bytes);
                return response;
            }
            buffers.ReturnAll();
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            await Task.WhenAny(Task.WhenAny(signals), Task.Delay(remaining, _time, wait.Token)).ConfigureAwait(false);
            await wait.CancelAsync().ConfigureAwait(false);
        }
    }

    private (ReplicaFetchResponse Response, long Bytes, bool AnswerNow) ReadOnce(ReplicaFetchRequest request, List<Task> signals, FetchBuffers buffers,
        Dictionary<TopicPartition, long> sentHighWatermarks)
    {
        var response = new ReplicaFetchResponse();
        long remainingBytes = request.MaxBytes > 0 ? Math.Min(request.MaxBytes, ResponseBytesMax) : ResponseBytesMax;
        long total = 0;
        var answerNow = false;
        var minOneBatch = true;
        // A follower restarted since the leader's metadata recorded it is newer, never older:
        // an older epoch is a previous incarnation's request still in flight.
        var staleEpoch = _replicas.Metadata.BrokersById.TryGetValue(request.ReplicaId, out var broker) && broker.BrokerEpoch > request.BrokerEpoch;
        foreach (var p in request.Partitions)
        {
            var result = new ReplicaFetchPartitionResult
            {
                Topic = p.Topic, Partition = p.Partition, HighWatermark = -1, LogStartOffset = -1, LogEndOffset = -1, DivergingEpoch = -1, DivergingEndOffset = -1,
            };
            response.Results.Add(result);
            if (staleEpoch)
            {
                result.ErrorCode = ErrorCodes.StaleBrokerEpoch;
                answerNow = true;
                continue;
            }
            var (partition, error) = _replicas.LeaderPartition(p.Topic, p.Partition, p.CurrentLeaderEpoch);
            if (partition is null)
            {
                result.ErrorCode = error;
                answerNow = true;
                continue;
            }
            // Taken before the read: an append or advance racing it still wakes the wait.
            signals.Add(partition.Log.LogEndOffsetSignal);
            signals.Add(partition.Log.AppendedSignal);
            var limit = (int)Math.Min(Math.Max(p.PartitionMaxBytes, 0), remainingBytes);
            var fetched = partition.ReadForFollower(request.ReplicaId, request.BrokerEpoch, p.FetchOffset, p.LastFetchedEpoch, p.CurrentLeaderEpoch, limit, minOneBatch);
            result.ErrorCode = fetched.ErrorCode;
            result.HighWatermark = fetched.HighWatermark;
            result.LogStartOffset = fetched.LogStartOffset;
            result.LogEndOffset = fetched.LogEndOffset;
            result.DivergingEpoch = fetched.DivergingEpoch;
            result.DivergingEndOffset = fetched.DivergingEndOffset;
            if (fetched.ErrorCode != ErrorCodes.None || fetched.Diverging) answerNow = true;
            var tp = new TopicPartition(p.Topic, p.Partition);
            if (fetched.HighWatermark > (sentHighWatermarks.TryGetValue(tp, out var sent) ? sent : -1)) answerNow = true;
            if (fetched.Read is { Length: > 0 } read)
            {
                try
                {
                    var buffer = buffers.Rent(read.Length);
                    read.CopyTo(buffer);
                    result.Records = UnsafeByteOperations.UnsafeWrap(buffer.AsMemory(0, read.Length));
                }
                catch (Exception ex) when (ex is ObjectDisposedException or LogTruncatedException)
                {
                    // The segment was closed (log deleted or shut down) or cut (leadership lost) meanwhile.
                    result.ErrorCode = ErrorCodes.NotLeaderOrFollower;
                    answerNow = true;
                    continue;
                }
                minOneBatch = false;
                remainingBytes -= read.Length;
                total += read.Length;
            }
        }
        return (response, total, answerNow);
    }
}
