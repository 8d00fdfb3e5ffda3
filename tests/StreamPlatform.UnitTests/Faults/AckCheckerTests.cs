using StreamPlatform.Faults;

namespace StreamPlatform.UnitTests.Faults;

/// <summary>
/// The checks the replication fault test and the fault tool rely on: each kind of damage a
/// failover could do to a log is caught, and what acks=all without idempotence may legally do
/// (duplicates, unacknowledged records present) is not reported as a failure.
/// </summary>
public class AckCheckerTests
{
    private const int Partitions = 2;

    // Records 0..5: even ones in partition 0, odd ones in partition 1 (seq % partitions).
    private static readonly AckedRecord[] Acked =
    [
        new(0, 0, 0), new(2, 0, 1), new(4, 0, 2),
        new(1, 1, 0), new(3, 1, 1), new(5, 1, 2),
    ];

    private static ConsumedRecord Read(int partition, long offset, long seq, bool intact = true) => new(partition, offset, seq, intact);

    private static List<ConsumedRecord> IntactLog() =>
        [Read(0, 0, 0), Read(0, 1, 2), Read(0, 2, 4), Read(1, 0, 1), Read(1, 1, 3), Read(1, 2, 5)];

    [Fact]
    public void A_log_holding_every_acknowledged_record_at_its_offset_passes()
    {
        var result = AckChecker.Check(Partitions, Acked, IntactLog());
        Assert.True(result.Ok, result.ToString());
        Assert.Equal((6, 6, 0, 0), (result.Acked, result.Consumed, result.Duplicates, result.UnacknowledgedPresent));
    }

    [Fact]
    public void A_missing_acknowledged_record_is_lost()
    {
        var log = IntactLog();
        log.RemoveAll(c => c is { Partition: 1, Offset: 2 });
        var result = AckChecker.Check(Partitions, Acked, log);
        Assert.False(result.Ok);
        Assert.Equal(1, result.Lost.Count);
        Assert.Contains("record 5", result.Lost.Samples[0]);
    }

    [Fact]
    public void Another_record_at_an_acknowledged_offset_is_a_loss()
    {
        // The bug issue 10 starts from: a new leader hands out offset 1 again to a new record.
        var log = IntactLog();
        log[1] = Read(0, 1, 6);
        var result = AckChecker.Check(Partitions, [.. Acked, new AckedRecord(6, 0, 1)], log);
        Assert.Equal(1, result.Lost.Count);
        Assert.Equal(1, result.OffsetsReused.Count);
        Assert.Contains("records 2, 6", result.OffsetsReused.Samples[0]);
    }

    [Fact]
    public void An_acknowledged_record_whose_value_changed_is_a_loss_and_corrupt()
    {
        var log = IntactLog();
        log[2] = Read(0, 2, 4, intact: false);
        var result = AckChecker.Check(Partitions, Acked, log);
        Assert.Equal(1, result.Lost.Count);
        Assert.Equal(1, result.Corrupt.Count);
    }

    [Fact]
    public void An_offset_read_twice_in_one_pass_is_reported()
    {
        var log = IntactLog();
        log.Insert(2, Read(0, 1, 2));
        var result = AckChecker.Check(Partitions, Acked, log);
        Assert.False(result.Ok);
        Assert.Equal(1, result.OffsetsReused.Count);
    }

    [Fact]
    public void A_later_record_acknowledged_below_an_earlier_one_breaks_order()
    {
        AckedRecord[] acked = [new(0, 0, 1), new(2, 0, 0)];
        List<ConsumedRecord> log = [Read(0, 0, 2), Read(0, 1, 0)];
        var result = AckChecker.Check(Partitions, acked, log);
        Assert.True(result.Lost.Count == 0, result.ToString());
        Assert.Equal(1, result.OrderViolations.Count);
    }

    [Fact]
    public void A_record_in_the_wrong_partition_or_with_a_foreign_key_is_corrupt()
    {
        var log = IntactLog();
        log.Add(Read(0, 3, 7)); // 7 was sent to partition 1
        log.Add(Read(1, 3, -1)); // not a key of ours
        var result = AckChecker.Check(Partitions, Acked, log);
        Assert.Equal(2, result.Corrupt.Count);
        Assert.Equal(0, result.Lost.Count);
    }

    [Fact]
    public void Duplicates_from_retries_and_unacknowledged_records_are_counted_but_allowed()
    {
        // Record 4's first attempt was written but its response lost; the retry wrote it again at offset 3 and was acknowledged there.
        AckedRecord[] acked = [new(0, 0, 0), new(2, 0, 1), new(4, 0, 3), new(1, 1, 0)];
        List<ConsumedRecord> log = [Read(0, 0, 0), Read(0, 1, 2), Read(0, 2, 4), Read(0, 3, 4), Read(0, 4, 6), Read(1, 0, 1)];
        var result = AckChecker.Check(Partitions, acked, log);
        Assert.True(result.Ok, result.ToString());
        Assert.Equal(1, result.Duplicates);
        Assert.Equal(1, result.UnacknowledgedPresent); // record 6: its delivery report failed, it is there anyway
    }

    [Fact]
    public void Findings_keep_a_bounded_number_of_samples()
    {
        var acked = Enumerable.Range(0, 100).Select(i => new AckedRecord(i * 2, 0, i)).ToList();
        var result = AckChecker.Check(Partitions, acked, []);
        Assert.Equal(100, result.Lost.Count);
        Assert.Equal(Finding.SamplesMax, result.Lost.Samples.Count);
    }

    [Fact]
    public void Values_are_recognised_only_for_their_own_seed_and_sequence_number()
    {
        var value = FaultRecords.Value(seed: 7, seq: 42, bytes: 100);
        Assert.Equal(42, FaultRecords.SeqOf(FaultRecords.Key(42)));
        Assert.True(FaultRecords.ValueMatches(7, 42, 100, value));
        Assert.False(FaultRecords.ValueMatches(8, 42, 100, value));
        Assert.False(FaultRecords.ValueMatches(7, 43, 100, value));
        Assert.False(FaultRecords.ValueMatches(7, 42, 100, value[..99]));
        Assert.Equal(-1, FaultRecords.SeqOf("x1"u8));
        Assert.Equal(-1, FaultRecords.SeqOf(ReadOnlySpan<byte>.Empty));
    }
}
