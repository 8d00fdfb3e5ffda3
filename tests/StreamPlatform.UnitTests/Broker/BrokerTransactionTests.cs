using Google.Protobuf;
using StreamPlatform.Broker.Services;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Broker.Transactions;
using StreamPlatform.Protos.Grpc.Broker;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.Protos.Records;
using static StreamPlatform.UnitTests.Storage.ProducerBatches;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;
using FetchRequest = StreamPlatform.Protos.Grpc.Broker.FetchRequest;
using FetchResponse = StreamPlatform.Protos.Grpc.Broker.FetchResponse;
using ListOffsetsRequest = StreamPlatform.Protos.Grpc.Broker.ListOffsetsRequest;
using ProduceRequest = StreamPlatform.Protos.Grpc.Broker.ProduceRequest;
using ProduceResponse = StreamPlatform.Protos.Grpc.Broker.ProduceResponse;

namespace StreamPlatform.UnitTests.Broker;

/// <summary>The broker's transactional data plane: idempotent produce, read_committed fetch and ListOffsets, WriteTxnMarkers, DescribeProducers, KIP-890 verification.</summary>
public sealed class BrokerTransactionTests : IAsyncDisposable
{
    private readonly List<(TopicPartition Partition, long ProducerId, bool Committed, long Offset)> _completed = [];
    private readonly Verifier _verifier = new();
    private readonly TestBroker _broker;

    public BrokerTransactionTests()
    {
        _broker = new TestBroker(_verifier, [new Observer(_completed)]);
        _broker.Publish(TestBroker.Topic("a", [TestBroker.Me, TestBroker.Me, 2]));
    }

    public ValueTask DisposeAsync() => _broker.DisposeAsync();

    /// <summary>The transaction coordinator's side, as this broker sees it (the coordinator itself is another branch's).</summary>
    private sealed class Verifier : ITransactionVerifier
    {
        public short Answer { get; set; }
        public List<(string TransactionalId, long ProducerId, short Epoch, TopicPartition Partition, bool AddPartition)> Calls { get; } = [];
        public TaskCompletionSource? Gate { get; set; }

        public async ValueTask<short> VerifyAsync(string transactionalId, long producerId, short producerEpoch, TopicPartition partition, bool addPartition, CancellationToken cancellationToken)
        {
            lock (Calls) Calls.Add((transactionalId, producerId, producerEpoch, partition, addPartition));
            if (Gate is { } gate) await gate.Task.WaitAsync(cancellationToken);
            return Answer;
        }
    }

    private sealed class Observer(List<(TopicPartition, long, bool, long)> completed) : ITransactionMarkerObserver
    {
        public void OnTransactionCompleted(TopicPartition partition, long producerId, bool committed, long markerOffset)
        {
            lock (completed) completed.Add((partition, producerId, committed, markerOffset));
        }
    }

    private async Task<PartitionProduceResult> Produce(int partition, byte[] records, string transactionalId = "", int apiVersion = 11, int acks = -1)
        => Assert.Single((await _broker.Service.ProduceAsync(new ProduceRequest
        {
            Acks = acks, TimeoutMs = 1000, TransactionalId = transactionalId, ApiVersion = apiVersion,
            Partitions = { new PartitionProduce { Topic = "a", Partition = partition, Records = ByteString.CopyFrom(records) } },
        }, default)).Results);

    private Task<FetchResponse> Fetch(int isolationLevel, long offset, int partition = 0)
        => _broker.Service.FetchAsync(new FetchRequest
        {
            MaxWaitMs = 0, MinBytes = 0, MaxBytes = 1 << 20, IsolationLevel = isolationLevel, ReplicaId = -1,
            Partitions = { new PartitionFetch { Topic = "a", Partition = partition, FetchOffset = offset, PartitionMaxBytes = 1 << 20, CurrentLeaderEpoch = -1 } },
        }, default);

    private Task<WriteTxnMarkersResponse> Markers(long producerId, short epoch, bool commit, int coordinatorEpoch, params (string Topic, int Partition)[] partitions)
    {
        var marker = new WriteTxnMarkersRequest.WritableTxnMarker { ProducerId = producerId, ProducerEpoch = epoch, TransactionResult = commit, CoordinatorEpoch = coordinatorEpoch };
        foreach (var g in partitions.GroupBy(p => p.Topic))
            marker.Topics.Add(new WriteTxnMarkersRequest.WritableTxnMarkerTopic { Name = g.Key, PartitionIndexes = [.. g.Select(p => p.Partition)] });
        return _broker.Markers.WriteAsync(new WriteTxnMarkersRequest { Markers = { marker } }, default);
    }

