using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Broker.Transactions;
using StreamPlatform.Protos.Records;
using static StreamPlatform.UnitTests.Storage.ProducerBatches;
using ErrorCodes = StreamPlatform.Protos.Kafka.Messages.ErrorCodes;

namespace StreamPlatform.UnitTests.Storage;

/// <summary>Idempotent producers on one partition log: de-duplication, sequence and epoch checks, snapshots, recovery, truncation, expiration.</summary>
public sealed class ProducerStateTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static LogAppendResult Ok(LogAppendResult r)
    {
        Assert.True(r.ErrorCode == ErrorCodes.None, $"{r.ErrorCode}: {r.ErrorMessage}");
        return r;
    }

    [Fact]
    public void Each_of_the_last_five_batches_is_answered_with_its_original_offsets_and_not_appended()
    {
        using var log = _dir.Open();
        log.Append(TestBatches.Build(T0, "plain")); // offset 0: no producer id
        var originals = new List<(byte[] Batch, LogAppendResult Result)>();
        for (var i = 0; i < 6; i++)
        {
            var batch = Data(7, 0, i * 2, records: 2);
            originals.Add((batch, Ok(log.Append(batch))));
        }
        var leo = log.LogEndOffset;
        Assert.Equal(13, leo);
        for (var i = 1; i < 6; i++)
        {
            var again = Ok(log.Append(originals[i].Batch));
            Assert.Equal(originals[i].Result.FirstOffset, again.FirstOffset);
            Assert.Equal(originals[i].Result.LastOffset, again.LastOffset);
            Assert.Equal(T0, again.LogAppendTimeMs); // Kafka answers the batch's timestamp
            Assert.Equal(0, again.BatchCount);
            Assert.Equal(leo, log.LogEndOffset);
        }
        // The sixth-newest batch is no longer retained: it is out of sequence, not a duplicate.
        var oldest = log.Append(originals[0].Batch);
        Assert.Equal(ErrorCodes.OutOfOrderSequenceNumber, oldest.ErrorCode);
        Assert.Equal(leo, log.LogEndOffset);
    }

    [Fact]
    public void A_gap_in_sequences_is_out_of_order_and_nothing_is_appended()
    {
        using var log = _dir.Open();
        Ok(log.Append(Data(1, 0, 0, records: 3)));
        var gap = log.Append(Data(1, 0, 4));
        Assert.Equal(ErrorCodes.OutOfOrderSequenceNumber, gap.ErrorCode);
        Assert.Equal(3, log.LogEndOffset);
        // A batch overlapping the last one without matching it exactly is out of order too.
        Assert.Equal(ErrorCodes.OutOfOrderSequenceNumber, log.Append(Data(1, 0, 1, records: 2)).ErrorCode);
        Assert.Equal(3, Ok(log.Append(Data(1, 0, 3))).FirstOffset);
    }

    [Fact]
    public void An_unknown_producer_may_start_at_any_sequence()
    {
        using var log = _dir.Open();
        Assert.Equal(0, Ok(log.Append(Data(5, 3, 42))).FirstOffset);
        Assert.Equal(42, log.ProducerState.Get(5)!.LastSeq);
    }

    [Fact]
    public void Epochs_older_is_invalid_new_must_start_at_zero()
    {
        using var log = _dir.Open();
        Ok(log.Append(Data(1, 2, 0)));
        Assert.Equal(ErrorCodes.InvalidProducerEpoch, log.Append(Data(1, 1, 1)).ErrorCode);
        Assert.Equal(ErrorCodes.OutOfOrderSequenceNumber, log.Append(Data(1, 3, 5)).ErrorCode);
        Ok(log.Append(Data(1, 3, 0)));
        Assert.Equal((short)3, log.ProducerState.Get(1)!.Epoch);
        // The old epoch's batches are forgotten: its retry is now a stale epoch, not a duplicate.
        Assert.Equal(ErrorCodes.InvalidProducerEpoch, log.Append(Data(1, 2, 0)).ErrorCode);
        Assert.Equal(2, log.LogEndOffset);
    }

    [Fact]
    public void Sequences_wrap_from_int_max_to_zero()
    {
        using var log = _dir.Open();
        Ok(log.Append(Data(1, 0, int.MaxValue - 1, records: 3))); // MaxValue-1, MaxValue, 0
        Assert.Equal(0, log.ProducerState.Get(1)!.LastSeq);
        Ok(log.Append(Data(1, 0, 1)));
        Ok(log.Append(Data(1, 0, 2, records: 1)));
        Assert.Equal(0, ProducerBatch.IncrementSequence(int.MaxValue, 1));
        Assert.Equal(int.MaxValue, ProducerBatch.DecrementSequence(0, 1));
        using var log2 = _dir.Open(topic: "u");
        Ok(log2.Append(Data(2, 0, int.MaxValue)));
        Ok(log2.Append(Data(2, 0, 0)));
        Assert.Equal(ErrorCodes.OutOfOrderSequenceNumber, log2.Append(Data(2, 0, 2)).ErrorCode);
    }

    [Fact]
    public void Batches_without_producer_id_skip_every_check()
    {
        using var log = _dir.Open();
        var plain = TestBatches.Build(T0, "a");
        Ok(log.Append(plain));
        Ok(log.Append(plain));
        Assert.Equal(0, log.ProducerState.ProducerCount);
    }

    [Fact]
    public void State_survives_a_clean_restart_with_all_five_batches()
    {
        var batches = Enumerable.Range(0, 5).Select(i => Data(9, 1, i)).ToList();
        using (var log = _dir.Open())
            foreach (var b in batches) Ok(log.Append(b));
        Assert.Single(Directory.GetFiles(_dir.PartitionDir(), "*.snapshot"));
        using var reopened = _dir.Open();
        for (var i = 0; i < 5; i++) Assert.Equal(i, Ok(reopened.Append(batches[i])).FirstOffset);
        Assert.Equal(5, reopened.LogEndOffset);
        Ok(reopened.Append(Data(9, 1, 5)));
    }

    [Fact]
    public void After_an_unclean_shutdown_state_is_the_snapshot_plus_the_surviving_batches()
    {
        var config = new LogConfig { SegmentBytes = 200 };
        int lastSize;
        using (var log = _dir.Open(config))
        {
            for (var i = 0; i < 8; i++) Ok(log.Append(Data(4, 0, i)));
            Assert.True(log.SegmentCount > 2, $"{log.SegmentCount} segments, {log.SizeBytes} bytes");
            lastSize = Data(4, 0, 7).Length;
            log.Close();
        }
        // Crash: no clean marker, the newest snapshot (at close) gone, the last batch torn.
        File.Delete(Path.Combine(_dir.PartitionDir(), PartitionLog.CleanShutdownFile));
        var snapshots = ProducerStateSnapshot.List(_dir.PartitionDir());
        ProducerStateSnapshot.Delete(_dir.PartitionDir(), snapshots[^1]);
        var active = Directory.GetFiles(_dir.PartitionDir(), "*.log").Order().Last();
        using (var f = new FileStream(active, FileMode.Open)) f.SetLength(f.Length - lastSize / 2);
        using var reopened = _dir.Open(config);
        Assert.Equal(7, reopened.LogEndOffset);
        Assert.Equal(6, reopened.ProducerState.Get(4)!.LastSeq);
        Assert.Equal(6, Ok(reopened.Append(Data(4, 0, 6))).FirstOffset); // duplicate of the surviving batch
        Assert.Equal(7, Ok(reopened.Append(Data(4, 0, 7))).FirstOffset); // the torn one, appended again
        Assert.Equal(8, reopened.LogEndOffset);
    }

    [Fact]
    public void A_damaged_snapshot_is_ignored_and_the_log_replayed()
    {
        using (var log = _dir.Open())
        {
            Ok(log.Append(Data(3, 0, 0)));
            Ok(log.Append(Data(3, 0, 1)));
        }
        var snapshot = Path.Combine(_dir.PartitionDir(), ProducerStateSnapshot.FileName(2));
        var bytes = File.ReadAllBytes(snapshot);
        bytes[^1] ^= 0xFF;
        File.WriteAllBytes(snapshot, bytes);
        using var reopened = _dir.Open();
        Assert.False(File.Exists(snapshot));
        Assert.Equal(1, reopened.ProducerState.Get(3)!.LastSeq);
        Assert.Equal(1, Ok(reopened.Append(Data(3, 0, 1))).FirstOffset);
    }

    [Fact]
    public void Truncation_reloads_state_from_the_snapshot_at_or_below_the_new_end()
    {
        var config = new LogConfig { SegmentBytes = 300 };
        using var log = _dir.Open(config);
        log.ReplicatedHighWatermark = true;
        for (var i = 0; i < 8; i++) Ok(log.Append(Data(4, 0, i)));
        log.TruncateTo(5);
        Assert.Equal(5, log.LogEndOffset);
        Assert.Equal(4, log.ProducerState.Get(4)!.LastSeq);
        Assert.All(ProducerStateSnapshot.List(_dir.PartitionDir()), o => Assert.True(o <= 5));
        // Sequence 5 is new again (its batch was truncated), 4 a duplicate.
        Assert.Equal(4, Ok(log.Append(Data(4, 0, 4))).FirstOffset);
        Assert.Equal(5, Ok(log.Append(Data(4, 0, 5))).FirstOffset);
        log.TruncateFullyAndStartAt(20);
        Assert.Equal(0, log.ProducerState.ProducerCount);
        Assert.Empty(ProducerStateSnapshot.List(_dir.PartitionDir()));
    }

    [Fact]
    public void A_follower_builds_the_same_state_as_its_leader()
    {
        using var leader = _dir.Open(topic: "l");
        using var follower = _dir.Open(topic: "f");
        Ok(leader.Append(Data(1, 0, 0, records: 2)));
        Ok(leader.Append(Data(2, 5, 10)));
        Ok(leader.Append(Data(1, 0, 2, transactional: false)));
        Ok(leader.Append(Data(3, 0, 0, transactional: true)));
        Ok(leader.Append(Data(4, 0, 0, transactional: true)));
        Ok(leader.Append(Marker(4, 0, ControlRecordType.Abort, coordinatorEpoch: 2), origin: AppendOrigin.TransactionMarker));
        Ok(follower.AppendAsFollower(leader.Read(0, 1 << 20).ToArray()));
        static string Describe(PartitionLog l) => string.Join(";", l.ProducerState.ActiveProducers().OrderBy(e => e.ProducerId)
            .Select(e => $"{e}/{string.Join(",", e.Batches)}/{e.LastTimestampMs}"));
        Assert.Equal(Describe(leader), Describe(follower));
        Assert.Equal(leader.LastStableOffset, follower.LastStableOffset);
        Assert.Equal(leader.AbortedTransactions(0, 100), follower.AbortedTransactions(0, 100));
    }

    [Fact]
    public void Idle_producers_expire_after_producer_id_expiration_ms_unless_a_transaction_is_open()
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(T0));
        var config = new LogConfig { ProducerIdExpirationMs = 60_000, ProducerIdExpirationCheckIntervalMs = 1 };
        using var log = _dir.Open(config, time);
        Ok(log.Append(Data(1, 0, 0, timestampMs: T0)));
        Ok(log.Append(Data(2, 0, 0, transactional: true, timestampMs: T0)));
        time.Advance(TimeSpan.FromMilliseconds(59_999));
        Assert.Equal(0, log.RemoveExpiredProducers());
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, log.RemoveExpiredProducers());
        Assert.Null(log.ProducerState.Get(1));
        Assert.NotNull(log.ProducerState.Get(2));
        // Forgotten: its next batch is accepted at any sequence, as a new producer's.
        Ok(log.Append(Data(1, 0, 17)));
    }

    [Fact]
    public void Expiration_is_checked_at_most_every_check_interval()
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(T0));
        var config = new LogConfig { ProducerIdExpirationMs = 1000, ProducerIdExpirationCheckIntervalMs = 10_000 };
        using var log = _dir.Open(config, time);
        time.Advance(TimeSpan.FromMilliseconds(10_000));
        Assert.Equal(0, log.RemoveExpiredProducers());
        Ok(log.Append(Data(1, 0, 0, timestampMs: T0)));
        time.Advance(TimeSpan.FromMilliseconds(5000));
        Assert.Equal(0, log.RemoveExpiredProducers()); // too soon after the last check
        time.Advance(TimeSpan.FromMilliseconds(5000));
        Assert.Equal(1, log.RemoveExpiredProducers());
    }

    [Fact]
    public void Producer_id_expiration_comes_from_the_broker_config()
    {
        var config = LogConfig.From(new Dictionary<string, string>(), new Dictionary<string, string> { ["producer.id.expiration.ms"] = "1234" });
        Assert.Equal(1234, config.ProducerIdExpirationMs);
        Assert.Equal(86400000, LogConfig.From(new Dictionary<string, string>()).ProducerIdExpirationMs);
    }

    [Fact]
    public async Task Concurrent_appends_of_the_same_batch_append_it_once()
    {
        using var log = _dir.Open();
        var batch = Data(8, 0, 0, records: 3);
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => log.Append(batch))));
        Assert.All(results, r => Assert.Equal(0, Ok(r).FirstOffset));
        Assert.Equal(3, log.LogEndOffset);
    }
}

