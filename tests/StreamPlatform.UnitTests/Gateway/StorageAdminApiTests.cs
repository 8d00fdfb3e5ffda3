using Microsoft.Extensions.Logging.Abstractions;
using StreamPlatform.Gateway.Apis;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.ServiceDefaults;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>The storage admin APIs against hand-built metadata whose brokers and controller do not answer.</summary>
public class StorageAdminApiTests
{
    private static readonly RequestContext Context = new(0, 1, "test", "conn");

    [Fact]
    public async Task DeleteRecords_maps_unknown_partitions_missing_leaders_and_unreachable_brokers()
    {
        await using var kit = new GatewayTestKit();
        kit.Watcher.Apply(GatewayTestKit.Snapshot());
        var api = new DeleteRecordsApi(kit.Admin, kit.Brokers, Microsoft.Extensions.Options.Options.Create(kit.Options), TimeProvider.System, NullLogger<DeleteRecordsApi>.Instance);
        var request = new DeleteRecordsRequest { TimeoutMs = 2000 };
        request.Topics.Add(new DeleteRecordsRequest.DeleteRecordsTopic
        {
            Name = "orders",
            Partitions = { new() { PartitionIndex = 0, Offset = 5 }, new() { PartitionIndex = 2, Offset = 5 }, new() { PartitionIndex = 9, Offset = 5 } },
        });
        request.Topics.Add(new DeleteRecordsRequest.DeleteRecordsTopic { Name = "nope", Partitions = { new() { PartitionIndex = 0, Offset = -1 } } });
        var response = (DeleteRecordsResponse)(await api.HandleAsync(request, Context, default))!;
        Assert.Equal([(0, (short)ErrorCode.NotLeaderOrFollower), (2, (short)ErrorCode.NotLeaderOrFollower), (9, (short)ErrorCode.UnknownTopicOrPartition)],
            response.Topics[0].Partitions.Select(p => (p.PartitionIndex, p.ErrorCode)));
        Assert.All(response.Topics.SelectMany(t => t.Partitions), p => Assert.Equal(-1, p.LowWatermark));
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, response.Topics[1].Partitions[0].ErrorCode);
    }

    [Fact]
    public async Task DescribeLogDirs_reports_unreachable_live_brokers_as_offline_dirs_and_asks_nobody_for_nothing()
    {
        await using var kit = new GatewayTestKit();
        kit.Watcher.Apply(GatewayTestKit.Snapshot());
        var api = new DescribeLogDirsApi(kit.Admin, kit.Brokers, Microsoft.Extensions.Options.Options.Create(kit.Options), TimeProvider.System, NullLogger<DescribeLogDirsApi>.Instance);
        var all = (DescribeLogDirsResponse)(await api.HandleAsync(new DescribeLogDirsRequest { Topics = null }, Context, default))!;
        Assert.Equal(2, all.Results.Count); // brokers 1 and 2; 3 is fenced
        Assert.All(all.Results, r => Assert.Equal(((short)ErrorCode.KafkaStorageError, "http://127.0.0.1:9"), (r.ErrorCode, r.LogDir)));
        var none = (DescribeLogDirsResponse)(await api.HandleAsync(new DescribeLogDirsRequest { Topics = [] }, Context, default))!;
        Assert.Empty(none.Results);
    }

    [Fact]
    public async Task Alter_configs_answer_not_controller_for_every_resource_when_the_controller_is_unreachable()
    {
        await using var kit = new GatewayTestKit();
        using var controller = new ControllerConnection(GrpcChannels.Create(new Uri("http://127.0.0.1:9")));
        var alterations = new ConfigAlterations(controller, kit.Admin, Microsoft.Extensions.Options.Options.Create(kit.Options), TimeProvider.System, NullLogger<ConfigAlterations>.Instance);
        var incremental = new IncrementalAlterConfigsRequest();
        incremental.Resources.Add(new IncrementalAlterConfigsRequest.AlterConfigsResource { ResourceType = 2, ResourceName = "orders", Configs = { new() { Name = "retention.ms", Value = "1" } } });
        incremental.Resources.Add(new IncrementalAlterConfigsRequest.AlterConfigsResource { ResourceType = 4, ResourceName = "", Configs = { new() { Name = "log.retention.ms", Value = "1" } } });
        var response = (IncrementalAlterConfigsResponse)(await new IncrementalAlterConfigsApi(alterations).HandleAsync(incremental, Context, default))!;
        Assert.Equal([("orders", (short)ErrorCode.NotController), ("", (short)ErrorCode.NotController)], response.Responses.Select(r => (r.ResourceName, r.ErrorCode)));
        var legacy = new AlterConfigsRequest();
        legacy.Resources.Add(new AlterConfigsRequest.AlterConfigsResource { ResourceType = 2, ResourceName = "orders" });
        var legacyResponse = (AlterConfigsResponse)(await new AlterConfigsApi(alterations).HandleAsync(legacy, Context, default))!;
        Assert.Equal((short)ErrorCode.NotController, Assert.Single(legacyResponse.Responses).ErrorCode);
    }
}
