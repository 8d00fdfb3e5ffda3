using System.Net;
using Aspire.Hosting.ApplicationModel;
using StreamPlatform.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Cluster;

/// <summary>
/// The shared cluster as Aspire.Hosting.Testing runs it from the AppHost: the resources the AppHost
/// declares, each healthy and answering /health and /alive on its own http endpoint, and the Kafka
/// listener reachable at the gateway's non-proxied endpoint.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class AppHostClusterTests : IDisposable
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(5) };

    private readonly ClusterFixture _fixture;
    private readonly IDisposable _attach;

    public AppHostClusterTests(ClusterFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _attach = fixture.Cluster.AttachOutput(output);
    }

    public void Dispose() => _attach.Dispose();

    [Fact]
    public async Task TheAppHostDeclaresEveryServiceAndEachIsHealthy()
    {
        var cluster = _fixture.Cluster;
        Assert.Equal(["controller-1", "broker-1", "broker-2", "broker-3", "gateway-1"], cluster.ResourceNames);
        foreach (var name in cluster.ResourceNames)
        {
            var http = cluster.Endpoint(name, "http");
            Assert.Equal("127.0.0.1", http.Host);
            Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync(new Uri(http, "/health"))).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync(new Uri(http, "/alive"))).StatusCode);
        }
    }

    [Fact]
    public async Task KafkaClientsReachTheGatewayProcessDirectly()
    {
        var kafka = _fixture.Cluster.Endpoint("gateway-1", "kafka");
        Assert.Equal($"{kafka.Host}:{kafka.Port}", _fixture.BootstrapServers);

        // The gateway advertises the address clients connected to: its own port, no proxy in between.
        using var admin = new Confluent.Kafka.AdminClientBuilder(
            new Confluent.Kafka.AdminClientConfig { BootstrapServers = _fixture.BootstrapServers }).Build();
        var metadata = admin.GetMetadata(TimeSpan.FromSeconds(10));
        var broker = Assert.Single(metadata.Brokers);
        Assert.Equal(kafka.Host, broker.Host);
        Assert.Equal(kafka.Port, broker.Port);
        await Task.CompletedTask;
    }
}
