using Grpc.Core;
using StreamPlatform.Controller.Metadata;
using StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.UnitTests.Controller;

/// <summary>
/// The gRPC client's transport replaced by a direct call into the real controller (the unary
/// calls brokers make besides registration: AlterPartition, AllocateProducerIds).
/// <see cref="Failure"/> makes every call fail as an unreachable controller would.
/// </summary>
internal sealed class InProcessController(MetadataController controller) : CallInvoker
{
    public RpcException? Failure { get; set; }
    /// <summary>When set, answers wait for it (a slow controller).</summary>
    public TaskCompletionSource? Hold { get; set; }
    /// <summary>Unary calls made so far.</summary>
    public int Calls => _calls;
    private int _calls;

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
    {
        Interlocked.Increment(ref _calls);
        Task<TResponse> response = Failure is { } failure ? Task.FromException<TResponse>(failure)
            : request is AlterPartitionRequest alter ? Task.FromResult((TResponse)(object)controller.AlterPartition(alter))
            : request is AllocateProducerIdsRequest allocate ? Task.FromResult((TResponse)(object)controller.AllocateProducerIds(allocate))
            : throw new NotSupportedException(method.FullName);
        if (Hold is { } hold)
        {
            var answer = response;
            response = hold.Task.ContinueWith(_ => answer, TaskScheduler.Default).Unwrap();
        }
        return new AsyncUnaryCall<TResponse>(response, Task.FromResult(new Metadata()), () => Status.DefaultSuccess, () => [], () => { });
    }

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
        => throw new NotSupportedException(method.FullName);

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
        => throw new NotSupportedException(method.FullName);

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options)
        => throw new NotSupportedException(method.FullName);

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options)
        => throw new NotSupportedException(method.FullName);
}
