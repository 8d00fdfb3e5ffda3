namespace StreamPlatform.Gateway.Routing;

/// <summary>
/// Where fetches wait for data at the gateway: the brokers' append notices (one
/// <see cref="BrokerAppendWatch"/> per broker) arrive in <see cref="Notice"/>, and each waiting
/// fetch holds an <see cref="Interest"/> in its partitions. Bounded: a partition has an entry
/// only while some interest names it (notices for other partitions are dropped: nobody is
/// waiting for them), and a broker endpoint has a state only while its watch exists.
/// <para>
/// No lost wake-ups: an interest is registered (and re-armed by <see cref="Interest.TakeMoved"/>)
/// before the fetch round it guards is sent, so an append the round missed is noticed after that
/// and marks the interest; <see cref="Interest.WaitAsync"/> then returns at once. That holds only
/// while the broker's watch is connected from before the registration to the notice, hence
/// <see cref="TryRegister"/> refuses when a watch is not connected and a watch going down marks
/// its interests <see cref="Interest.Lost"/> (the fetch falls back to broker long polls).
/// </para>
/// </summary>
public sealed class AppendSignals
{
    // One lock for everything: a notice or a registration holds it for a few dictionary
    // operations, at a rate of appends plus fetches per second.
    private readonly object _gate = new();
    private readonly Dictionary<(string Topic, int Partition), List<Registration>> _byPartition = [];
    // Per connected endpoint: the watch that reported it connected and the interests relying on it.
    private readonly Dictionary<string, (object Owner, HashSet<Interest> Interests)> _brokers = new(StringComparer.Ordinal);

    private readonly record struct Registration(Interest Interest, int Tag, long FetchOffset);

    /// <summary>Partitions with at least one interest (tests: entries must not outlive their fetches).</summary>
    public int PartitionCount { get { lock (_gate) return _byPartition.Count; } }

    public bool IsConnected(string endpoint)
    {
        lock (_gate) return _brokers.ContainsKey(endpoint);
    }

    /// <summary>
    /// The broker's watch <paramref name="owner"/> delivered its first message: from now on its
    /// notices are complete. A different watch reported for the endpoint before (a replaced
    /// channel) loses it: interests relying on that one are lost.
    /// </summary>
    public void Connected(string endpoint, object owner)
    {
        lock (_gate)
        {
            if (_brokers.TryGetValue(endpoint, out var current))
            {
                if (ReferenceEquals(current.Owner, owner)) return;
                foreach (var i in current.Interests) i.MarkLost();
            }
            _brokers[endpoint] = (owner, []);
        }
    }

    /// <summary>
    /// The broker's watch <paramref name="owner"/> ended (or was removed): interests that depend
    /// on it are woken as lost. Null: whichever watch it is (tests). A watch that is not the
    /// endpoint's current one changes nothing (a disposed watch finishing late).
    /// </summary>
    public void Disconnected(string endpoint, object? owner = null)
    {
        lock (_gate)
        {
            if (!_brokers.TryGetValue(endpoint, out var current)) return;
            if (owner is not null && !ReferenceEquals(current.Owner, owner)) return;
            _brokers.Remove(endpoint);
            foreach (var i in current.Interests) i.MarkLost();
        }
    }

    /// <summary>A partition's high watermark is now <paramref name="highWatermark"/>: wakes interests fetching below it.</summary>
    public void Notice(string topic, int partition, long highWatermark)
    {
        lock (_gate)
        {
            if (!_byPartition.TryGetValue((topic, partition), out var registrations)) return;
            foreach (var r in registrations)
            {
                // At or below the fetch offset there is nothing new for this fetch (an append it
                // already read, reported late).
                if (highWatermark > r.FetchOffset) r.Interest.MarkMoved(r.Tag);
            }
        }
    }

