using Grpc.Net.Client;
using Microsoft.Extensions.Logging.Abstractions;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Controller.Metadata;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Controller;
using StreamPlatform.UnitTests.Storage;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Controller;

public class AlterConfigsTests
{
    private static ControllerHarness WithTopic(Action<ControllerOptions>? configure = null, Dictionary<string, string>? configs = null)
    {
        var h = new ControllerHarness(configure);
        h.RegisterBroker(1);
        Assert.Equal(0, h.CreateTopic("t", 2, 1, configs ?? new Dictionary<string, string> { ["retention.ms"] = "1000" }).ErrorCode);
        return h;
    }

    private static AlterableConfig Op(string name, AlterConfigOp op, string? value = null)
    {
        var c = new AlterableConfig { Name = name, Op = (int)op };
        if (value is not null) c.Value = value;
        return c;
    }

    private static AlterConfigsResource Resource(int type, string name, params AlterableConfig[] configs)
    {
        var r = new AlterConfigsResource { ResourceType = type, ResourceName = name };
        r.Configs.AddRange(configs);
        return r;
    }

    private static AlterConfigsResponse Alter(ControllerHarness h, bool validateOnly = false, params AlterConfigsResource[] resources)
    {
        var request = new AlterConfigsRequest { ValidateOnly = validateOnly };
        request.Resources.AddRange(resources);
        return h.Controller.AlterConfigs(request);
    }

    private static IReadOnlyDictionary<string, string> TopicConfigs(ControllerHarness h, string topic = "t")
        => h.Controller.GetMetadata().Topics.Single(t => t.Name == topic).Configs;

    [Fact]
    public void Incremental_set_delete_append_subtract_on_a_topic()
    {
        using var h = WithTopic();
        var epoch = h.Controller.State.Epoch;
        var response = Alter(h, false, Resource(MetadataController.TopicResource, "t",
            Op("retention.bytes", AlterConfigOp.Set, "5000"),
            Op("retention.ms", AlterConfigOp.Delete),
            Op("cleanup.policy", AlterConfigOp.Append, "compact"),
            Op("min.compaction.lag.ms", AlterConfigOp.Delete))); // not set: nothing to do
        Assert.Equal(0, Assert.Single(response.Results).ErrorCode);
        Assert.Equal(new Dictionary<string, string> { ["cleanup.policy"] = "delete,compact", ["retention.bytes"] = "5000" }, TopicConfigs(h));
        Assert.Equal(epoch + 3, h.Controller.State.Epoch); // one record per changed key, one entry

        Assert.Equal(0, Alter(h, false, Resource(2, "t", Op("cleanup.policy", AlterConfigOp.Subtract, "delete"))).Results[0].ErrorCode);
        Assert.Equal("compact", TopicConfigs(h)["cleanup.policy"]);
        Assert.Equal(0, Alter(h, false, Resource(2, "t", Op("cleanup.policy", AlterConfigOp.Append, "compact,delete"))).Results[0].ErrorCode);
        Assert.Equal("compact,delete", TopicConfigs(h)["cleanup.policy"]);

        // The change is in the log: a restarted controller replays it.
        h.Restart();
        Assert.Equal(new Dictionary<string, string> { ["cleanup.policy"] = "compact,delete", ["retention.bytes"] = "5000" }, TopicConfigs(h));
    }

