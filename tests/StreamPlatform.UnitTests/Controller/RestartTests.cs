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
                Assert.Equal("1", first.Controller.GetMetadata().BrokerConfigs["num.partitions"]);
                epoch = first.Controller.State.Epoch;
            }
            using (var same = new ControllerHarness(dataDir: dir))
                Assert.Equal(epoch, same.Controller.State.Epoch); // nothing changed, nothing written
            using var changed = new ControllerHarness(o => o.BrokerConfigs["num.partitions"] = "5", dataDir: dir);
            Assert.Equal(epoch + 1, changed.Controller.State.Epoch);
            Assert.Equal("5", changed.Controller.GetMetadata().BrokerConfigs["num.partitions"]);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
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
