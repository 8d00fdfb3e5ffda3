using BenchmarkDotNet.Attributes;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.Benchmarks.Micro;

/// <summary>
/// The produce path's validation (Kafka client rules, CRC, record walk) of one 100-record batch
/// of 100-byte values, uncompressed and lz4 (which must be decompressed to walk the records).
/// </summary>
public class RecordBatchValidatorBenchmarks
{
    private byte[] _uncompressed = [];
    private byte[] _lz4 = [];
    private readonly RecordBatchValidationOptions _options = new();

    [GlobalSetup]
    public void Setup()
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        _uncompressed = Checked(BenchData.Batch(100, 100, CompressionType.None, now));
        _lz4 = Checked(BenchData.Batch(100, 100, CompressionType.Lz4, now));
    }

    private byte[] Checked(byte[] batch)
    {
        var check = RecordBatchValidator.Validate(batch, _options);
        if (!check.IsValid || check.RecordCount != 100)
            throw new InvalidOperationException($"Benchmark batch is invalid: {check.ErrorCode} {check.Message}");
        return batch;
    }

    [Benchmark]
    [AllocationBudget(0, Reason = "the produce path must not allocate per record or per batch when uncompressed")]
    public int Validate100RecordsUncompressed() => RecordBatchValidator.Validate(_uncompressed, _options).RecordCount;

    [Benchmark]
    [AllocationBudget(128, Reason = "40 B measured, per batch, not per record: the pooled buffer writer (the frame is decoded block by block, buffers come from DecompressionMemory)")]
    public int Validate100RecordsLz4() => RecordBatchValidator.Validate(_lz4, _options).RecordCount;
}