    private static List<(int Partition, short Error)> Errors(WriteTxnMarkersResponse r)
        => [.. r.Markers.SelectMany(m => m.Topics).SelectMany(t => t.Partitions).Select(p => (p.PartitionIndex, p.ErrorCode))];

    [Fact]
    public async Task A_retried_idempotent_produce_gets_the_original_offset_and_a_gap_is_out_of_order()
    {
        Assert.Equal(0, (await Produce(0, Data(1, 1, 0, records: 3))).BaseOffset);
        Assert.Equal(3, (await Produce(0, Data(1, 1, 3))).BaseOffset);
        var retried = await Produce(0, Data(1, 1, 0, records: 3));
        Assert.Equal((0, 0L), (retried.ErrorCode, retried.BaseOffset));
        var gap = await Produce(0, Data(1, 1, 9));
        Assert.Equal((ErrorCodes.OutOfOrderSequenceNumber, -1L), ((short)gap.ErrorCode, gap.BaseOffset));
        Assert.Equal(ErrorCodes.InvalidProducerEpoch, (short)(await Produce(0, Data(1, 0, 4))).ErrorCode);
        Assert.Equal(4, _broker.Log("a", 0).LogEndOffset);
    }

    [Fact]
    public async Task Read_committed_stops_at_the_lso_and_lists_aborted_transactions_read_uncommitted_reads_on()
    {
        await Produce(0, TestBatches0("plain")); // 0
        await Produce(0, Data(1, 0, 0, records: 2, transactional: true)); // 1-2
        await Produce(0, Data(2, 0, 0, transactional: true)); // 3
        var uncommitted = Assert.Single((await Fetch(0, 0)).Results);
        var committed = Assert.Single((await Fetch(1, 0)).Results);
        Assert.Equal((4L, 1L), (uncommitted.HighWatermark, uncommitted.LastStableOffset));
        Assert.Equal((4L, 1L), (committed.HighWatermark, committed.LastStableOffset));
        Assert.Equal(4, ReadCommittedNext(uncommitted.Records));
        Assert.Equal(1, ReadCommittedNext(committed.Records)); // only the plain batch
        Assert.Empty(committed.AbortedTransactions);

        Assert.Equal([(0, (short)0)], Errors(await Markers(1, 0, commit: false, 0, ("a", 0)))); // 4: abort producer 1
        committed = Assert.Single((await Fetch(1, 0)).Results);
        Assert.Equal(3, committed.LastStableOffset); // producer 2 still open at 3
        Assert.Equal(3, ReadCommittedNext(committed.Records));
        Assert.Equal((1L, 1L), Assert.Single(committed.AbortedTransactions) is var a ? (a.ProducerId, a.FirstOffset) : default);

        Assert.Equal([(0, (short)0)], Errors(await Markers(2, 0, commit: true, 0, ("a", 0)))); // 5
        committed = Assert.Single((await Fetch(1, 1)).Results);
        Assert.Equal(6, committed.LastStableOffset);
        Assert.Equal(6, ReadCommittedNext(committed.Records));
        Assert.Equal([1L], committed.AbortedTransactions.Select(t => t.ProducerId));
        // From past the aborted transaction's marker: nothing to drop.
        Assert.Empty(Assert.Single((await Fetch(1, 5)).Results).AbortedTransactions);
        Assert.Empty(Assert.Single((await Fetch(0, 0)).Results).AbortedTransactions); // read_uncommitted never lists them
    }

    private static byte[] TestBatches0(string value) => Storage.TestBatches.Build(T0, value);

    private static long ReadCommittedNext(ByteString records) => records.IsEmpty ? -1 : ReadCommitted.NextOffsetAfter(records.Span);

    [Fact]
    public async Task A_read_committed_long_poll_wakes_when_a_marker_moves_the_lso()
    {
        await Produce(0, Data(1, 0, 0, transactional: true));
        var poll = _broker.Service.FetchAsync(new FetchRequest
        {
            MaxWaitMs = 60_000, MinBytes = 1, MaxBytes = 1 << 20, IsolationLevel = 1, ReplicaId = -1,
            Partitions = { new PartitionFetch { Topic = "a", Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20, CurrentLeaderEpoch = -1 } },
        }, default);
        await Task.Delay(50);
        Assert.False(poll.IsCompleted);
        await Markers(1, 0, commit: true, 0, ("a", 0));
        var result = Assert.Single((await poll.WaitAsync(TimeSpan.FromSeconds(10))).Results);
        Assert.Equal(2, result.LastStableOffset);
        Assert.Equal(2, ReadCommittedNext(result.Records));
    }

