using Grpc.Core;
using Brk = StreamPlatform.Protos.Grpc.Broker;

namespace StreamPlatform.Gateway.Routing;

/// <summary>
/// One connection's read-ahead: after answering a Fetch whose partitions have more data than
/// it carried (a consumer catching up), the gateway asks the broker at once for what the
/// client will ask next (every partition from the offset after the records it got), while it
/// writes the answer and the client reads it and sends its next Fetch. When that Fetch asks the
/// broker what was predicted, the answer already in hand or in flight is used instead
/// of a new call, so a consumer catching up on one partition no longer waits a whole gateway to
/// broker round trip per fetch. Any other request (different offsets, partitions, epochs, sizes,
/// isolation level, a partition not predicted, or another broker leading; the partitions' order
/// does not count, and partitions predicted but not asked are ignored) abandons the entry: the
/// prediction is used as it is or not at all. At most one entry per broker; the bytes are
/// reserved from the gateway-wide <see cref="FetchReadAheadBudget"/>. Disposed with the connection.
/// </summary>
public sealed class FetchReadAhead : IDisposable
{
    /// <summary>A started read-ahead: the predicted broker request, its call and answer, and the bytes it reserved.</summary>
    public sealed class Entry(Brk.FetchRequest request, AsyncUnaryCall<BrokerFetchResponse>? call, Task<BrokerFetchResponse?> answer,
        long reservedBytes, FetchReadAheadBudget budget)
    {
        private int _released;

        public Brk.FetchRequest Request { get; } = request;
        public AsyncUnaryCall<BrokerFetchResponse>? Call { get; } = call;
        public Task<BrokerFetchResponse?> Answer { get; } = answer;

        /// <summary>Gives the reserved bytes back (once): the answer now belongs to a response, or to nobody.</summary>
        internal void Release()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) budget.Release(reservedBytes);
        }

        /// <summary>Drops it: the call is cancelled, an answer that still arrives goes back to the pool.</summary>
        internal void Abandon()
        {
            Release();
            Call?.Dispose();
            BrokerFetchResponse.DisposeWhenAnswered(Answer);
        }
    }

    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _byBroker = [];
    private bool _disposed;

    /// <summary>Entries waiting for the connection's next Fetch.</summary>
    public int Count
    {
        get { lock (_lock) return _byBroker.Count; }
    }

    /// <summary>Keeps <paramref name="entry"/> for the broker at <paramref name="brokerEndpoint"/>, replacing (abandoning) an older one; abandons it at once when the connection is gone.</summary>
    public void Put(string brokerEndpoint, Entry entry)
    {
        Entry? replaced;
        lock (_lock)
        {
            if (_disposed)
            {
                replaced = entry;
            }
            else
            {
                _byBroker.Remove(brokerEndpoint, out replaced);
                _byBroker[brokerEndpoint] = entry;
            }
        }
        replaced?.Abandon();
    }

    /// <summary>
    /// The entry for the broker when it predicted exactly <paramref name="request"/> (its bytes
    /// are released: the caller owns the answer now); otherwise null, and an entry for that broker
    /// that predicted something else is abandoned.
    /// </summary>
    public Entry? Take(string brokerEndpoint, Brk.FetchRequest request)
    {
        Entry? entry;
        lock (_lock) _byBroker.Remove(brokerEndpoint, out entry);
        if (entry is null) return null;
        if (!Predicted(entry.Request, request))
        {
            entry.Abandon();
            return null;
        }
        entry.Release();
        return entry;
    }

    /// <summary>
    /// Whether <paramref name="predicted"/>'s answer serves <paramref name="request"/>: the same
    /// fields, and every partition asked was predicted with the same offset, max bytes and leader
    /// epoch, in any order. Clients rotate the order of a fetch's partitions from one request to
    /// the next (librdkafka does, for fairness) and leave out partitions whose local queue is full
    /// for a while; the answer's partitions are matched by name, and those not asked are ignored.
    /// </summary>
    internal static bool Predicted(Brk.FetchRequest predicted, Brk.FetchRequest request)
    {
        if (predicted.MaxWaitMs != request.MaxWaitMs || predicted.MinBytes != request.MinBytes || predicted.MaxBytes != request.MaxBytes
            || predicted.IsolationLevel != request.IsolationLevel || predicted.ReplicaId != request.ReplicaId
            || request.Partitions.Count == 0 || request.Partitions.Count > predicted.Partitions.Count)
            return false;
        if (predicted.Equals(request)) return true; // the same partitions in the same order: the common case
        // Value equality: generated messages compare and hash by their fields. A partition asked
        // twice could otherwise match a prediction that has it once.
        var expected = new HashSet<Brk.PartitionFetch>(predicted.Partitions);
        var asked = new HashSet<Brk.PartitionFetch>(request.Partitions);
        return asked.Count == request.Partitions.Count && asked.IsSubsetOf(expected);
    }

    /// <summary>Abandons every entry not taken: called once a Fetch has taken what matched.</summary>
    public void AbandonAll()
    {
        List<Entry> left;
        lock (_lock)
        {
            if (_byBroker.Count == 0) return;
            left = [.. _byBroker.Values];
            _byBroker.Clear();
        }
        foreach (var entry in left) entry.Abandon();
    }

    public void Dispose()
    {
        lock (_lock) _disposed = true;
        AbandonAll();
    }
}
