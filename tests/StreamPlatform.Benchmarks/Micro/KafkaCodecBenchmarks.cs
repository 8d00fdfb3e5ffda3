using BenchmarkDotNet.Attributes;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;

namespace StreamPlatform.Benchmarks.Micro;

/// <summary>
/// Gateway decode path: a ProduceRequest v9 frame (one topic, one partition, a 16 KiB records
/// blob) read with the generated codec, and written back. The records blob is a slice of the
/// frame, so the bytes allocated must not depend on how many records it holds: the two
/// RecordsInBlob values (16 x 1 KiB, 160 x ~95 B) must allocate the same.
/// </summary>
public class ProduceRequestCodecBenchmarks
{
    private const short Version = 9;
    private byte[] _frame = [];
    private byte[] _output = [];
    private RequestHeader _header = new();
    private ProduceRequest _request = new();

    [Params(16, 160)]
    public int RecordsInBlob { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        const int blobBytes = 16 * 1024;
        var valueBytes = (blobBytes - 61) / RecordsInBlob - 8;
        var records = BenchData.Batch(RecordsInBlob, valueBytes);
        _header = new RequestHeader
        {
            RequestApiKey = (short)ApiKey.Produce, RequestApiVersion = Version, CorrelationId = 7, ClientId = "rdkafka",
        };
        _request = new ProduceRequest { Acks = 1, TimeoutMs = 30000 };
        var topic = new ProduceRequest.TopicProduceData { Name = "bench-topic" };
        topic.PartitionData.Add(new ProduceRequest.PartitionProduceData { Index = 3, Records = records });
        _request.TopicData.Add(topic);
        var withPrefix = KafkaFrames.EncodeRequestFrame(_header, _request);
        _frame = withPrefix[KafkaFrames.SizePrefixBytes..];
        _output = new byte[withPrefix.Length];
    }

    [Benchmark]
    [AllocationBudget(512, Reason = "448 B measured: header + request + one topic + one partition objects and their lists; nothing per record")]
    public int ProduceV9Decode()
    {
        var reader = new KafkaReader(_frame);
        var header = KafkaFrames.ReadRequestHeader(ref reader);
        var request = new ProduceRequest();
        request.Read(ref reader, header.RequestApiVersion);
        return request.TopicData[0].PartitionData[0].Records!.Value.Length;
    }

    [Benchmark]
    [AllocationBudget(0, Reason = "encoding into a caller's buffer allocates nothing")]
    public int ProduceV9Encode()
    {
        var writer = new KafkaWriter(_output);
        KafkaFrames.WriteRequestFrame(ref writer, _header, _request);
        return writer.Position;
    }
}

/// <summary>
/// Gateway fetch path: a FetchResponse v12 (one topic, six partitions, 64 KiB of batches each,
/// slices of one buffer) written into a frame buffer, and read back (client side).
/// </summary>
public class FetchResponseCodecBenchmarks
{
    private const short Version = 12;
    private const int Partitions = 6;
    private FetchResponse _response = new();
    private byte[] _output = [];
    private byte[] _body = [];

    [GlobalSetup]
    public void Setup()
    {
        var batches = new List<byte[]>();
        var total = 0;
        while (total < 64 * 1024)
        {
            var b = BenchData.Batch(16, 1000);
            batches.Add(b);
            total += b.Length;
        }
        var partitionBytes = batches.SelectMany(b => b).ToArray();
        _response = new FetchResponse();
        var topic = new FetchResponse.FetchableTopicResponse { Topic = "bench-topic" };
        for (var p = 0; p < Partitions; p++)
        {
            topic.Partitions.Add(new FetchResponse.PartitionData
            {
                PartitionIndex = p, HighWatermark = 1_000_000, LastStableOffset = 1_000_000, LogStartOffset = 0, Records = partitionBytes,
            });
        }
        _response.Responses.Add(topic);
        _output = new byte[KafkaFrames.ComputeResponseFrameSize(ApiKey.Fetch, Version, _response)];
        var frame = KafkaFrames.EncodeResponseFrame(ApiKey.Fetch, Version, 7, _response);
        // Body only: size prefix (4), correlation id (4) and the empty tagged section (1) of a v1 response header.
        _body = frame[9..];
    }

    [Benchmark]
    [AllocationBudget(0, Reason = "encoding into a caller's buffer allocates nothing; records are copied from their slices")]
    public int FetchV12Encode()
    {
        var writer = new KafkaWriter(_output);
        KafkaFrames.WriteResponseFrame(ref writer, ApiKey.Fetch, Version, 7, _response);
        return writer.Position;
    }

    [Benchmark]
    [AllocationBudget(2048, Reason = "1968 B measured: response + topic + six partitions (with their nested structs); records are slices")]
    public int FetchV12Decode()
    {
        var reader = new KafkaReader(_body);
        var response = new FetchResponse();
        response.Read(ref reader, Version);
        return response.Responses[0].Partitions.Count;
    }
}
