namespace StreamPlatform.Broker.Groups;

/// <summary>
/// The transactional offset commits (TxnOffsetCommit) of one __consumer_offsets partition whose
/// transaction is still open: written to the log in a transactional batch of the producer, kept
/// here per producer id until that producer's COMMIT or ABORT marker reaches the partition
/// (Kafka's OffsetMetadataManager.pendingTransactionalOffsets / openTransactionsByGroup). They
/// are not the group's committed offsets: OffsetFetch does not see them (with require_stable it
/// answers UNSTABLE_OFFSET_COMMIT for them), expiry keeps their partitions and groups.
/// <para>One producer has one open transaction at a time, and its pending offsets may span
/// every group of the partition. Each offset remembers the log offset of its record
/// (<see cref="CommittedOffset.RecordOffset"/>): on COMMIT it becomes the group's offset only
/// when written after the group's current one (a plain OffsetCommit written later wins, as in
/// Kafka), and a marker only completes the records written before it.</para>
/// <para>Not thread-safe: used under the shard's lock (live) or by one load.</para>
/// </summary>
public sealed class PendingTransactionalOffsets
{
    /// <summary>
    /// Most distinct (group, topic, partition) offsets one producer's open transaction may hold
    /// in one partition: bounds the memory an endless transaction can take. A TxnOffsetCommit
    /// past it is refused (INVALID_COMMIT_OFFSET_SIZE); a load keeps what the log holds.
    /// </summary>
    public const int OffsetsPerProducerMax = 100_000;

    /// <summary>Most producers with an open transaction holding offsets in one partition (new ones are refused past it).</summary>
    public const int ProducersMax = 100_000;

    // producer id -> group -> (topic, partition) -> offset
    private readonly Dictionary<long, Dictionary<string, Dictionary<(string Topic, int Partition), CommittedOffset>>> _byProducer = [];
    // group -> producers with pending offsets of the group (Kafka's openTransactionsByGroup)
    private readonly Dictionary<string, HashSet<long>> _openByGroup = new(StringComparer.Ordinal);

    /// <summary>Groups with pending offsets.</summary>
    public IEnumerable<string> Groups => _openByGroup.Keys;

    /// <summary>Producers with pending offsets in this partition.</summary>
    public int ProducerCount => _byProducer.Count;

    /// <summary>How many offsets of the producer are pending.</summary>
    public int CountOf(long producerId)
        => _byProducer.TryGetValue(producerId, out var groups) ? groups.Values.Sum(g => g.Count) : 0;

    /// <summary>
    /// Whether <paramref name="newOffsets"/> more offsets may be added for the producer, at most
    /// <paramref name="offsetsPerProducerMax"/> (<see cref="OffsetsPerProducerMax"/>; counted
    /// generously: replacing an offset already pending counts as new).
    /// </summary>
    public bool HasRoomFor(long producerId, int newOffsets, int offsetsPerProducerMax = OffsetsPerProducerMax)
    {
        if (!_byProducer.ContainsKey(producerId) && _byProducer.Count >= ProducersMax) return false;
        return CountOf(producerId) + newOffsets <= offsetsPerProducerMax;
    }

    /// <summary>Records a transactional offset of the producer (a later one for the same key replaces it).</summary>
    public void Add(long producerId, string groupId, string topic, int partition, CommittedOffset offset)
    {
        if (!_byProducer.TryGetValue(producerId, out var groups)) _byProducer[producerId] = groups = new(StringComparer.Ordinal);
        if (!groups.TryGetValue(groupId, out var offsets)) groups[groupId] = offsets = [];
        offsets[(topic, partition)] = offset;
        if (!_openByGroup.TryGetValue(groupId, out var producers)) _openByGroup[groupId] = producers = [];
        producers.Add(producerId);
    }

    /// <summary>Kafka's hasPendingTransactionalOffsets: an open transaction holds an offset for this partition of the group.</summary>
    public bool Has(string groupId, string topic, int partition)
    {
        if (!_openByGroup.TryGetValue(groupId, out var producers)) return false;
        foreach (var producerId in producers)
            if (_byProducer[producerId].TryGetValue(groupId, out var offsets) && offsets.ContainsKey((topic, partition))) return true;
        return false;
    }

    /// <summary>Whether any open transaction holds offsets of the group (then expiry keeps the group).</summary>
    public bool HasOpenTransactions(string groupId) => _openByGroup.ContainsKey(groupId);

    /// <summary>The partitions of the group with a pending offset (of any producer).</summary>
    public HashSet<(string Topic, int Partition)> PartitionsOf(string groupId)
    {
        var result = new HashSet<(string, int)>();
        if (!_openByGroup.TryGetValue(groupId, out var producers)) return result;
        foreach (var producerId in producers)
            if (_byProducer[producerId].TryGetValue(groupId, out var offsets)) result.UnionWith(offsets.Keys);
        return result;
    }

    /// <summary>
    /// A tombstone for the key (OffsetDelete, DeleteGroups, expiry): the pending offsets of every
    /// producer for it are gone too, so a later COMMIT cannot bring the deleted offset back (Kafka's replay).
    /// </summary>
    public void Remove(string groupId, string topic, int partition)
    {
        if (!_openByGroup.TryGetValue(groupId, out var producers)) return;
        foreach (var producerId in producers.ToList())
        {
            var groups = _byProducer[producerId];
            if (!groups.TryGetValue(groupId, out var offsets) || !offsets.Remove((topic, partition)) || offsets.Count > 0) continue;
            groups.Remove(groupId);
            producers.Remove(producerId);
            if (groups.Count == 0) _byProducer.Remove(producerId);
        }
        if (producers.Count == 0) _openByGroup.Remove(groupId);
    }

    /// <summary>
    /// The producer's marker at <paramref name="markerOffset"/>: removes and returns its pending
    /// offsets written before the marker (every group). A marker replayed twice (the load read it
    /// and the broker then reported it) finds nothing the second time.
    /// </summary>
    public List<(string GroupId, (string Topic, int Partition) Key, CommittedOffset Offset)> Complete(long producerId, long markerOffset)
    {
        var completed = new List<(string, (string, int), CommittedOffset)>();
        if (!_byProducer.TryGetValue(producerId, out var groups)) return completed;
        foreach (var (groupId, offsets) in groups.ToList())
        {
            foreach (var (key, offset) in offsets.ToList())
            {
                // A record after the marker belongs to a later transaction of the producer.
                if (offset.RecordOffset >= markerOffset) continue;
                completed.Add((groupId, key, offset));
                offsets.Remove(key);
            }
            if (offsets.Count > 0) continue;
            groups.Remove(groupId);
            if (_openByGroup.TryGetValue(groupId, out var producers) && producers.Remove(producerId) && producers.Count == 0) _openByGroup.Remove(groupId);
        }
        if (groups.Count == 0) _byProducer.Remove(producerId);
        return completed;
    }

    /// <summary>
    /// Kafka's materialization of a committed transactional offset: it becomes the group's offset
    /// unless the group's current one was written later (compare log offsets of the records, so
    /// a plain commit after the transactional one wins, whatever order the marker came in).
    /// </summary>
    public static bool Materialize(Dictionary<(string Topic, int Partition), CommittedOffset> committed, (string Topic, int Partition) key, CommittedOffset pending)
    {
        if (committed.TryGetValue(key, out var existing) && existing.RecordOffset > pending.RecordOffset) return false;
        committed[key] = pending;
        return true;
    }
}