/// <summary>The per-partition producer limit (<see cref="ProducerStateManager.ProducersMax"/>), on the manager alone.</summary>
public sealed class ProducerLimitTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ProducerStateManager _state;
    private long _offset;

    public ProducerLimitTests()
    {
        Directory.CreateDirectory(_dir.PartitionDir());
        _state = new ProducerStateManager(_dir.PartitionDir(), new TopicPartition("t", 0), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
    }

    public void Dispose() => _dir.Dispose();

    private ProducerAppendPlan Write(long producerId, bool transactional, long timestampMs, int sequence = 0)
    {
        var plan = new ProducerAppendPlan();
        var batch = new ProducerBatch(producerId, 0, sequence, 0, timestampMs, transactional, false, null, -1);
        if (_state.Prepare(plan, batch, _offset, _offset, timestampMs, AppendOrigin.Client))
        {
            _state.Apply(plan);
            _offset++;
        }
        return plan;
    }

    [Fact]
    public void Beyond_the_limit_the_least_recently_written_idle_producer_is_forgotten()
    {
        for (var pid = 0; pid < ProducerStateManager.ProducersMax; pid++) Write(pid, transactional: pid == 0, T0 + pid);
        Assert.False(Write(ProducerStateManager.ProducersMax, transactional: false, T0 + ProducerStateManager.ProducersMax).Failed);
        Assert.Equal(ProducerStateManager.ProducersMax, _state.ProducerCount);
        Assert.NotNull(_state.Get(0)); // oldest, but its transaction is open
        Assert.Null(_state.Get(1)); // the oldest idle one went
        Assert.NotNull(_state.Get(ProducerStateManager.ProducersMax));
    }

    [Fact]
    public void When_every_tracked_producer_has_a_transaction_open_a_new_one_is_refused()
    {
        for (var pid = 0; pid < ProducerStateManager.ProducersMax; pid++) Write(pid, transactional: true, T0);
        var refused = Write(ProducerStateManager.ProducersMax, transactional: true, T0);
        Assert.Equal(ErrorCodes.ConcurrentTransactions, refused.ErrorCode);
        Assert.Equal(ProducerStateManager.ProducersMax, _state.ProducerCount);
        var known = Write(5, transactional: true, T0, sequence: 1); // known producers go on
        Assert.False(known.Failed);
        Assert.Null(known.Duplicate);
        Assert.Equal(1, _state.Get(5)!.LastSeq);
    }
}
