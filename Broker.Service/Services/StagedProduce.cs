using StreamPlatform.Protos.Grpc.Broker;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.Broker.Services;

/// <summary>
/// One produce request between its two stages: every partition appended (or refused), and the
/// acks=-1 ones waiting for their commit (Kafka's DelayedProduce over several partitions). One
/// timer per request (timeout_ms through the TimeProvider): when it fires, every partition not
/// committed yet answers REQUEST_TIMED_OUT; a caller that goes away fires it too.
/// </summary>
internal sealed class StagedProduce
{
    private readonly PartitionProduceResult[] _results;
    private readonly Task<short>?[] _commits;
    private readonly CancellationTokenSource? _timeout;
    private readonly CancellationTokenRegistration _callerGone;
    private ProduceResponse? _answered;

    public StagedProduce(ProduceRequest request, TimeProvider time, CancellationToken callerGone = default)
    {
        Request = request;
        _results = new PartitionProduceResult[request.Partitions.Count];
        _commits = new Task<short>?[request.Partitions.Count];
        if (request.Acks != -1) return;
        _timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(Math.Max(request.TimeoutMs, 0)), time);
        if (callerGone.CanBeCanceled) _callerGone = callerGone.Register(static t => ((CancellationTokenSource)t!).Cancel(), _timeout);
    }

    private StagedProduce(ProduceResponse answered)
    {
        Request = new ProduceRequest();
        _results = [];
        _commits = [];
        _answered = answered;
    }

    /// <summary>A request answered without appending anything (invalid acks).</summary>
    public static StagedProduce Answered(ProduceResponse response) => new(response);

    public ProduceRequest Request { get; }

    /// <summary>The partitions' results so far (null: not reached yet), for the request's spans.</summary>
    public IEnumerable<PartitionProduceResult?> Results => _results;

    /// <summary>The "Produce replicate" span, ended with the answer (see <see cref="BrokerTracing"/>).</summary>
    public System.Diagnostics.Activity? ReplicateSpan { get; set; }
    /// <summary>Fires at timeout_ms (acks=-1 only).</summary>
    public CancellationToken CommitTimeout => _timeout?.Token ?? CancellationToken.None;

    /// <summary>Partition <paramref name="index"/>'s result, and its commit to wait for (null: final already). Partitions may be set from different threads.</summary>
    public void Set(int index, PartitionProduceResult result, Task<short>? commit)
    {
        _results[index] = result;
        _commits[index] = commit;
    }

    /// <summary>True when nothing is left to wait for: the answer can go at once.</summary>
    public bool Committed => _answered is not null || _commits.All(c => c is null || c.IsCompleted);

    /// <summary>The answer once complete (synchronous when <see cref="Committed"/>).</summary>
    public ProduceResponse Response => Committed ? Build() : throw new InvalidOperationException("Commits are still pending.");

    /// <summary>Waits for every commit, then answers; a failed commit replaces the partition's error code.</summary>
    public async Task<ProduceResponse> CompleteAsync()
    {
        foreach (var commit in _commits)
            if (commit is not null) await commit.ConfigureAwait(false);
        return Build();
    }

    private ProduceResponse Build()
    {
        if (_answered is not null) return _answered;
        var response = new ProduceResponse();
        for (var i = 0; i < _results.Length; i++)
        {
            var result = _results[i];
            if (_commits[i] is { } commit && commit.Result != ErrorCodes.None)
            {
                result.ErrorCode = commit.Result;
                result.ErrorMessage = commit.Result switch
                {
                    ErrorCodes.RequestTimedOut => "The records were not replicated to the in-sync replicas within the request's timeout.",
                    ErrorCodes.NotEnoughReplicasAfterAppend => "The records were appended but the ISR shrank below min.insync.replicas before they were committed.",
                    ErrorCodes.NotLeaderOrFollower => "Leadership moved before the records were committed.",
                    _ => "",
                };
            }
            response.Results.Add(result);
        }
        BrokerTracing.ReplicateDone(ReplicateSpan, response.Results);
        ReplicateSpan = null;
        _callerGone.Dispose();
        _timeout?.Dispose();
        _answered = response;
        return response;
    }
}
