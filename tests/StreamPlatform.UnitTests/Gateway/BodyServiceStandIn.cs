using System.Collections.Concurrent;
using System.Net;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using StreamPlatform.Protos.Grpc.Broker;
using StreamPlatform.Protos.Grpc.Groups;
using StreamPlatform.Protos.Grpc.Transactions;
using StreamPlatform.Protos.Kafka;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// A broker endpoint for the gateway's routing tests of the Kafka-body calls
/// (TransactionCoordinatorService, GroupCoordinatorService.TxnOffsetCommit,
/// BrokerService.DescribeProducers): a real gRPC server on a loopback port that records every
/// call (method, api_version, body) and answers with what the test's <see cref="Answer"/> makes
/// of it. It stands in for the brokers' coordinators, which live on other branches of issue 13
/// (txn-coordinator, groups-txn, producer-state): the tests check where the gateway sends each
/// request and how it merges the answers, not what a coordinator decides.
/// </summary>
internal sealed class BodyServiceStandIn : IAsyncDisposable
{
    private readonly WebApplication _app;

    public int BrokerId { get; }
    public string Endpoint { get; }
    public ConcurrentQueue<(string Method, KafkaGroupRequest Request)> Calls { get; } = new();

    /// <summary>Makes the answer body of a call (method name, request); null throws UNAVAILABLE.</summary>
    public Func<string, KafkaGroupRequest, byte[]?> Answer { get; set; } = (_, _) => null;

    private BodyServiceStandIn(int brokerId, WebApplication app, string endpoint)
    {
        BrokerId = brokerId;
        _app = app;
        Endpoint = endpoint;
    }

    public static async Task<BodyServiceStandIn> StartAsync(int brokerId)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        var holder = new Holder();
        builder.Services.AddSingleton(holder);
        var app = builder.Build();
        app.MapGrpcService<Transactions>();
        app.MapGrpcService<Groups>();
        app.MapGrpcService<Broker>();
        await app.StartAsync();
        var endpoint = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        var standIn = new BodyServiceStandIn(brokerId, app, endpoint);
        holder.StandIn = standIn;
        return standIn;
    }

    /// <summary>The request's body decoded as <typeparamref name="T"/> at its api_version.</summary>
    public static T Decode<T>(KafkaGroupRequest request) where T : IKafkaRequest, new()
    {
        var body = new T();
        var reader = new KafkaReader(request.Body.Memory);
        body.Read(ref reader, (short)request.ApiVersion);
        return body;
    }

    /// <summary>A response body at <paramref name="version"/>.</summary>
    public static byte[] Encode(IKafkaResponse response, int version)
    {
        var bytes = new byte[response.ComputeSize((short)version)];
        var writer = new KafkaWriter(bytes);
        response.Write(ref writer, (short)version);
        return bytes;
    }

    private sealed class Holder
    {
        public BodyServiceStandIn StandIn = null!;

        public Task<KafkaGroupResponse> HandleAsync(string method, KafkaGroupRequest request)
        {
            StandIn.Calls.Enqueue((method, request));
            var body = StandIn.Answer(method, request) ?? throw new RpcException(new Status(StatusCode.Unavailable, "stand-in told to fail"));
            return Task.FromResult(new KafkaGroupResponse { Body = ByteString.CopyFrom(body) });
        }
    }

    private sealed class Transactions(Holder holder) : TransactionCoordinatorService.TransactionCoordinatorServiceBase
    {
        public override Task<KafkaGroupResponse> InitProducerId(KafkaGroupRequest request, ServerCallContext context) => holder.HandleAsync(nameof(InitProducerId), request);
        public override Task<KafkaGroupResponse> AddPartitionsToTxn(KafkaGroupRequest request, ServerCallContext context) => holder.HandleAsync(nameof(AddPartitionsToTxn), request);
        public override Task<KafkaGroupResponse> AddOffsetsToTxn(KafkaGroupRequest request, ServerCallContext context) => holder.HandleAsync(nameof(AddOffsetsToTxn), request);
        public override Task<KafkaGroupResponse> EndTxn(KafkaGroupRequest request, ServerCallContext context) => holder.HandleAsync(nameof(EndTxn), request);
        public override Task<KafkaGroupResponse> DescribeTransactions(KafkaGroupRequest request, ServerCallContext context) => holder.HandleAsync(nameof(DescribeTransactions), request);
        public override Task<KafkaGroupResponse> ListTransactions(KafkaGroupRequest request, ServerCallContext context) => holder.HandleAsync(nameof(ListTransactions), request);
    }

    private sealed class Groups(Holder holder) : GroupCoordinatorService.GroupCoordinatorServiceBase
    {
        public override Task<KafkaGroupResponse> TxnOffsetCommit(KafkaGroupRequest request, ServerCallContext context) => holder.HandleAsync(nameof(TxnOffsetCommit), request);
    }

    private sealed class Broker(Holder holder) : BrokerService.BrokerServiceBase
    {
        public override Task<KafkaGroupResponse> DescribeProducers(KafkaGroupRequest request, ServerCallContext context) => holder.HandleAsync(nameof(DescribeProducers), request);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
