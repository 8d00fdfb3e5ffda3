using Confluent.Kafka;

namespace StreamPlatform.EosApps;

/// <summary>
/// The consume-transform-produce loop of Confluent's exactly-once examples: a read_committed
/// consumer in a group (static membership, so a restarted instance takes its place at once),
/// a transactional producer, and per batch BeginTransaction, Produce, SendOffsetsToTransaction,
/// CommitTransaction. A failed transaction is aborted and the consumer rewound to the group's
/// committed offsets; a fatal error (fenced) ends the process with exit code 3.
/// Progress lines on stdout: "READY", "PRODUCED total" (a batch is written in the open
/// transaction, which stays open PAUSE_MS before it commits), "COPIED total", "ABORTED reason",
/// "FATAL reason".
/// </summary>
public static class CopyApp
{
    public sealed record Options(string Bootstrap, string Input, string Output, string Group, string TransactionalId,
        int RecordsPerTransaction, int PauseMs);

    private static readonly TimeSpan OperationTimeout = TimeSpan.FromSeconds(60);

    /// <summary>A batch is sent once it has RecordsPerTransaction records or nothing new came for this long.</summary>
    private static readonly TimeSpan BatchWait = TimeSpan.FromMilliseconds(300);

    public static int Run(Options o)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(o.RecordsPerTransaction, 1);
        var consumerConfig = new ConsumerConfig
        {
            BootstrapServers = o.Bootstrap,
            GroupId = o.Group,
            GroupInstanceId = o.TransactionalId,
            SessionTimeoutMs = 6000,
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            IsolationLevel = IsolationLevel.ReadCommitted,
        };
        var producerConfig = new ProducerConfig
        {
            BootstrapServers = o.Bootstrap,
            TransactionalId = o.TransactionalId,
            EnableIdempotence = true,
            Acks = Acks.All,
            LingerMs = 5,
            TransactionTimeoutMs = 20000,
        };
        using var consumer = new ConsumerBuilder<byte[], byte[]>(consumerConfig)
            .SetErrorHandler((_, e) => Console.WriteLine($"CONSUMER-ERROR {e.Code} {e.Reason}"))
            .Build();
        using var producer = new ProducerBuilder<byte[], byte[]>(producerConfig)
            .SetErrorHandler((_, e) => Console.WriteLine($"PRODUCER-ERROR {e.Code} fatal={e.IsFatal} {e.Reason}"))
            .Build();

        // Fences any earlier instance with this transactional.id and aborts its open transaction.
        producer.InitTransactions(OperationTimeout);
        consumer.Subscribe(o.Input);
        Console.WriteLine("READY");

        long copied = 0;
        var batch = new List<ConsumeResult<byte[], byte[]>>(o.RecordsPerTransaction);
        while (true)
        {
            batch.Clear();
            var waitUntil = DateTime.UtcNow + BatchWait;
            while (batch.Count < o.RecordsPerTransaction && DateTime.UtcNow < waitUntil)
            {
                var r = consumer.Consume(TimeSpan.FromMilliseconds(100));
                if (r is null || r.IsPartitionEOF)
                    continue;
                batch.Add(r);
            }
            if (batch.Count == 0)
                continue;

            try
            {
                producer.BeginTransaction();
                foreach (var r in batch)
                {
                    producer.Produce(new TopicPartition(o.Output, r.Partition),
                        new Message<byte[], byte[]> { Key = r.Message.Key, Value = r.Message.Value });
                }
                Assert(producer.Flush(OperationTimeout) == 0, "records of the transaction still undelivered");
                // The transaction is open with its records written: the work a real application
                // would do here takes PAUSE_MS (a kill now leaves an open transaction behind).
                Console.WriteLine($"PRODUCED {copied + batch.Count}");
                if (o.PauseMs > 0)
                    Thread.Sleep(o.PauseMs);
                var next = batch.GroupBy(r => r.TopicPartition)
                    .Select(g => new TopicPartitionOffset(g.Key, g.Max(r => r.Offset.Value) + 1));
                producer.SendOffsetsToTransaction(next, consumer.ConsumerGroupMetadata, OperationTimeout);
                CommitWithRetries(producer);
                copied += batch.Count;
                Console.WriteLine($"COPIED {copied}");
            }
            catch (KafkaException e) when (e is KafkaTxnRequiresAbortException || (!e.Error.IsFatal && e is not KafkaRetriableException))
            {
                Console.WriteLine($"ABORTED {e.Error.Code} {e.Message}");
                producer.AbortTransaction(OperationTimeout);
                Rewind(consumer);
            }
            catch (KafkaException e) when (e.Error.IsFatal)
            {
                Console.WriteLine($"FATAL {e.Error.Code} {e.Message}");
                return 3;
            }
        }
    }

    private static void Assert(bool condition, string what)
    {
        if (!condition)
            throw new InvalidOperationException(what);
    }

    /// <summary>Commit again while librdkafka says the outcome is not known yet (Confluent's documented pattern).</summary>
    private static void CommitWithRetries(IProducer<byte[], byte[]> producer)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                producer.CommitTransaction(OperationTimeout);
                return;
            }
            catch (KafkaRetriableException e) when (attempt < 10)
            {
                Console.WriteLine($"COMMIT-RETRY {e.Error.Code} {e.Message}");
            }
        }
    }

    /// <summary>After an abort, the records of the aborted batch must be read again: back to the group's committed offsets.</summary>
    private static void Rewind(IConsumer<byte[], byte[]> consumer)
    {
        var assignment = consumer.Assignment;
        if (assignment.Count == 0)
            return;
        foreach (var c in consumer.Committed(assignment, OperationTimeout))
            consumer.Seek(new TopicPartitionOffset(c.TopicPartition, c.Offset == Offset.Unset ? Offset.Beginning : c.Offset));
    }
}
