using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Broker.Replication;
using StreamPlatform.Broker.Services;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Controller.Metadata;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Grpc.Controller;
using StreamPlatform.UnitTests.Controller;
using StreamPlatform.UnitTests.Storage;

namespace StreamPlatform.UnitTests.Replication;

/// <summary>
/// ISR changes from a leader's periodic check to the real controller (in-process, through its
/// AlterPartition) and back into the leader's Partition, with deterministic time.
/// </summary>
public sealed class IsrChangeTests : IAsyncDisposable
{
    private const long T0 = 1_767_225_600_000; // the harness's 2026-01-01
    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(T0));
    private readonly ControllerHarness _controller;
    private readonly InProcessController _transport;
    private readonly TempDir _dir = new();
    private readonly LogManager _logs;
    private readonly ReplicaManager _replicas;
    private readonly int _leader;
    private readonly int[] _followers;

    public IsrChangeTests()
    {
        _controller = new ControllerHarness(time: _time);
        foreach (var id in new[] { 1, 2, 3 }) _controller.Heartbeat(id, _controller.RegisterBroker(id));
        Assert.Equal(0, _controller.CreateTopic("t", 1, 3).ErrorCode);
        var snapshot = Snapshot();
        var partition = snapshot.Topics.Single(t => t.Name == "t").Partitions[0];
        Assert.Equal(3, partition.Isr.Count);
        _leader = partition.Leader;
        _followers = [.. partition.Replicas.Where(r => r != _leader)];
        _logs = new LogManager(_dir.Path, _time, NullLogger<LogManager>.Instance, _leader);
        _logs.LoadAll();
        _transport = new InProcessController(_controller.Controller);
        _replicas = new ReplicaManager(_logs, Options.Create(new BrokerOptions { BrokerId = _leader }), _time,
            controller: new ControllerService.ControllerServiceClient(_transport));
        Apply(snapshot);
    }

    public async ValueTask DisposeAsync()
    {
        await _replicas.Fetchers.DisposeAsync();
        _logs.CloseAll();
        _dir.Dispose();
        _controller.Dispose();
    }

    private MetadataSnapshot Snapshot()
    {
        var snapshot = _controller.Controller.GetMetadata().Clone();
        snapshot.BrokerConfigs["replica.lag.time.max.ms"] = "1000";
        return snapshot;
    }

    private void Apply(MetadataSnapshot snapshot)
    {
        var metadata = new ClusterMetadata(snapshot);
        _logs.ApplyMetadata(metadata, _leader);
        _replicas.ApplyMetadata(metadata);
    }

    private Partition P => _replicas.TryGetPartition(new TopicPartition("t", 0), out var p) ? p : throw new InvalidOperationException("not hosted");

    private IReadOnlyList<int> ControllerIsr() => [.. _controller.Controller.GetMetadata().Topics.Single(t => t.Name == "t").Partitions[0].Isr.Order()];

    /// <summary>A follower fetch at <paramref name="offset"/> (the follower's log is not needed for what the leader tracks).</summary>
    private void FetchAt(int follower, long offset)
        => Assert.Equal(0, P.ReadForFollower(follower, 1, offset, offset == 0 ? -1 : P.LeaderEpoch, P.LeaderEpoch, 1 << 20, true).ErrorCode);

    [Fact]
    public async Task A_lagging_follower_is_removed_through_the_controller_and_added_back_once_caught_up()
    {
        var (fast, slow) = (_followers[0], _followers[1]);
        Assert.Equal(0, P.AppendAsLeader(TestBatches.Build(T0, "a"), 1, default, crcVerified: false).Append.ErrorCode);
        FetchAt(fast, 0);
        FetchAt(fast, 1);
        _time.Advance(TimeSpan.FromMilliseconds(1001));
        _replicas.CheckIsr();
        Assert.Equal(new[] { _leader, fast }.Order(), P.PendingIsrChange!.NewIsr.Order());
        Assert.False(await _replicas.SendIsrChangesAsync(default));
        Assert.Equal(new[] { _leader, fast }.Order(), P.Isr.Order());
        Assert.Equal(new[] { _leader, fast }.Order(), ControllerIsr());
        Assert.Equal((1L, 0L), (_replicas.IsrShrinks, _replicas.IsrExpands));
        Assert.Equal(1, P.HighWatermark); // the slow follower no longer holds it back

        // The metadata record of the change arrives too: nothing changes twice.
        Apply(Snapshot());
        Assert.Equal(new[] { _leader, fast }.Order(), P.Isr.Order());

        // The slow follower catches up: proposed at once on its fetch, committed by the controller.
        FetchAt(slow, 1);
        Assert.Equal(new[] { 1, 2, 3 }, P.PendingIsrChange!.NewIsr.Order());
        Assert.False(await _replicas.SendIsrChangesAsync(default));
        Assert.Equal(new[] { 1, 2, 3 }, P.Isr.Order());
        Assert.Equal(new[] { 1, 2, 3 }, ControllerIsr());
        Assert.Equal((1L, 1L), (_replicas.IsrShrinks, _replicas.IsrExpands));
    }

    [Fact]
    public async Task A_failed_call_keeps_the_proposal_pending_and_sends_it_again()
    {
        _time.Advance(TimeSpan.FromMilliseconds(1001)); // nobody fetched: both followers lag
        _replicas.CheckIsr();
        var proposal = P.PendingIsrChange!;
        Assert.Equal([_leader], proposal.NewIsr);
        _transport.Failure = new RpcException(new Status(StatusCode.Unimplemented, "not yet"));
        Assert.True(await _replicas.SendIsrChangesAsync(default));
        // Outcome unknown: still pending, both followers still count for the high watermark.
        Assert.Same(proposal, P.PendingIsrChange);
        Assert.Equal(3, P.MaximalIsr.Count);
        _transport.Failure = null;
        Assert.False(await _replicas.SendIsrChangesAsync(default));
        Assert.Equal([_leader], P.Isr);
        Assert.Equal([_leader], ControllerIsr());
    }
}
