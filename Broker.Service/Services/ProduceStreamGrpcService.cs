using Grpc.Core;
using Microsoft.Extensions.Options;
using StreamPlatform.Broker.Replication;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Grpc.Broker;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.Broker.Services;

/// <summary>
/// Serves <c>BrokerProduceService.ProduceStream</c> with <see cref="PooledProduceStreamRequest"/>
/// as its request type, so records are parsed into pooled buffers instead of fresh arrays. Bound
/// by hand (grpc-dotnet finds <see cref="BindService"/> through the attribute and looks up the
/// handler by name on this type: it must be public, virtual and declared here, hence the class is
/// not sealed); the appending itself is <see cref="BrokerGrpcService.ProduceStreamAsync"/>.
/// </summary>
[BindServiceMethod(typeof(ProduceStreamGrpcService), nameof(BindService))]
public class ProduceStreamGrpcService
{
    private static readonly Method<PooledProduceStreamRequest, ProduceStreamResponse> ProduceStreamMethod = new(
        MethodType.DuplexStreaming,
        BrokerProduceService.Descriptor.FullName,
        nameof(ProduceStream),
        PooledProduceStreamRequest.Marshaller,
        Marshallers.Create<ProduceStreamResponse>(
            (response, context) =>
            {
                context.SetPayloadLength(response.CalculateSize());
                Google.Protobuf.MessageExtensions.WriteTo(response, context.GetBufferWriter());
                context.Complete();
            },
            context => ProduceStreamResponse.Parser.ParseFrom(context.PayloadAsReadOnlySequence())));

    private readonly BrokerGrpcService _broker;

    public ProduceStreamGrpcService(LogManager logs, ReplicaManager replicas, IOptions<BrokerOptions> options, TimeProvider time, BrokerMetrics metrics,
        DecompressionMemory? decompression = null, StreamPlatform.Broker.Transactions.ITransactionVerifier? verifier = null)
    {
        _broker = new BrokerGrpcService(logs, replicas, options, time, metrics, decompression: decompression, verifier: verifier);
    }

    /// <summary>Called by grpc-dotnet with a null service: only the method's shape is bound here.</summary>
    public static void BindService(ServiceBinderBase binder, ProduceStreamGrpcService? service)
        => binder.AddMethod(ProduceStreamMethod, service is null ? null : service.ProduceStream);

    public virtual Task ProduceStream(IAsyncStreamReader<PooledProduceStreamRequest> requestStream,
        IServerStreamWriter<ProduceStreamResponse> responseStream, ServerCallContext context)
        => _broker.ProduceStreamAsync(requestStream, responseStream, context.CancellationToken);
}
