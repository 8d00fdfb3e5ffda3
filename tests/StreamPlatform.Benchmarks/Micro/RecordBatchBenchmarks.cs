using BenchmarkDotNet.Attributes;
using StreamPlatform.Protos.Records;

namespace StreamPlatform.Benchmarks.Micro;

/// <summary>
/// The produce path's validation (Kafka client rules, CRC, record walk) of one 100-record batch
/// of 100-byte values, uncompressed and lz4 (which must be decompressed to walk the records).
/// </summary>
public class RecordBatchValidatorBenchmarks
{
    private byte[] _batch = [];
    private readonly RecordBatchValidationOptions _options = new();

    [Params(CompressionType.None, CompressionType.Lz4)]
    public CompressionType Compression { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _batch = BenchData.Batch(100, 100, Compression, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var check = RecordBatchValidator.Validate(_batch, _options);
        if (!check.IsValid)
            throw new InvalidOperationException($"Benchmark batch is invalid: {check.ErrorCode} {check.Message}");
    }

    [Benchmark]
    [AllocationBudget(512, Reason = "uncompressed: nothing per record; lz4: decompression into a pooled buffer")]
    public int Validate100Records() => RecordBatchValidator.Validate(_batch, _options).RecordCount;
}
