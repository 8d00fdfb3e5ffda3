using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using StreamPlatform.Gateway;
using StreamPlatform.Gateway.Apis;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// ApiVersions, answered from the gateway's real handler set (as Program.cs wires it), advertises
/// the idempotence and transaction APIs with Kafka 4.x's ranges as far as our protocol
/// definitions go, and Produce still stops at v11 (transaction version 2's v12 is switched on
/// with the coordinator's support, ProduceApi.MaxServedVersion).
/// </summary>
public sealed class TransactionApiVersionsTests
{
    [Fact]
    public async Task Api_versions_advertises_the_transaction_apis_with_kafkas_ranges()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.Configuration["services:controller:grpc:0"] = "http://127.0.0.1:9";
        builder.Configuration["Gateway:NodeId"] = "1";
        GatewayExtensions.AddApplicationServices(builder);
        await using var app = builder.Build();
        var registry = app.Services.GetRequiredService<ApiRegistry>();
        var options = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<GatewayOptions>>().Value;
        using var metrics = new GatewayMetrics();
        await using var client = new PipeClient(registry, options, metrics);
        await client.SendAsync(ApiKey.ApiVersions, 3, 1, new ApiVersionsRequest { ClientSoftwareName = "unit", ClientSoftwareVersion = "1" });
        var (_, response) = await client.ReadAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 3);
        var ranges = response.ApiKeys.ToDictionary(k => (ApiKey)k.ApiKey, k => (k.MinVersion, k.MaxVersion));
        Assert.Equal(((short)0, (short)5), ranges[ApiKey.InitProducerId]);
        Assert.Equal(((short)0, (short)5), ranges[ApiKey.AddPartitionsToTxn]);
        Assert.Equal(((short)0, (short)4), ranges[ApiKey.AddOffsetsToTxn]);
        Assert.Equal(((short)0, (short)4), ranges[ApiKey.EndTxn]);
        Assert.Equal(((short)0, (short)4), ranges[ApiKey.TxnOffsetCommit]);
        Assert.Equal(((short)0, (short)0), ranges[ApiKey.DescribeProducers]);
        Assert.Equal(((short)0, (short)0), ranges[ApiKey.DescribeTransactions]);
        Assert.Equal(((short)0, (short)1), ranges[ApiKey.ListTransactions]);
        Assert.Equal(((short)0, (short)11), ranges[ApiKey.Produce]);
        Assert.Equal(((short)0, (short)6), ranges[ApiKey.FindCoordinator]);
        // WriteTxnMarkers (27) is broker-to-broker only: never served to clients.
        Assert.False(ranges.ContainsKey(ApiKey.WriteTxnMarkers));
    }
}
