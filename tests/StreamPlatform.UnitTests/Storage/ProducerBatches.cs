using System.Text;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.UnitTests.Storage;

/// <summary>Idempotent, transactional and control batches for producer-state tests (RecordBatchBuilder).</summary>
internal static class ProducerBatches
{
    public const long T0 = 1_700_000_000_000;

    public static byte[] Data(long producerId, short epoch, int baseSequence, int records = 1, bool transactional = false, long timestampMs = T0)
    {
        using var b = new RecordBatchBuilder { ProducerId = producerId, ProducerEpoch = epoch, BaseSequence = baseSequence, IsTransactional = transactional };
        for (var i = 0; i < records; i++) b.Append(timestampMs, (byte[]?)null, Encoding.UTF8.GetBytes($"p{producerId}-s{baseSequence}-{i}"));
        return b.ToArray();
    }

    public static byte[] Marker(long producerId, short epoch, ControlRecordType type, int coordinatorEpoch = 0, long timestampMs = T0)
    {
        using var b = new RecordBatchBuilder { ProducerId = producerId, ProducerEpoch = epoch, IsTransactional = true, IsControl = true };
        b.AppendControl(timestampMs, type, coordinatorEpoch);
        return b.ToArray();
    }
}
