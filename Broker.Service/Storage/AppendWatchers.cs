using StreamPlatform.Protos.Grpc.Broker;

namespace StreamPlatform.Broker.Storage;

/// <summary>
/// The broker-wide fan-out of high-watermark advances to the gateways' WatchAppends streams.
/// Every partition log reports to <see cref="Publish"/> after an advance (outside its lock); each
/// open stream has a <see cref="Watch"/> holding the set of partitions changed since it last
/// wrote (the latest high watermark per partition, so memory is bounded by the partitions, not
/// by the appends) and one writer loop (<see cref="RunAsync"/>) that waits until the set is
/// non-empty, takes all of it and writes one message. Under load the set fills while the
/// previous message is being written, so notices batch by themselves; at a low rate each
/// append is written at once.
/// </summary>
public sealed class AppendWatchers
{
    private readonly object _gate = new();
    // Copy-on-write: Publish (every append) reads it without a lock.
    private volatile Watch[] _watches = [];

    /// <summary>One stream's pending notices.</summary>
    public sealed class Watch
    {
        private readonly object _gate = new();
        private readonly SemaphoreSlim _changed = new(0, 1);
        private Dictionary<TopicPartition, long> _pending = [];
        private Dictionary<TopicPartition, long> _spare = [];
        private bool _signalled;

        internal void Add(TopicPartition tp, long highWatermark)
        {
            lock (_gate)
            {
                // Keep the highest: two appends racing to report may arrive out of order.
                if (!_pending.TryGetValue(tp, out var known) || known < highWatermark) _pending[tp] = highWatermark;
                if (_signalled) return;
                _signalled = true;
            }
            _changed.Release();
        }

        /// <summary>Waits until something changed, then hands over the whole changed set (valid until the next call).</summary>
        internal async Task<Dictionary<TopicPartition, long>> TakeAsync(CancellationToken cancellationToken)
        {
            await _changed.WaitAsync(cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                var taken = _pending;
                _pending = _spare;
                _pending.Clear();
                _spare = taken;
                _signalled = false;
                return taken;
            }
        }

        /// <summary>Partitions currently pending (tests).</summary>
        internal int PendingCount { get { lock (_gate) return _pending.Count; } }
    }

    public int Count => _watches.Length;

    /// <summary>Reports that <paramref name="log"/>'s high watermark advanced. Cheap: one lock per open watch.</summary>
    public void Publish(PartitionLog log) => Publish(log.TopicPartition, log.HighWatermark);

    public void Publish(TopicPartition tp, long highWatermark)
    {
        foreach (var w in _watches) w.Add(tp, highWatermark);
    }

    public Watch Subscribe()
    {
        var watch = new Watch();
        lock (_gate) _watches = [.. _watches, watch];
        return watch;
    }

    public void Unsubscribe(Watch watch)
    {
        lock (_gate) _watches = _watches.Where(w => !ReferenceEquals(w, watch)).ToArray();
    }

    /// <summary>
    /// One WatchAppends stream until <paramref name="cancellationToken"/> (the caller went away):
    /// subscribes, writes an empty message (from then on every advance is reported), then writes
    /// one message per batch of changes, leaving out partitions <paramref name="leads"/> rejects
    /// (followers' logs, partitions moved away: nobody fetches them here). Returns normally when
    /// cancelled.
    /// </summary>
    public async Task RunAsync(Func<TopicPartition, bool> leads, Func<AppendNotices, Task> write, CancellationToken cancellationToken)
    {
        var watch = Subscribe();
        try
        {
            await write(new AppendNotices()).ConfigureAwait(false);
            while (true)
            {
                var changed = await watch.TakeAsync(cancellationToken).ConfigureAwait(false);
                var message = new AppendNotices();
                foreach (var (tp, hw) in changed)
                {
                    if (leads(tp)) message.Notices.Add(new AppendNotice { Topic = tp.Topic, Partition = tp.Partition, HighWatermark = hw });
                }
                if (message.Notices.Count > 0) await write(message).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The gateway closed the stream (or the broker is stopping).
        }
        finally
        {
            Unsubscribe(watch);
        }
    }
}
