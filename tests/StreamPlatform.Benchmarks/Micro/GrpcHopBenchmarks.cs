using System.Buffers;
using BenchmarkDotNet.Attributes;
using Google.Protobuf;
using StreamPlatform.Gateway.Routing;
using Brk = StreamPlatform.Protos.Grpc.Broker;

namespace StreamPlatform.Benchmarks.Micro;

/// <summary>
/// The internal gateway -> broker hop (gRPC, protobuf): parsing a broker ProduceRequest carrying
/// one partition's 16 KiB records (what the broker does per produce), and a FetchResponse with six
/// 64 KiB partitions (what the gateway does per fetch). Protobuf copies every bytes field into a
/// new ByteString on parse, so these allocate in proportion to the bytes (never to the records):
/// the budgets record that copy. The gateway's fetch path parses with its own marshaller instead
/// (<see cref="BrokerFetchResponse"/>: one copy into a pooled buffer, records are slices of it),
/// measured next to the protobuf parse it replaced.
/// </summary>
public class GrpcHopBenchmarks
{
    private byte[] _produce = [];
    private byte[] _fetch = [];

    [GlobalSetup]
    public void Setup()
    {
        var produce = new Brk.ProduceRequest { Acks = 1, TimeoutMs = 30000 };
        produce.Partitions.Add(new Brk.PartitionProduce
        {
            Topic = "bench-topic", Partition = 3, Records = UnsafeByteOperations.UnsafeWrap(BenchData.BatchOfAbout(16 * 1024, 150)),
        });
        _produce = produce.ToByteArray();

        var records = UnsafeByteOperations.UnsafeWrap(BenchData.BatchOfAbout(64 * 1024, 1000));
        var fetch = new Brk.FetchResponse();
        for (var p = 0; p < 6; p++)
        {
            fetch.Results.Add(new Brk.PartitionFetchResult
            {
                Topic = "bench-topic", Partition = p, HighWatermark = 1_000_000, LastStableOffset = 1_000_000, Records = records,
            });
        }
        _fetch = fetch.ToByteArray();
    }

    [Benchmark]
    [AllocationBudget(17 * 1024, Reason = "one copy of the 16 KiB records per request (protobuf ByteString) + message objects")]
    public int BrokerProduceRequestParse16KiB() => Brk.ProduceRequest.Parser.ParseFrom(_produce).Partitions[0].Records.Length;

    [Benchmark]
    [AllocationBudget(6 * 65 * 1024, Reason = "one copy of each partition's 64 KiB records (protobuf ByteString) + message objects")]
    public int GatewayFetchResponseParse6x64KiB() => Brk.FetchResponse.Parser.ParseFrom(_fetch).Results.Count;

    [Benchmark]
    [AllocationBudget(1536, Reason = "results list + one topic string per partition; the payload goes into a pooled buffer")]
    public int GatewayFetchResponsePooledParse6x64KiB()
    {
        using var response = BrokerFetchResponse.Parse(new ReadOnlySequence<byte>(_fetch), ArrayPool<byte>.Shared);
        return response.Results.Count;
    }
}
