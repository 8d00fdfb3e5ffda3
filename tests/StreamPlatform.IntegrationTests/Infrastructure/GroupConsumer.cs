using System.Collections.Concurrent;
using Confluent.Kafka;

namespace StreamPlatform.IntegrationTests.Infrastructure;

/// <summary>
/// A Confluent.Kafka group consumer polled on its own thread (the client is not thread-safe):
/// records every message, commits each one synchronously when asked to, and tracks its
/// assignment and revocations as the rebalance callbacks report them.
/// </summary>
public sealed class GroupConsumer : IDisposable
{
    private readonly IConsumer<string, string> _consumer;
    private readonly Thread _thread;
    private readonly bool _commitEach;
    private volatile bool _stop;
    private readonly object _gate = new();
    private HashSet<int> _assignment = [];

    public GroupConsumer(string name, ConsumerConfig config, string topic, bool commitEach = true)
    {
        Name = name;
        _commitEach = commitEach;
        _consumer = new ConsumerBuilder<string, string>(config)
            .SetPartitionsAssignedHandler((_, assigned) =>
            {
                lock (_gate)
                {
                    // Cooperative and consumer-protocol (KIP-848) rebalances hand out increments.
                    if (config.PartitionAssignmentStrategy == PartitionAssignmentStrategy.CooperativeSticky || config.GroupProtocol == GroupProtocol.Consumer)
                        _assignment.UnionWith(assigned.Select(p => p.Partition.Value));
                    else
                        _assignment = assigned.Select(p => p.Partition.Value).ToHashSet();
                    AssignmentChanges++;
                }
            })
            .SetPartitionsRevokedHandler((_, revoked) =>
            {
                lock (_gate)
                {
                    foreach (var p in revoked) Revoked.Add(p.Partition.Value);
                    _assignment.ExceptWith(revoked.Select(p => p.Partition.Value));
                }
            })
            .SetPartitionsLostHandler((_, lost) =>
            {
                lock (_gate) _assignment.ExceptWith(lost.Select(p => p.Partition.Value));
            })
            .Build();
        _consumer.Subscribe(topic);
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    public string Name { get; }

    public ConcurrentQueue<(int Partition, long Offset, string Key)> Received { get; } = new();

    /// <summary>Every partition ever revoked from this consumer (cooperative: only the incremental ones).</summary>
    public ConcurrentBag<int> Revoked { get; } = [];

    public int AssignmentChanges { get; private set; }

    public Exception? Failure { get; private set; }

    public IReadOnlySet<int> Assignment
    {
        get
        {
            lock (_gate) return _assignment.ToHashSet();
        }
    }

    private void Run()
    {
        try
        {
            while (!_stop)
            {
                var r = _consumer.Consume(TimeSpan.FromMilliseconds(200));
                if (r is null || r.IsPartitionEOF) continue;
                Received.Enqueue((r.Partition.Value, r.Offset.Value, r.Message.Key));
                if (_commitEach) _consumer.Commit(r);
            }
            _consumer.Close();
        }
        catch (Exception ex)
        {
            Failure = ex;
        }
    }

    /// <summary>Stops polling and closes the consumer (LeaveGroup for dynamic members).</summary>
    public void Stop()
    {
        _stop = true;
        _thread.Join(TimeSpan.FromSeconds(60));
    }

    public void Dispose()
    {
        Stop();
        _consumer.Dispose();
    }

    public static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Timed out after {timeout.TotalSeconds} s waiting for: {what}");
            await Task.Delay(100);
        }
    }
}
