using StreamPlatform.Controller.Metadata;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.UnitTests.Controller;

public class RestartTests
{
    [Fact]
    public void Restart_keeps_topics_brokers_epoch_and_cluster_id()
    {
        using var h = new ControllerHarness();
        h.RegisterBroker(1);
        h.RegisterBroker(2);
        var created = h.CreateTopic("keep", 4, 2, new Dictionary<string, string> { ["retention.ms"] = "5000" });
        h.CreateTopic("gone", 1, 1);
        h.Controller.DeleteTopics(new DeleteTopicsRequest { Topics = { new TopicRef { Name = "gone" } } });
        var before = h.Controller.GetMetadata();

        h.Restart();
        var after = h.Controller.GetMetadata();
        Assert.Equal(before, after); // protobuf value equality: the whole snapshot survives
        Assert.Equal(TopicIds.ToGuid(created.TopicId), h.Controller.State.Topics["keep"].TopicId);
        Assert.Equal(before.ClusterId, h.Controller.ClusterId);

        // New changes continue the epoch sequence and survive a second restart.
        h.CreateTopic("later", 1, 1);
        Assert.Equal(before.MetadataEpoch + 1, h.Controller.State.Epoch);
        h.Restart();
        Assert.Contains("later", h.Controller.State.Topics.Keys);
    }

