using Confluent.Kafka;
using Grpc.Net.Client;
using StreamPlatform.IntegrationTests.Infrastructure;
using StreamPlatform.Protos.Grpc.Controller;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Cluster;

/// <summary>
/// A second process claiming a live broker's id over the controller's gRPC endpoint is refused
/// with DUPLICATE_BROKER_REGISTRATION (Kafka's answer), and the live broker keeps its registration
/// and keeps serving.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class BrokerIdentityTests : IDisposable
{
    private readonly ClusterFixture _fixture;
    private readonly IDisposable _attach;

    public BrokerIdentityTests(ClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    [Fact]
    public async Task A_second_registration_of_a_live_broker_id_is_refused_and_the_live_broker_keeps_serving()
    {
        using var channel = GrpcChannel.ForAddress(_fixture.Cluster.ControllerGrpc);
        var controller = new ControllerService.ControllerServiceClient(channel);
        var before = (await controller.GetMetadataAsync(new GetMetadataRequest())).Brokers.Single(b => b.BrokerId == 1);
        Assert.False(before.Fenced);

        var claim = await controller.RegisterBrokerAsync(new RegisterBrokerRequest
        {
            BrokerId = 1,
            GrpcEndpoint = "http://127.0.0.1:9",
            IncarnationId = Guid.NewGuid().ToString("N"),
        });
        Assert.Equal(101, claim.ErrorCode); // DUPLICATE_BROKER_REGISTRATION
        Assert.Contains("registered by another live process", claim.ErrorMessage);

        var after = (await controller.GetMetadataAsync(new GetMetadataRequest())).Brokers.Single(b => b.BrokerId == 1);
        Assert.Equal((before.GrpcEndpoint, before.BrokerEpoch, false), (after.GrpcEndpoint, after.BrokerEpoch, after.Fenced));

        // Every broker still leads and serves: a topic with a partition on each takes and returns records.
        var topic = KafkaHelpers.UniqueTopic("broker-identity");
        await KafkaHelpers.CreateTopicAsync(_fixture.BootstrapServers, topic, partitions: 3, replicationFactor: 3);
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = _fixture.BootstrapServers, Acks = Acks.All }).Build())
        {
            for (var p = 0; p < 3; p++)
                await producer.ProduceAsync(new TopicPartition(topic, p), new Message<Null, string> { Value = $"v{p}" });
        }
        var leaders = (await controller.GetMetadataAsync(new GetMetadataRequest())).Topics.Single(t => t.Name == topic).Partitions.Select(p => p.Leader).ToHashSet();
        Assert.Contains(1, leaders);
    }
}