    [Theory]
    [InlineData(2, "nope", "retention.ms", AlterConfigOp.Set, "1", ErrorCodes.UnknownTopicOrPartition)]
    [InlineData(2, "t", "no.such.config", AlterConfigOp.Set, "1", ErrorCodes.InvalidConfig)]
    [InlineData(2, "t", "retention.ms", AlterConfigOp.Set, "-7", ErrorCodes.InvalidConfig)]
    [InlineData(2, "t", "cleanup.policy", AlterConfigOp.Set, "shred", ErrorCodes.InvalidConfig)]
    [InlineData(2, "t", "retention.ms", AlterConfigOp.Append, "5", ErrorCodes.InvalidConfig)]
    [InlineData(2, "t", "retention.ms", AlterConfigOp.Set, null, ErrorCodes.InvalidRequest)]
    [InlineData(2, "t", "retention.ms", (AlterConfigOp)9, "1", ErrorCodes.InvalidRequest)]
    [InlineData(8, "1", "log4j.logger.x", AlterConfigOp.Set, "DEBUG", ErrorCodes.InvalidRequest)]
    // Per-broker names must be non-negative base-10 ints (Kafka's ControllerConfigurationValidator).
    [InlineData(4, "one", "log.retention.ms", AlterConfigOp.Set, "5", ErrorCodes.InvalidRequest)]
    [InlineData(4, "-1", "log.retention.ms", AlterConfigOp.Set, "5", ErrorCodes.InvalidRequest)]
    [InlineData(4, "1", "socket.request.max.bytes", AlterConfigOp.Set, "5", ErrorCodes.InvalidRequest)]
    [InlineData(4, "1", "log.segment.bytes", AlterConfigOp.Set, "3", ErrorCodes.InvalidConfig)]
    [InlineData(4, "1", "no.such.config", AlterConfigOp.Set, "3", ErrorCodes.InvalidConfig)]
    // Not dynamically updatable in Kafka: INVALID_REQUEST ("Cannot update these configs dynamically").
    [InlineData(4, "", "socket.request.max.bytes", AlterConfigOp.Set, "5", ErrorCodes.InvalidRequest)]
    [InlineData(4, "", "auto.create.topics.enable", AlterConfigOp.Set, "false", ErrorCodes.InvalidRequest)]
    [InlineData(32, "", "consumer.session.timeout.ms", AlterConfigOp.Set, "50000", ErrorCodes.InvalidRequest)]
    [InlineData(32, "g", "no.such.group.config", AlterConfigOp.Set, "1", ErrorCodes.InvalidConfig)]
    [InlineData(32, "g", "consumer.session.timeout.ms", AlterConfigOp.Set, "1000", ErrorCodes.InvalidConfig)]
    [InlineData(32, "g", "consumer.heartbeat.interval.ms", AlterConfigOp.Set, "20000", ErrorCodes.InvalidConfig)]
    [InlineData(4, "", "retention.ms", AlterConfigOp.Set, "5", ErrorCodes.InvalidConfig)]
    public void Invalid_alterations_get_kafka_error_codes_and_change_nothing(int type, string name, string key, AlterConfigOp op, string? value, short expected)
    {
        using var h = WithTopic();
        var epoch = h.Controller.State.Epoch;
        var result = Assert.Single(Alter(h, false, Resource(type, name, Op(key, op, value))).Results);
        Assert.Equal(expected, result.ErrorCode);
        Assert.False(string.IsNullOrEmpty(result.ErrorMessage));
        Assert.Equal(epoch, h.Controller.State.Epoch);
    }

    [Fact]
    public void Each_resource_is_all_or_nothing_and_duplicates_are_invalid_requests()
    {
        using var h = WithTopic();
        Assert.Equal(0, h.CreateTopic("u", 1, 1).ErrorCode);
        var response = Alter(h, false,
            Resource(2, "t", Op("retention.bytes", AlterConfigOp.Set, "1"), Op("retention.ms", AlterConfigOp.Set, "oops")),
            Resource(2, "u", Op("retention.bytes", AlterConfigOp.Set, "2")),
            Resource(2, "t2", Op("retention.ms", AlterConfigOp.Set, "1")));
        Assert.Equal([ErrorCodes.InvalidConfig, ErrorCodes.None, ErrorCodes.UnknownTopicOrPartition], response.Results.Select(r => (short)r.ErrorCode));
        Assert.Equal(new Dictionary<string, string> { ["retention.ms"] = "1000" }, TopicConfigs(h));
        Assert.Equal("2", TopicConfigs(h, "u")["retention.bytes"]);

        var twice = Alter(h, false, Resource(2, "u", Op("segment.ms", AlterConfigOp.Set, "5")), Resource(2, "u", Op("segment.ms", AlterConfigOp.Set, "6")));
        Assert.All(twice.Results, r => Assert.Equal(ErrorCodes.InvalidRequest, r.ErrorCode));
        var sameKey = Alter(h, false, Resource(2, "u", Op("segment.ms", AlterConfigOp.Set, "5"), Op("segment.ms", AlterConfigOp.Delete)));
        Assert.Equal(ErrorCodes.InvalidRequest, sameKey.Results[0].ErrorCode);
        Assert.False(TopicConfigs(h, "u").ContainsKey("segment.ms"));
    }

