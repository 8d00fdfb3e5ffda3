using StreamPlatform.Protos.Grpc.Controller;

namespace StreamPlatform.UnitTests.Controller;

/// <summary>CreateTopics answers "writable": after every new leader reported (heartbeat metadata_epoch) having applied the creation.</summary>
public class LeaderReadinessTests
{
    private static CreateTopicsRequest Request(string name, int partitions, int waitMs) => new()
    {
        WaitForLeadersMs = waitMs,
        Topics = { new CreatableTopic { Name = name, NumPartitions = partitions, ReplicationFactor = 1 } },
    };

    [Fact]
    public async Task CreateTopics_answers_once_every_leader_has_applied_the_creation()
    {
        using var h = new ControllerHarness();
        var e1 = h.RegisterBroker(1);
        var e2 = h.RegisterBroker(2);
        var task = h.Controller.CreateTopicsAsync(Request("w", 2, 10_000), CancellationToken.None);
        var epoch = h.Controller.State.Epoch;
        Assert.Equal([1, 2], h.Controller.State.Topics["w"].Partitions.Select(p => p.Leader).Order().ToArray());
        Assert.False(task.IsCompleted);

        // Broker 2 is there; broker 1 reports only the epoch before the creation.
        h.Controller.BrokerHeartbeat(new BrokerHeartbeatRequest { BrokerId = 1, BrokerEpoch = e1, MetadataEpoch = epoch - 1 });
        h.Controller.BrokerHeartbeat(new BrokerHeartbeatRequest { BrokerId = 2, BrokerEpoch = e2, MetadataEpoch = epoch });
        await Task.Delay(50);
        Assert.False(task.IsCompleted);

        h.Controller.BrokerHeartbeat(new BrokerHeartbeatRequest { BrokerId = 1, BrokerEpoch = e1, MetadataEpoch = epoch });
        var response = await task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(response.LeadersReady);
        Assert.Equal(epoch, response.MetadataEpoch);
        Assert.Equal(0, response.Results.Single().ErrorCode);
    }

    [Fact]
    public async Task The_wait_is_bounded_and_the_topic_is_created_anyway()
    {
        using var h = new ControllerHarness();
        h.RegisterBroker(1);
        var task = h.Controller.CreateTopicsAsync(Request("slow", 1, 1_000), CancellationToken.None);
        Assert.False(task.IsCompleted);
        h.Time.Advance(TimeSpan.FromMilliseconds(1_000));
        var response = await task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.False(response.LeadersReady);
        Assert.Equal(0, response.Results.Single().ErrorCode);
        Assert.Contains("slow", h.Controller.State.Topics.Keys);
    }

    [Fact]
    public async Task A_new_registration_forgets_what_the_previous_process_applied()
    {
        using var h = new ControllerHarness();
        var e1 = h.RegisterBroker(1, "first");
        h.Controller.BrokerHeartbeat(new BrokerHeartbeatRequest { BrokerId = 1, BrokerEpoch = e1, MetadataEpoch = h.Controller.State.Epoch });
        Assert.Equal(h.Controller.State.Epoch, h.Controller.Applied.Of(1));
        h.RestartBroker(1, "second");
        Assert.Equal(0, h.Controller.Applied.Of(1));
        // Without waiting (wait_for_leaders_ms 0) the answer comes at commit and says whether the leaders were ready.
        var response = await h.Controller.CreateTopicsAsync(Request("now", 1, 0), CancellationToken.None);
        Assert.False(response.LeadersReady);
    }
}