    [Fact]
    public void Changed_broker_config_overrides_are_recorded_on_start()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sp-ctl-" + Guid.NewGuid().ToString("N"));
        try
        {
            long epoch;
            using (var first = new ControllerHarness(dataDir: dir))
            {
                // Nothing configured: nothing recorded (the catalog default applies).
                Assert.False(first.Controller.GetMetadata().BrokerConfigs.ContainsKey("num.partitions"));
                epoch = first.Controller.State.Epoch;
            }
            using (var same = new ControllerHarness(dataDir: dir))
                Assert.Equal(epoch, same.Controller.State.Epoch); // nothing changed, nothing written
            using (var changed = new ControllerHarness(o => { o.BrokerConfigs["num.partitions"] = "5"; o.BrokerConfigs["log.dirs"] = "/d"; }, dataDir: dir))
            {
                Assert.Equal(epoch + 2, changed.Controller.State.Epoch);
                Assert.Equal("5", changed.Controller.GetMetadata().BrokerConfigs["num.partitions"]);
                Assert.Equal("/d", changed.Controller.GetMetadata().BrokerConfigs["log.dirs"]);
            }
            using var unset = new ControllerHarness(dataDir: dir);
            Assert.False(unset.Controller.GetMetadata().BrokerConfigs.ContainsKey("num.partitions"));
            Assert.Empty(unset.Controller.GetMetadata().StaticBrokerConfigs);
            Assert.False(unset.Controller.GetMetadata().BrokerConfigs.ContainsKey("log.dirs"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void A_new_cluster_starts_at_the_replication_metadata_version_and_restarts_never_narrow_isrs()
    {
        // A snapshot after every commit: the level must survive snapshots as well as the log.
        using var h = new ControllerHarness(o => o.SnapshotLogBytes = 1);
        Assert.Equal(MetadataVersions.Replication, h.Controller.State.MetadataVersion);
        h.RegisterBroker(1);
        h.RegisterBroker(2);
        Assert.Equal(0, h.CreateTopic("t", 2, 2).ErrorCode);
        var epoch = h.Controller.State.Epoch;
        h.Restart();
        Assert.Equal(epoch, h.Controller.State.Epoch);
        Assert.Equal(MetadataVersions.Replication, h.Controller.State.MetadataVersion);
        Assert.All(h.Controller.State.Topics["t"].Partitions, p => Assert.Equal(p.Replicas.ToArray(), p.Isr.ToArray()));
    }

    [Fact]
    public void A_log_written_before_replication_has_its_isrs_narrowed_to_the_leader_once()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sp-ctl-" + Guid.NewGuid().ToString("N"));
        try
        {
            // A metadata log as earlier versions wrote it: ISR = every replica, although only
            // the leader ever held records.
            using (var log = StreamPlatform.Controller.Storage.MetadataLog.Open(dir, _ => { }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance))
            {
                var entry = new StreamPlatform.Protos.Grpc.Metadata.MetadataLogEntry { BaseEpoch = 0 };
                for (var b = 1; b <= 3; b++)
                    entry.Records.Add(new StreamPlatform.Protos.Grpc.Metadata.MetadataRecord { RegisterBroker = new() { BrokerId = b, GrpcEndpoint = $"http://127.0.0.1:{17100 + b}", BrokerEpoch = b } });
                var topic = new StreamPlatform.Protos.Grpc.Metadata.CreateTopicRecord { Name = "old", TopicId = TopicIds.ToByteString(Guid.NewGuid()) };
                topic.Partitions.Add(new StreamPlatform.Protos.Grpc.Metadata.PartitionRecord { Partition = 0, Leader = 2, Replicas = { 2, 3, 1 }, Isr = { 2, 3, 1 } });
                entry.Records.Add(new StreamPlatform.Protos.Grpc.Metadata.MetadataRecord { CreateTopic = topic });
                log.Append(entry);
            }
            using var h = new ControllerHarness(dataDir: dir);
            var p = h.Controller.State.Topics["old"].Partitions[0];
            // Only the ISR narrows (partition epoch + 1); the leader keeps its epoch.
            Assert.Equal((2, 0, 1), (p.Leader, p.LeaderEpoch, p.PartitionEpoch));
            Assert.Equal([2], p.Isr.ToArray());
            Assert.Equal(MetadataVersions.Replication, h.Controller.State.MetadataVersion);
            Assert.Equal(MetadataVersions.Replication, h.Controller.GetMetadata().MetadataVersion);
            // And so a failover of that leader no longer elects the empty replica 3.
            h.Time.Advance(TimeSpan.FromMilliseconds(3000));
            h.Heartbeat(1, 1);
            h.Heartbeat(3, 3);
            h.Time.Advance(TimeSpan.FromMilliseconds(3000));
            h.Controller.ExpireSessions();
            Assert.True(h.Controller.State.Brokers[2].Fenced);
            Assert.Equal(-1, h.Controller.State.Topics["old"].Partitions[0].Leader);
            // A second start writes nothing more, and ISRs the leaders grew since stay grown.
            h.RegisterBroker(2);
            Assert.Equal(0, h.AlterIsr("old", 0, [2, 3]).ErrorCode);
            var epoch = h.Controller.State.Epoch;
            h.Restart();
            Assert.Equal(epoch, h.Controller.State.Epoch);
            Assert.Equal([2, 3], h.Controller.State.Topics["old"].Partitions[0].Isr.ToArray());
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Torn_tail_after_a_crash_loses_only_the_unacknowledged_entry()
    {
        using var h = new ControllerHarness();
        h.RegisterBroker(1);
        h.CreateTopic("first", 1, 1);
        var path = Path.Combine(h.DataDir, StreamPlatform.Controller.Storage.MetadataLog.FileName);
        var goodLength = new FileInfo(path).Length;
        h.CreateTopic("second", 1, 1);
        h.Controller.Dispose();
        using (var f = new FileStream(path, FileMode.Open)) f.SetLength(goodLength + 6);
        h.Restart();
        Assert.Contains("first", h.Controller.State.Topics.Keys);
        Assert.DoesNotContain("second", h.Controller.State.Topics.Keys);
        Assert.Equal(6, h.Controller.TruncatedLogBytes);
    }
}

public class CompactionTests
{
    [Fact]
    public void A_long_log_is_snapshotted_and_emptied_and_the_state_survives_restart()
    {
        using var h = new ControllerHarness(o => o.SnapshotLogBytes = 2048);
        var e1 = h.RegisterBroker(1);
        h.RegisterBroker(2);
        for (var i = 0; i < 40; i++) Assert.Equal(0, h.CreateTopic($"t{i}", 3, 2, new Dictionary<string, string> { ["retention.ms"] = "1000" }).ErrorCode);
        h.Time.Advance(TimeSpan.FromMilliseconds(6000));
        h.Heartbeat(1, e1);
        h.Controller.ExpireSessions(); // fences 2: leader changes with partition epoch bumps
        var logPath = Path.Combine(h.DataDir, StreamPlatform.Controller.Storage.MetadataLog.FileName);
        Assert.True(File.Exists(Path.Combine(h.DataDir, StreamPlatform.Controller.Storage.MetadataSnapshotFile.FileName)));
        Assert.True(new FileInfo(logPath).Length < 2048);
        var before = h.Controller.GetMetadata();
        Assert.Contains(before.Topics.SelectMany(t => t.Partitions), p => p.PartitionEpoch > 0);

        h.Restart();
        Assert.Equal(before, h.Controller.GetMetadata());
        h.CreateTopic("after", 1, 1);
        Assert.Equal(before.MetadataEpoch + 1, h.Controller.State.Epoch);
    }

    [Fact]
    public void Entries_left_in_the_log_behind_a_snapshot_are_skipped_on_replay()
    {
        using var h = new ControllerHarness();
        h.RegisterBroker(1);
        h.CreateTopic("a", 1, 1);
        // As if the controller crashed after writing the snapshot but before emptying the log.
        StreamPlatform.Controller.Storage.MetadataSnapshotFile.Write(h.DataDir, h.Controller.GetMetadata());
        h.CreateTopic("b", 1, 1);
        var expected = h.Controller.GetMetadata();
        h.Restart();
        Assert.Equal(expected, h.Controller.GetMetadata());
    }

    [Fact]
    public void A_corrupt_snapshot_stops_the_controller_from_starting()
    {
        using var h = new ControllerHarness();
        h.RegisterBroker(1);
        var path = Path.Combine(h.DataDir, StreamPlatform.Controller.Storage.MetadataSnapshotFile.FileName);
        StreamPlatform.Controller.Storage.MetadataSnapshotFile.Write(h.DataDir, h.Controller.GetMetadata());
        var bytes = File.ReadAllBytes(path);
        bytes[^1] ^= 1;
        File.WriteAllBytes(path, bytes);
        Assert.Throws<InvalidDataException>(() => h.Restart());
    }
}