    /// <summary>
    /// Registers interest in <paramref name="partitions"/> (tag: the caller's index of the broker
    /// the partition is fetched from, below <paramref name="tagCount"/>), armed. Null when a
    /// broker in <paramref name="endpoints"/> has no connected watch: notices from it could be
    /// missing, the caller must not rely on them.
    /// </summary>
    public Interest? TryRegister(IReadOnlyList<string> endpoints, int tagCount, IEnumerable<(string Topic, int Partition, long FetchOffset, int Tag)> partitions)
    {
        var interest = new Interest(this, tagCount, endpoints);
        lock (_gate)
        {
            foreach (var e in endpoints)
            {
                if (!_brokers.ContainsKey(e)) return null;
            }
            foreach (var e in endpoints) _brokers[e].Interests.Add(interest);
            foreach (var (topic, partition, fetchOffset, tag) in partitions)
            {
                if (!_byPartition.TryGetValue((topic, partition), out var list)) _byPartition[(topic, partition)] = list = [];
                list.Add(new Registration(interest, tag, fetchOffset));
                interest.Keys.Add((topic, partition));
            }
        }
        return interest;
    }

    private void Unregister(Interest interest)
    {
        lock (_gate)
        {
            foreach (var key in interest.Keys)
            {
                if (!_byPartition.TryGetValue(key, out var list)) continue;
                for (var i = list.Count - 1; i >= 0; i--)
                {
                    if (ReferenceEquals(list[i].Interest, interest)) list.RemoveAt(i);
                }
                if (list.Count == 0) _byPartition.Remove(key);
            }
            foreach (var e in interest.Endpoints)
            {
                if (_brokers.TryGetValue(e, out var state)) state.Interests.Remove(interest);
            }
        }
    }

    /// <summary>One fetch's interest in its partitions. Dispose it when the fetch is done.</summary>
    public sealed class Interest : IDisposable
    {
        private readonly AppendSignals _owner;
        private readonly bool[] _moved;
        private bool _anyMoved;
        private bool _lost;
        // Completed when something moved or the interest was lost; replaced when re-armed. Guarded by _owner._gate.
        private TaskCompletionSource _signal = new(TaskCreationOptions.RunContinuationsAsynchronously);

        internal Interest(AppendSignals owner, int tagCount, IReadOnlyList<string> endpoints)
        {
            _owner = owner;
            _moved = new bool[tagCount];
            Endpoints = endpoints;
        }

        internal IReadOnlyList<string> Endpoints { get; }
        internal List<(string, int)> Keys { get; } = [];

        /// <summary>A broker's watch went down since registration: notices may be missing, stop relying on them.</summary>
        public bool Lost { get { lock (_owner._gate) return _lost; } }

        // Both under _owner._gate.
        internal void MarkMoved(int tag)
        {
            _moved[tag] = true;
            _anyMoved = true;
            _signal.TrySetResult();
        }

        internal void MarkLost()
        {
            _lost = true;
            _signal.TrySetResult();
        }

        /// <summary>
        /// The tags whose partitions moved since the last call (or registration), and re-arms:
        /// call it before the round that reads those partitions, so a notice during the round
        /// counts for the next wait.
        /// </summary>
        public List<int> TakeMoved()
        {
            var moved = new List<int>();
            lock (_owner._gate)
            {
                for (var i = 0; i < _moved.Length; i++)
                {
                    if (!_moved[i]) continue;
                    moved.Add(i);
                    _moved[i] = false;
                }
                _anyMoved = false;
                if (_signal.Task.IsCompleted && !_lost) _signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            return moved;
        }

        /// <summary>
        /// Waits until a partition moved (since the last <see cref="TakeMoved"/>), the interest
        /// was lost, <paramref name="timeout"/> passed or <paramref name="cancellationToken"/>
        /// fired, whichever first; never throws. No exception and no timer left behind on any of them.
        /// </summary>
        public async Task WaitAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
        {
            Task signal;
            lock (_owner._gate)
            {
                if (_anyMoved || _lost) return;
                signal = _signal.Task;
            }
            if (timeout <= TimeSpan.Zero || cancellationToken.IsCancellationRequested) return;
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using var timer = time.CreateTimer(static s => ((TaskCompletionSource)s!).TrySetResult(), done, timeout, Timeout.InfiniteTimeSpan);
            using var registration = cancellationToken.UnsafeRegister(static s => ((TaskCompletionSource)s!).TrySetResult(), done);
            await Task.WhenAny(signal, done.Task).ConfigureAwait(false);
        }

        public void Dispose() => _owner.Unregister(this);
    }
}
