using Grpc.Core;
using Microsoft.Extensions.Logging;
using StreamPlatform.Gateway.Apis;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// A client that goes away mid-request cancels the gateway's calls made for it. That is routine:
/// logged at Debug as a client disconnect, never as a warning, an error or "controller unreachable".
/// </summary>
public class ClientDisconnectLoggingTests
{
    [Fact]
    public async Task Auto_creation_cancelled_by_a_departed_client_is_a_debug_disconnect_not_controller_unreachable()
    {
        await using var kit = new GatewayTestKit();
        var log = new ListLogger();
        using var controller = new ControllerConnection(StreamPlatform.ServiceDefaults.GrpcChannels.Create(new Uri("http://127.0.0.1:9")));
        var admin = new TopicAdmin(controller, kit.Watcher,
            Microsoft.Extensions.Options.Options.Create(kit.Options), TimeProvider.System, new ListLogger<TopicAdmin>(log));
        using var clientGone = new CancellationTokenSource();
        clientGone.Cancel();

        var result = await admin.AutoCreateAsync(["orders-new"], clientGone.Token);

        Assert.Equal(ErrorCode.LeaderNotAvailable, result["orders-new"]);
        Assert.Empty(log.AtLeast(LogLevel.Information));
        Assert.Contains(log.Entries, e => e.Level == LogLevel.Debug && e.Message.Contains("client disconnected"));
        Assert.DoesNotContain(log.Entries, e => e.Message.Contains("unreachable"));
    }

    /// <summary>DescribeCluster that waits on a broker call, which fails Cancelled when the client goes away (as gRPC reports it).</summary>
    private sealed class CallingHandler : ApiHandler<DescribeClusterRequest>
    {
        public readonly TaskCompletionSource Started = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public override ApiKey Key => ApiKey.DescribeCluster;
        public override short MinVersion => 0;
        public override short MaxVersion => 1;

        protected override async Task<IKafkaResponse?> HandleAsync(DescribeClusterRequest request, RequestContext context, CancellationToken cancellationToken)
        {
            Started.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                throw new RpcException(new Status(StatusCode.Cancelled, "Call canceled by the client."));
            }
            return new DescribeClusterResponse();
        }
    }

    [Fact]
    public async Task A_request_whose_client_went_away_is_logged_as_a_disconnect_at_debug_not_as_a_failure()
    {
        await using var kit = new GatewayTestKit();
        var log = new ListLogger();
        var handler = new CallingHandler();
        using var clientGone = new CancellationTokenSource();
        await using var client = new PipeClient(kit.Registry(handler), kit.Options, kit.Metrics, logger: log, clientGone: clientGone.Token);
        await client.SendAsync(ApiKey.DescribeCluster, 0, 1, new DescribeClusterRequest());
        await handler.Started.Task.WaitAsync(TimeSpan.FromSeconds(10));

        clientGone.Cancel();
        await client.Connection.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Empty(log.AtLeast(LogLevel.Warning));
        Assert.Contains(log.Entries, e => e.Level == LogLevel.Debug && e.Message.Contains("client disconnected"));
    }
}
