using System.Text;
using Microsoft.Extensions.Time.Testing;
using StreamPlatform.Broker.Storage;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.UnitTests.Storage;

/// <summary>
/// Compaction of a log with transactions (e.g. __consumer_offsets with TxnOffsetCommit): an
/// aborted transaction's records are removed and never remove older values (open ones are past
/// the last stable offset, where cleaning stops), a committed one's compact as usual; a marker stays while its
/// transaction has data in the log and goes once it has none and is older than delete.retention.ms.
/// </summary>
public sealed class TransactionalCompactionTests : IDisposable
{
    private const long T0 = 1_700_000_000_000;
    private const long OneDayMs = 86_400_000;
    private readonly TempDir _dir = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(T0));

    public void Dispose() => _dir.Dispose();

    private static readonly LogConfig Config = new()
    {
        Compacted = true, DeleteEnabled = false, SegmentBytes = 64 * 1024, SegmentMs = 3_600_000, IndexIntervalBytes = 1024,
        DeleteRetentionMs = OneDayMs, FileDeleteDelayMs = 0,
    };

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private static void Append(PartitionLog log, ReadOnlyMemory<byte> batch) => Assert.Equal(0, log.Append(batch).ErrorCode);

    private byte[] Batch(long producerId, params (string Key, string Value)[] records)
    {
        using var builder = new RecordBatchBuilder();
        if (producerId >= 0)
        {
            builder.IsTransactional = true;
            builder.ProducerId = producerId;
            builder.ProducerEpoch = 0;
        }
        foreach (var (k, v) in records) builder.Append(NowMs, Encoding.UTF8.GetBytes(k), Encoding.UTF8.GetBytes(v));
        return builder.ToArray();
    }

    private byte[] Marker(long producerId, bool commit)
    {
        using var writer = new PooledBufferWriter(128);
        RecordBatchBuilder.BuildControlBatch(writer, commit ? ControlRecordType.Commit : ControlRecordType.Abort, producerId, 0, 0, NowMs);
        return writer.WrittenMemory.ToArray();
    }

    /// <summary>Every batch's records: data as "key=value", markers as "COMMIT(pid)"/"ABORT(pid)".</summary>
    private static List<string> Contents(PartitionLog log)
    {
        var all = new List<string>();
        var offset = log.LogStartOffset;
        while (offset < log.LogEndOffset)
        {
            var read = log.Read(offset, 1 << 20);
            Assert.Equal(0, read.ErrorCode);
            if (read.Length == 0) break;
            foreach (var batch in RecordBatchReader.ReadAll(read.ToArray()))
            {
                using (batch)
                {
                    if (batch.IsControl) all.Add($"{batch.ControlRecords()[0].Type.ToString().ToUpperInvariant()}({batch.ProducerId})");
                    else foreach (var r in batch.Records) all.Add($"{Encoding.UTF8.GetString(r.Key!.Value.Span)}={Encoding.UTF8.GetString(r.Value!.Value.Span)}");
                    offset = batch.LastOffset + 1;
                }
            }
        }
        return all;
    }

    private static long[] AbortedProducers(PartitionLog log) => [.. log.AbortedTransactions(log.LogStartOffset, log.LogEndOffset).Select(e => e.ProducerId)];

    private void Roll(PartitionLog log, string filler)
    {
        _time.Advance(TimeSpan.FromHours(2));
        Append(log, Batch(-1, ("filler", filler)));
    }

    [Fact]
    public void Aborted_data_goes_and_never_supersedes_committed_compacts_and_markers_go_once_their_data_is_gone()
    {
        using var log = _dir.Open(Config, _time);
        Append(log, Batch(-1, ("k", "A")));          // plain
        Append(log, Batch(1, ("k", "B")));           // aborted below
        Append(log, Marker(1, commit: false));
        Append(log, Batch(-1, ("j", "X")));          // plain, then a committed transaction supersedes it
        Append(log, Batch(3, ("j", "Y"), ("m", "M1")));
        Append(log, Marker(3, commit: true));
        Append(log, Batch(-1, ("m", "M2")));         // supersedes M1: P3 still has j=Y left
        Roll(log, "f1");

        log.Clean(offsetMapBytesMax: 1 << 20);
        Assert.Equal(["k=A", "ABORT(1)", "j=Y", "COMMIT(3)", "m=M2", "filler=f1"], Contents(log));
        // The aborted transaction's index entry stays with its marker (read_committed readers).
        Assert.Equal([1L], AbortedProducers(log));

        // Past delete.retention.ms the ABORT marker, whose data is gone, goes; COMMIT(3) still has j=Y.
        _time.Advance(TimeSpan.FromMilliseconds(OneDayMs + 1));
        Roll(log, "f2");
        log.Clean(offsetMapBytesMax: 1 << 20);
        Assert.Equal(["k=A", "j=Y", "COMMIT(3)", "m=M2", "filler=f1", "filler=f2"], Contents(log));
        Assert.Empty(AbortedProducers(log)); // its entry went with the marker

        // Once the committed transaction's data is superseded, its (old, already cleaned once) marker goes too.
        Append(log, Batch(-1, ("j", "Z")));
        Roll(log, "f3");
        log.Clean(offsetMapBytesMax: 1 << 20);
        Assert.Equal(["k=A", "m=M2", "filler=f2", "j=Z", "filler=f3"], Contents(log));
    }

    [Fact]
    public void Past_the_index_limit_transactions_count_as_undecided_and_keep_their_markers()
    {
        var transactions = new CleanerTransactions(transactionsMax: 1);
        var data1 = WithBase(Batch(1, ("k", "B")), 0);
        var marker1 = WithBase(Marker(1, commit: false), 1);
        var data2 = WithBase(Batch(2, ("k", "C")), 2);
        var marker2 = WithBase(Marker(2, commit: true), 3);
        Assert.True(transactions.Visit(data1));
        Assert.True(transactions.Visit(marker1));
        Assert.True(transactions.Visit(data2));
        Assert.False(transactions.Visit(marker2)); // full
        Assert.True(transactions.Full);
        Assert.Equal(CleanerTransactions.Outcome.Aborted, transactions.OutcomeOf(1, 0));
        Assert.Equal(CleanerTransactions.Outcome.Undecided, transactions.OutcomeOf(2, 2));
        Assert.True(transactions.NoDataLeft(1, 1));
        Assert.False(transactions.NoDataLeft(2, 3));
        transactions.MarkKept(1, 0);
        Assert.False(transactions.NoDataLeft(1, 1));
    }

    /// <summary>The batch with its base offset set (the CRC does not cover it).</summary>
    private static byte[] WithBase(byte[] batch, long baseOffset)
    {
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(batch, baseOffset);
        return batch;
    }
}