    [Fact]
    public void Validate_only_checks_without_writing()
    {
        using var h = WithTopic();
        var epoch = h.Controller.State.Epoch;
        Assert.Equal(0, Alter(h, true, Resource(2, "t", Op("retention.ms", AlterConfigOp.Set, "2000"))).Results[0].ErrorCode);
        Assert.Equal(ErrorCodes.InvalidConfig, Alter(h, true, Resource(2, "t", Op("retention.ms", AlterConfigOp.Set, "x"))).Results[0].ErrorCode);
        Assert.Equal(epoch, h.Controller.State.Epoch);
        Assert.Equal("1000", TopicConfigs(h)["retention.ms"]);
    }

    [Fact]
    public void Legacy_alter_configs_replaces_every_explicit_config()
    {
        using var h = WithTopic(configs: new() { ["retention.ms"] = "1000", ["segment.bytes"] = "100000" });
        var resource = Resource(2, "t", Op("cleanup.policy", AlterConfigOp.Set, "compact"));
        resource.ReplaceAll = true;
        Assert.Equal(0, Alter(h, false, resource).Results[0].ErrorCode);
        Assert.Equal(new Dictionary<string, string> { ["cleanup.policy"] = "compact" }, TopicConfigs(h));
        var withDelete = Resource(2, "t", Op("cleanup.policy", AlterConfigOp.Delete));
        withDelete.ReplaceAll = true;
        Assert.Equal(ErrorCodes.InvalidRequest, Alter(h, false, withDelete).Results[0].ErrorCode);
    }

