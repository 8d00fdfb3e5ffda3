using System.Buffers.Binary;
using StreamPlatform.Broker.Groups;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.CoordinatorRecords;

namespace StreamPlatform.Broker.Transactions;

/// <summary>
/// The records of __transaction_state, in Kafka's format (TransactionLog.scala): key = int16
/// version 0 + TransactionLogKey (the transactional id), value = int16 version +
/// TransactionLogValue, or null (a tombstone: the id expired). Value version 0 unless the
/// state uses a transaction version 2 field (previous/next producer id, client transaction
/// version), then 1 (flexible, tagged fields), as Kafka writes once transaction.version is 2.
/// The last producer epoch is not stored (Kafka does not either): after a load it is -1.
/// </summary>
public static class TransactionLogRecords
{
    public const short KeyVersion = 0;

    public static byte[] EncodeKey(string transactionalId) => GroupRecords.Encode(KeyVersion, new TransactionLogKey { TransactionalId = transactionalId });

    public static byte[] EncodeValue(TxnTransit t)
    {
        if (t.State == TransactionState.Empty && !t.Partitions.IsEmpty)
            throw new IllegalTransactionTransitionException($"An Empty transaction has no partitions, this one has {t.Partitions.Count}.");
        var value = new TransactionLogValue
        {
            ProducerId = t.ProducerId,
            PreviousProducerId = t.PreviousProducerId,
            NextProducerId = t.NextProducerId,
            ProducerEpoch = t.ProducerEpoch,
            TransactionTimeoutMs = t.TimeoutMs,
            TransactionStatus = (sbyte)t.State,
            TransactionLastUpdateTimestampMs = t.LastUpdateTimestampMs,
            TransactionStartTimestampMs = t.StartTimestampMs,
            ClientTransactionVersion = t.ClientTransactionVersion,
            // Empty carries null (Kafka's), the others their partitions by topic (sorted: the same state always gives the same bytes).
            TransactionPartitions = t.State == TransactionState.Empty ? null
                : [.. t.Partitions.GroupBy(p => p.Topic, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
                    .Select(g => new TransactionLogValue.PartitionsSchema { Topic = g.Key, PartitionIds = [.. g.Select(p => p.Partition).Order()] })],
        };
        var version = (short)(t.TransactionVersion2 || t.NextProducerId != TransactionMetadata.NoProducerId ? 1 : 0);
        return GroupRecords.Encode(version, value);
    }

    /// <summary>The transactional id of a key; null for a key version this broker cannot read (skipped on load, as Kafka).</summary>
    public static string? DecodeKey(ReadOnlyMemory<byte> key)
    {
        if (key.Length < 2) return null;
        var version = BinaryPrimitives.ReadInt16BigEndian(key.Span);
        if (version != KeyVersion) return null;
        var reader = new KafkaReader(key[2..]);
        var k = new TransactionLogKey();
        k.Read(ref reader, version);
        return k.TransactionalId;
    }

    /// <summary>
    /// The metadata a value describes (epoch history reset: last epoch -1, no pending state).
    /// Throws <see cref="KafkaProtocolException"/> for a value this broker cannot read: unlike an
    /// unknown key, it cannot be skipped without forgetting the id's state.
    /// </summary>
    public static TransactionMetadata DecodeValue(string transactionalId, ReadOnlyMemory<byte> value)
    {
        if (value.Length < 2) throw new KafkaProtocolException($"Transaction state value of {transactionalId} is {value.Length} bytes.");
        var version = BinaryPrimitives.ReadInt16BigEndian(value.Span);
        if (version is < TransactionLogValue.LowestSupportedVersion or > TransactionLogValue.HighestSupportedVersion)
            throw new KafkaProtocolException($"Transaction state value of {transactionalId} has version {version}.");
        var reader = new KafkaReader(value[2..]);
        var v = new TransactionLogValue();
        v.Read(ref reader, version);
        if (!TransactionStates.TryFromId(v.TransactionStatus, out var state))
            throw new KafkaProtocolException($"Transaction state value of {transactionalId} has status {v.TransactionStatus}.");
        var metadata = new TransactionMetadata(transactionalId, v.ProducerId, v.PreviousProducerId, v.NextProducerId, v.ProducerEpoch,
            TransactionMetadata.NoProducerEpoch, v.TransactionTimeoutMs, state, v.TransactionStartTimestampMs, v.TransactionLastUpdateTimestampMs,
            v.ClientTransactionVersion);
        if (state != TransactionState.Empty && v.TransactionPartitions is { } partitions)
            foreach (var topic in partitions)
                foreach (var p in topic.PartitionIds)
                    metadata.Partitions.Add(new TopicPartition(topic.Topic, p));
        return metadata;
    }
}