    [Fact]
    public async Task List_offsets_latest_is_the_lso_for_read_committed()
    {
        await Produce(0, TestBatches0("plain"));
        await Produce(0, Data(1, 0, 0, transactional: true, timestampMs: T0 + 1));
        ListOffsetsRequest Request(int isolation, long timestamp) => new()
        {
            IsolationLevel = isolation,
            Partitions = { new PartitionListOffsets { Topic = "a", Partition = 0, Timestamp = timestamp, CurrentLeaderEpoch = -1 } },
        };
        Assert.Equal(2, Assert.Single(_broker.Service.ListOffsets(Request(0, -1)).Results).Offset);
        Assert.Equal(1, Assert.Single(_broker.Service.ListOffsets(Request(1, -1)).Results).Offset);
        // A timestamp whose offset is not stable yet is not found under read_committed.
        // The transactional batch's timestamp is T0 + 1: found under read_uncommitted, not under read_committed (not stable yet).
        Assert.Equal(1, Assert.Single(_broker.Service.ListOffsets(Request(0, T0 + 1)).Results).Offset);
        Assert.Equal(-1, Assert.Single(_broker.Service.ListOffsets(Request(1, T0 + 1)).Results).Offset);
    }

    [Fact]
    public async Task Write_txn_markers_answers_each_partition_and_tells_observers_once_committed()
    {
        await Produce(0, Data(7, 2, 0, transactional: true));
        await Produce(1, Data(7, 2, 0, transactional: true));
        var response = await Markers(7, 2, commit: true, 5, ("a", 0), ("a", 1), ("a", 2), ("nope", 0));
        Assert.Equal([(0, (short)0), (1, (short)0), (2, ErrorCodes.NotLeaderOrFollower), (0, ErrorCodes.UnknownTopicOrPartition)], Errors(response));
        Assert.Equal(7, response.Markers[0].ProducerId);
        Assert.Equal([(new TopicPartition("a", 0), 7L, true, 1L), (new TopicPartition("a", 1), 7L, true, 1L)], _completed.OrderBy(c => c.Partition.Partition));
        var log = _broker.Log("a", 0);
        Assert.False(log.ProducerState.HasOngoingTransaction(7));
        var batch = log.Read(1, 1 << 20).ToArray();
        var header = new RecordBatchHeader(batch);
        Assert.True(header.IsControl && header.IsTransactional);
        Assert.Equal((7L, (short)2), (header.ProducerId, header.ProducerEpoch));
        Assert.True(ProducerBatch.TryReadMarker(batch, out var marker));
        Assert.Equal((ControlRecordType.Commit, 5), (marker.Type, marker.CoordinatorEpoch));
    }

    [Fact]
    public async Task Write_txn_markers_with_stale_epochs_are_refused_and_observers_not_told()
    {
        await Produce(0, Data(7, 3, 0, transactional: true));
        Assert.Equal([(0, ErrorCodes.InvalidProducerEpoch)], Errors(await Markers(7, 2, commit: false, 5, ("a", 0))));
        Assert.Equal([(0, (short)0)], Errors(await Markers(7, 3, commit: false, 5, ("a", 0))));
        Assert.Equal([(0, ErrorCodes.TransactionCoordinatorFenced)], Errors(await Markers(7, 3, commit: false, 4, ("a", 0))));
        Assert.Single(_completed);
    }

    [Fact]
    public async Task Describe_producers_lists_the_active_producers_of_led_partitions()
    {
        await Produce(0, Data(1, 4, 0, records: 3));
        await Produce(0, Data(2, 0, 0, transactional: true, timestampMs: T0 + 5));
        var response = ProducerDescriber.Describe(_broker.Replicas, new DescribeProducersRequest
        {
            Topics = { new DescribeProducersRequest.TopicRequest { Name = "a", PartitionIndexes = [0, 2] }, new DescribeProducersRequest.TopicRequest { Name = "b", PartitionIndexes = [0] } },
        });
        var p0 = response.Topics[0].Partitions[0];
        Assert.Equal(0, p0.ErrorCode);
        Assert.Equal([(1L, 4, 2, T0, -1, -1L), (2L, 0, 0, T0 + 5, -1, 3L)],
            p0.ActiveProducers.Select(p => (p.ProducerId, p.ProducerEpoch, p.LastSequence, p.LastTimestamp, p.CoordinatorEpoch, p.CurrentTxnStartOffset)));
        Assert.Equal(ErrorCodes.NotLeaderOrFollower, response.Topics[0].Partitions[1].ErrorCode);
        Assert.Equal(ErrorCodes.UnknownTopicOrPartition, response.Topics[1].Partitions[0].ErrorCode);
    }