    [Fact]
    public void Dynamic_broker_defaults_win_over_static_ones_across_restarts_and_snapshots_until_deleted()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sp-ctl-" + Guid.NewGuid().ToString("N"));
        try
        {
            void Static(ControllerOptions o)
            {
                o.BrokerConfigs["log.retention.ms"] = "999";
                o.SnapshotLogBytes = 1; // snapshot after every commit
            }
            using (var h = new ControllerHarness(Static, dataDir: dir))
            {
                Assert.Equal("999", h.Controller.State.BrokerConfigs["log.retention.ms"]);
                Assert.Equal(0, Alter(h, false, Resource(4, "", Op("log.retention.ms", AlterConfigOp.Set, "1234"))).Results[0].ErrorCode);
                Assert.Equal("1234", h.Controller.GetMetadata().BrokerConfigs["log.retention.ms"]);
                Assert.Contains("log.retention.ms", h.Controller.GetMetadata().DynamicBrokerConfigs);

                h.Restart();
                Assert.Equal("1234", h.Controller.State.BrokerConfigs["log.retention.ms"]);
                Assert.Equal(0, Alter(h, false, Resource(4, "", Op("log.retention.ms", AlterConfigOp.Delete))).Results[0].ErrorCode);
                Assert.Equal("999", h.Controller.State.BrokerConfigs["log.retention.ms"]);
                Assert.Empty(h.Controller.State.DynamicBrokerConfigs);
                h.Restart();
                Assert.Equal("999", h.Controller.State.BrokerConfigs["log.retention.ms"]);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Per_broker_values_are_recorded_by_broker_id_survive_restarts_and_snapshots_until_deleted()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sp-ctl-" + Guid.NewGuid().ToString("N"));
        try
        {
            static void AssertBroker1(ControllerHarness h, Dictionary<string, string> expected)
            {
                var m = h.Controller.GetMetadata();
                // The cluster-wide values are untouched; the per-broker ones are kept apart, by id.
                Assert.Equal(("999", "4096"), (m.BrokerConfigs["log.retention.ms"], m.BrokerConfigs["log.segment.bytes"]));
                if (expected.Count == 0) Assert.Empty(m.PerBrokerConfigs);
                else
                {
                    var broker = Assert.Single(m.PerBrokerConfigs);
                    Assert.Equal(1, broker.BrokerId);
                    Assert.Equal(expected, broker.Configs.ToDictionary());
                }
            }
            using (var h = new ControllerHarness(o => o.BrokerConfigs["log.retention.ms"] = "999", dataDir: dir))
            {
                Assert.Equal(0, Alter(h, false, Resource(4, "", Op("log.segment.bytes", AlterConfigOp.Set, "4096"))).Results[0].ErrorCode);
                var set = Alter(h, false, Resource(4, "1", Op("log.retention.ms", AlterConfigOp.Set, "1234"), Op("log.segment.bytes", AlterConfigOp.Set, "8192")));
                Assert.Equal(0, Assert.Single(set.Results).ErrorCode);
                AssertBroker1(h, new() { ["log.retention.ms"] = "1234", ["log.segment.bytes"] = "8192" });
                h.Restart(); // replays the log
                AssertBroker1(h, new() { ["log.retention.ms"] = "1234", ["log.segment.bytes"] = "8192" });
            }
            using (var h = new ControllerHarness(o => { o.BrokerConfigs["log.retention.ms"] = "999"; o.SnapshotLogBytes = 1; }, dataDir: dir))
            {
                AssertBroker1(h, new() { ["log.retention.ms"] = "1234", ["log.segment.bytes"] = "8192" });
                Assert.Equal(0, Alter(h, false, Resource(4, "1", Op("log.segment.bytes", AlterConfigOp.Delete))).Results[0].ErrorCode);
                AssertBroker1(h, new() { ["log.retention.ms"] = "1234" });
                h.Restart(); // from the snapshot
                AssertBroker1(h, new() { ["log.retention.ms"] = "1234" });

                // Legacy AlterConfigs replaces the broker's whole set; an empty set drops the entry.
                var replace = Resource(4, "1");
                replace.ReplaceAll = true;
                Assert.Equal(0, Alter(h, false, replace).Results[0].ErrorCode);
                AssertBroker1(h, []);
                h.Restart();
                AssertBroker1(h, []);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void A_static_value_changed_under_a_dynamic_one_is_kept_apart_and_comes_back_when_the_dynamic_one_is_deleted()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sp-ctl-" + Guid.NewGuid().ToString("N"));
        try
        {
            using (var h = new ControllerHarness(o => o.BrokerConfigs["log.segment.bytes"] = "2048", dataDir: dir))
            {
                Assert.Equal(0, Alter(h, false, Resource(4, "", Op("log.segment.bytes", AlterConfigOp.Set, "4096"))).Results[0].ErrorCode);
                var m = h.Controller.GetMetadata();
                Assert.Equal(("4096", "2048"), (m.BrokerConfigs["log.segment.bytes"], m.StaticBrokerConfigs["log.segment.bytes"]));
            }
            using (var h = new ControllerHarness(o => { o.BrokerConfigs["log.segment.bytes"] = "8192"; o.SnapshotLogBytes = 1; }, dataDir: dir))
            {
                var m = h.Controller.GetMetadata();
                Assert.Equal(("4096", "8192"), (m.BrokerConfigs["log.segment.bytes"], m.StaticBrokerConfigs["log.segment.bytes"]));
                Assert.Equal(0, Alter(h, false, Resource(4, "", Op("log.segment.bytes", AlterConfigOp.Delete))).Results[0].ErrorCode);
                Assert.Equal("8192", h.Controller.GetMetadata().BrokerConfigs["log.segment.bytes"]);
                h.Restart(); // from the snapshot
                m = h.Controller.GetMetadata();
                Assert.Equal(("8192", "8192"), (m.BrokerConfigs["log.segment.bytes"], m.StaticBrokerConfigs["log.segment.bytes"]));
                Assert.Empty(m.DynamicBrokerConfigs);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Group_configs_are_recorded_per_group_validated_together_and_survive_restarts()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sp-ctl-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var h = new ControllerHarness(o => o.SnapshotLogBytes = 1, dataDir: dir);
            var set = Alter(h, false, Resource(MetadataController.GroupResource, "g1",
                Op("consumer.session.timeout.ms", AlterConfigOp.Set, "50000"),
                Op("consumer.heartbeat.interval.ms", AlterConfigOp.Set, "6000")));
            Assert.Equal(0, Assert.Single(set.Results).ErrorCode);
            // The session must stay above the heartbeat interval (Kafka's GroupConfig check), also across two requests.
            var tooShort = Alter(h, false, Resource(32, "g1", Op("consumer.heartbeat.interval.ms", AlterConfigOp.Set, "15000"),
                Op("consumer.session.timeout.ms", AlterConfigOp.Set, "45000")));
            Assert.Equal(0, tooShort.Results[0].ErrorCode);
            var invalid = Alter(h, false, Resource(32, "g1", Op("consumer.session.timeout.ms", AlterConfigOp.Set, "15000")));
            Assert.Equal(ErrorCodes.InvalidConfig, invalid.Results[0].ErrorCode);

            h.Restart();
            var group = Assert.Single(h.Controller.GetMetadata().GroupConfigs);
            Assert.Equal("g1", group.Name);
            Assert.Equal(new Dictionary<string, string> { ["consumer.heartbeat.interval.ms"] = "15000", ["consumer.session.timeout.ms"] = "45000" }, group.Configs);

            var delete = Resource(32, "g1", Op("consumer.heartbeat.interval.ms", AlterConfigOp.Delete), Op("consumer.session.timeout.ms", AlterConfigOp.Delete));
            Assert.Equal(0, Alter(h, false, delete).Results[0].ErrorCode);
            Assert.Empty(h.Controller.GetMetadata().GroupConfigs);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_topic_config_change_reaches_the_broker_log_through_metadata_without_a_restart()
    {
        using var h = WithTopic();
        using var dir = new TempDir();
        using var channel = GrpcChannel.ForAddress("http://127.0.0.1:9"); // never called: the watcher is fed by Apply
        await using var watcher = new MetadataWatcher(channel, "test", NullLogger.Instance, h.Time);
        using var logs = new LogManager(dir.Path, h.Time, NullLogger<LogManager>.Instance);
        logs.LoadAll();
        watcher.Applied += m => logs.ApplyMetadata(m, 1);
        watcher.Apply(h.Controller.GetMetadata());
        var log = logs.Logs.Single(l => l.TopicPartition == new TopicPartition("t", 0));
        Assert.Equal((1000L, -1L, false), (log.Config.RetentionMs, log.Config.RetentionBytes, log.Config.Compacted));

        Alter(h, false, Resource(2, "t", Op("retention.bytes", AlterConfigOp.Set, "4096"), Op("cleanup.policy", AlterConfigOp.Set, "compact,delete"), Op("retention.ms", AlterConfigOp.Delete)));
        Assert.Equal(0, Alter(h, false, Resource(4, "", Op("log.retention.ms", AlterConfigOp.Set, "7777"))).Results[0].ErrorCode);
        watcher.Apply(h.Controller.GetMetadata());
        Assert.Same(log, logs.Logs.Single(l => l.TopicPartition == new TopicPartition("t", 0)));
        // retention.ms deleted on the topic: the broker-wide log.retention.ms (dynamic) applies.
        Assert.Equal((7777L, 4096L, true, true), (log.Config.RetentionMs, log.Config.RetentionBytes, log.Config.Compacted, log.Config.DeleteEnabled));
    }

    [Fact]
    public async Task A_per_broker_value_reaches_only_that_brokers_logs_and_deleting_it_restores_the_cluster_value()
    {
        using var h = WithTopic(configs: []);
        using var dir1 = new TempDir();
        using var dir2 = new TempDir();
        using var channel = GrpcChannel.ForAddress("http://127.0.0.1:9"); // never called: the watcher is fed by Apply
        await using var watcher = new MetadataWatcher(channel, "test", NullLogger.Instance, h.Time);
        using var broker1 = new LogManager(dir1.Path, h.Time, NullLogger<LogManager>.Instance, brokerId: 1);
        using var broker2 = new LogManager(dir2.Path, h.Time, NullLogger<LogManager>.Instance, brokerId: 2);
        broker1.LoadAll();
        broker2.LoadAll();
        Assert.Equal(0, Alter(h, false, Resource(4, "", Op("log.retention.ms", AlterConfigOp.Set, "7777"))).Results[0].ErrorCode);
        Assert.Equal(0, Alter(h, false, Resource(4, "1", Op("log.retention.ms", AlterConfigOp.Set, "5555"))).Results[0].ErrorCode);
        watcher.Apply(h.Controller.GetMetadata());
        var metadata = watcher.Current;
        var topic = metadata.TopicsByName["t"];
        // Both hold partition 0 here to compare them (the broker id only picks the per-broker configs).
        var log1 = broker1.GetOrCreate(metadata, topic, topic.Partitions[0]);
        var log2 = broker2.GetOrCreate(metadata, topic, topic.Partitions[0]);
        Assert.Equal((5555L, 7777L), (log1.Config.RetentionMs, log2.Config.RetentionMs));

        Assert.Equal(0, Alter(h, false, Resource(4, "1", Op("log.retention.ms", AlterConfigOp.Delete))).Results[0].ErrorCode);
        watcher.Apply(h.Controller.GetMetadata());
        Assert.Same(log1, broker1.GetOrCreate(watcher.Current, watcher.Current.TopicsByName["t"], watcher.Current.TopicsByName["t"].Partitions[0]));
        Assert.Equal(7777L, log1.Config.RetentionMs);
    }
}
