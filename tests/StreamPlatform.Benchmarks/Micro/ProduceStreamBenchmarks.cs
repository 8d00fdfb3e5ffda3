using System.Buffers;
using BenchmarkDotNet.Attributes;
using Google.Protobuf;
using StreamPlatform.Broker.Services;
using Brk = StreamPlatform.Protos.Grpc.Broker;

namespace StreamPlatform.Benchmarks.Micro;

/// <summary>
/// The broker's parse of one ProduceStream message carrying one partition's 16 KiB records, as
/// <see cref="GrpcHopBenchmarks.BrokerProduceRequestParse16KiB"/> but with the broker's pooled
/// parser (records copied into a rented array, returned by Dispose after the append): the
/// allocation is the message objects only, not the records.
/// </summary>
public class ProduceStreamBenchmarks
{
    private ReadOnlySequence<byte> _message;

    [GlobalSetup]
    public void Setup()
    {
        var message = new Brk.ProduceStreamRequest { RequestId = 1, Request = new Brk.ProduceRequest { Acks = 1, TimeoutMs = 30000 } };
        message.Request.Partitions.Add(new Brk.PartitionProduce
        {
            Topic = "bench-topic", Partition = 3, Records = UnsafeByteOperations.UnsafeWrap(BenchData.BatchOfAbout(16 * 1024, 150)),
        });
        _message = new ReadOnlySequence<byte>(message.ToByteArray());
    }

    [Benchmark]
    [AllocationBudget(1024, Reason = "message objects, the topic string and the rented-array list; the records go into a pooled array")]
    public int BrokerProduceStreamPooledParse16KiB()
    {
        using var parsed = PooledProduceStreamRequest.Parse(_message, ArrayPool<byte>.Shared);
        return parsed.Request.Partitions[0].Records.Length;
    }
}