    [Fact]
    public async Task The_first_transactional_batch_on_a_partition_is_verified_and_refused_when_not_added()
    {
        _verifier.Answer = ErrorCodes.InvalidTxnState;
        var refused = await Produce(0, Data(5, 1, 0, transactional: true), transactionalId: "tx", apiVersion: 11);
        Assert.Equal(ErrorCodes.InvalidTxnState, (short)refused.ErrorCode);
        Assert.Equal(0, _broker.Log("a", 0).LogEndOffset);
        Assert.Equal(("tx", 5L, (short)1, new TopicPartition("a", 0), false), Assert.Single(_verifier.Calls));

        _verifier.Answer = 0;
        Assert.Equal(0, (await Produce(0, Data(5, 1, 0, transactional: true), transactionalId: "tx", apiVersion: 12)).ErrorCode);
        Assert.True(_verifier.Calls[^1].AddPartition);
        // Ongoing now: no more questions for this partition.
        Assert.Equal(0, (await Produce(0, Data(5, 1, 1, transactional: true), transactionalId: "tx")).ErrorCode);
        Assert.Equal(2, _verifier.Calls.Count);
        // Retriable coordinator trouble reaches the producer as NOT_ENOUGH_REPLICAS, as Kafka answers.
        _verifier.Answer = ErrorCodes.CoordinatorNotAvailable;
        Assert.Equal(ErrorCodes.NotEnoughReplicas, (short)(await Produce(1, Data(5, 1, 0, transactional: true), transactionalId: "tx")).ErrorCode);
        // Non-transactional requests are never verified.
        Assert.Equal(0, (await Produce(1, Data(6, 0, 0), transactionalId: "")).ErrorCode);
        Assert.Equal(3, _verifier.Calls.Count);
    }

    [Fact]
    public async Task An_abort_while_the_coordinator_answers_voids_the_verification()
    {
        await Produce(0, Data(5, 1, 0, transactional: true)); // no transactional id: not verified, starts a transaction
        _verifier.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await Markers(5, 1, commit: false, 0, ("a", 0));
        var pending = Produce(0, Data(5, 1, 1, transactional: true), transactionalId: "tx");
        await Task.Delay(20);
        // The coordinator aborts (e.g. a timeout) before its verification answer arrives.
        await Markers(5, 1, commit: false, 0, ("a", 0));
        _verifier.Gate.SetResult();
        Assert.Equal(ErrorCodes.InvalidTxnState, (short)(await pending).ErrorCode);
        Assert.False(_broker.Log("a", 0).ProducerState.HasOngoingTransaction(5));
    }

    [Fact]
    public async Task A_produce_waiting_on_its_verification_appends_nothing_until_the_coordinator_answers()
    {
        _verifier.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var first = _broker.Service.ProduceInOrderAsync(new ProduceRequest
        {
            Acks = 1, TimeoutMs = 1000, TransactionalId = "tx",
            Partitions = { new PartitionProduce { Topic = "a", Partition = 0, Records = ByteString.CopyFrom(Data(5, 1, 0, transactional: true)) } },
        });
        await Task.Delay(20);
        Assert.False(first.IsCompleted);
        Assert.Equal(0, _broker.Log("a", 0).LogEndOffset);
        _verifier.Gate.SetResult();
        var answer = Assert.Single((await first).Results);
        Assert.Equal((0, 0L), (answer.ErrorCode, answer.BaseOffset));
    }

    [Fact]
    public async Task A_produce_stream_holds_later_messages_behind_a_verification_so_appends_keep_the_stream_order()
    {
        _verifier.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        PooledProduceStreamRequest Message(long id, string transactionalId, byte[] records)
        {
            var request = new ProduceStreamRequest
            {
                RequestId = id,
                Request = new ProduceRequest { Acks = 1, TimeoutMs = 1000, TransactionalId = transactionalId, Partitions = { new PartitionProduce { Topic = "a", Partition = 0, Records = ByteString.CopyFrom(records) } } },
            };
            return PooledProduceStreamRequest.Parse(new System.Buffers.ReadOnlySequence<byte>(request.ToByteArray()), System.Buffers.ArrayPool<byte>.Shared);
        }
        var writer = new ListWriter();
        var stream = _broker.Service.ProduceStreamAsync(new ListReader([
            Message(1, "tx", Data(5, 1, 0, transactional: true)), // waits for its coordinator
            Message(2, "", Data(6, 0, 0)), // behind it on the same stream
        ]), writer, default);
        await Task.Delay(50);
        Assert.Equal(0, _broker.Log("a", 0).LogEndOffset); // the second message did not overtake the first
        _verifier.Gate.SetResult();
        await stream.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([(1L, 0L), (2L, 1L)], writer.Written.Select(w => (w.RequestId, Assert.Single(w.Response.Results).BaseOffset)));
    }
}
