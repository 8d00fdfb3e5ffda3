using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using Confluent.Kafka;
using Grpc.Net.Client;
using StreamPlatform.AppHost.Orchestration;
using StreamPlatform.IntegrationTests.Infrastructure;
using StreamPlatform.Protos.Grpc.Gateway;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Kafka;

/// <summary>
/// A real gateway process under two memory attacks at once: 20 connections that each declare a
/// 100 MiB frame and send 40 MiB of it, and a client that pipelines 100 large fetches and never
/// reads. The gateway's own accounting (GetStatus) stays within its configured budgets, its
/// working set stays far below what the attacks ask for, and a Confluent.Kafka producer and
/// consumer keep working meanwhile. The frame holding the reservation is closed by the frame read
/// timeout, and once the attackers leave nothing stays held.
/// </summary>
public sealed class GatewayMemoryBoundsTests(ITestOutputHelper output)
{
    private const int RequestBudgetBytes = 128 * 1024 * 1024;
    private const int FrameReadTimeoutMs = 20_000;
    private const int DeclaredFrameBytes = 100 * 1024 * 1024;
    private const int SentPerFrameBytes = 40 * 1024 * 1024;
    private const int QueuedResponseLimitBytes = 4 * 1024 * 1024;
    private const int FetchMaxBytes = 8 * 1024 * 1024;

    [Fact]
    public async Task Partial_frames_and_a_non_reading_client_stay_within_the_gateway_budgets_while_real_clients_keep_working()
    {
        await using var cluster = await TestCluster.StartAsync(o =>
        {
            o.Brokers = 1;
            o.WithEnvironment(ServiceKind.Gateway, "Gateway__MaxInFlightRequestBytes", RequestBudgetBytes.ToString());
            o.WithEnvironment(ServiceKind.Gateway, "Gateway__FrameReadTimeoutMs", FrameReadTimeoutMs.ToString());
            o.WithEnvironment(ServiceKind.Gateway, "Gateway__MaxQueuedResponseBytesPerConnection", QueuedResponseLimitBytes.ToString());
        });
        using var attach = cluster.AttachOutput(output);
        var bootstrap = cluster.BootstrapServers;
        var gateway = cluster.Orchestrator.Gateways.Single();
        using var channel = GrpcChannel.ForAddress(gateway.GrpcEndpoint);
        var status = new GatewayService.GatewayServiceClient(channel);

        // 8 MiB of records for the fetches to return.
        var bulk = KafkaHelpers.UniqueTopic("bounds-bulk");
        await KafkaHelpers.CreateTopicAsync(bootstrap, bulk, 1);
        using (var producer = new ProducerBuilder<byte[], byte[]>(KafkaHelpers.ProducerConfig(bootstrap)).Build())
        {
            for (var i = 0; i < 80; i++) producer.Produce(bulk, new Message<byte[], byte[]> { Key = [1], Value = new byte[100 * 1024] });
            producer.Flush(TimeSpan.FromSeconds(60));
        }
        var topicId = await TopicIdAsync(bootstrap, bulk);

        // Attack 1: 20 connections declare 100 MiB frames and send 40 MiB of each (as far as the gateway reads).
        var attackers = new List<Socket>();
        var sends = new List<Task>();
        var body = new byte[SentPerFrameBytes];
        using var stopSending = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var endpoint = bootstrap.Split(',')[0].Split(':');
        for (var i = 0; i < 20; i++)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(endpoint[0], int.Parse(endpoint[1]));
            attackers.Add(socket);
            var prefix = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(prefix, DeclaredFrameBytes);
            await socket.SendAsync(prefix);
            sends.Add(SendUntilStoppedAsync(socket, body, stopSending.Token));
        }

        // Attack 2: 100 pipelined fetches of up to 8 MiB each from a client that never reads.
        var reader = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        await reader.ConnectAsync(endpoint[0], int.Parse(endpoint[1]));
        var fetches = new List<byte>();
        for (var id = 1; id <= 100; id++) fetches.AddRange(EncodeFetch(id, bulk, topicId));
        await reader.SendAsync(fetches.ToArray());

        try
        {
            await Task.Delay(TimeSpan.FromSeconds(5));

            // A well-behaved producer and consumer keep working meanwhile.
            var topic = KafkaHelpers.UniqueTopic("bounds-ok");
            await KafkaHelpers.CreateTopicAsync(bootstrap, topic, 1);
            var latenciesMs = new List<double>();
            using (var producer = new ProducerBuilder<byte[], byte[]>(KafkaHelpers.ProducerConfig(bootstrap)).Build())
            {
                for (var i = 0; i < 50; i++)
                {
                    var started = Stopwatch.GetTimestamp();
                    await producer.ProduceAsync(topic, new Message<byte[], byte[]> { Key = [(byte)i], Value = new byte[100] });
                    latenciesMs.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                }
            }
            latenciesMs.Sort();
            var p99 = latenciesMs[(int)Math.Ceiling(latenciesMs.Count * 0.99) - 1];
            output.WriteLine($"produce p99 under attack: {p99:F1} ms");
            Assert.True(p99 < 1000, $"produce p99 {p99:F1} ms");
            Assert.Equal(50, KafkaHelpers.ReadAll(bootstrap, topic, 1, 50, TimeSpan.FromSeconds(60)).Count);

            // The gateway's accounting: within its budgets.
            var s = await status.GetStatusAsync(new GetStatusRequest());
            output.WriteLine($"held {s.RequestBytesHeld}/{s.RequestBytesCapacity}, responses queued {s.ResponseBytesQueued}, muted {s.MutedConnections}");
            Assert.Equal(RequestBudgetBytes, s.RequestBytesCapacity);
            Assert.InRange(s.RequestBytesHeld, DeclaredFrameBytes, RequestBudgetBytes);
            Assert.InRange(s.ResponseBytesQueued, 0, FetchMaxBytes + QueuedResponseLimitBytes);
            Assert.True(s.MutedConnections >= 19, $"{s.MutedConnections} muted connections");
            // And in fact: 20 x 40 MiB sent plus 100 x 8 MiB asked would be about 1.6 GB.
            using var process = Process.GetProcessById(gateway.ProcessId!.Value);
            var workingSet = process.WorkingSet64;
            output.WriteLine($"gateway working set {workingSet / (1024 * 1024)} MiB");
            Assert.InRange(workingSet, 0, 700L * 1024 * 1024);

            // The frame holding the reservation times out and its connection is closed (the next
            // attacker then gets the reservation, and times out in turn).
            var deadline = DateTime.UtcNow.AddMilliseconds(FrameReadTimeoutMs + 30_000);
            while (!cluster.Output.Dump("gateway-1").Contains("(FrameReadTimeoutMs)") && DateTime.UtcNow < deadline)
                await Task.Delay(500);
            Assert.Contains("(FrameReadTimeoutMs)", cluster.Output.Dump("gateway-1"));

            // The attackers go away: nothing stays reserved or queued.
            await stopSending.CancelAsync();
            foreach (var socket in attackers) socket.Dispose();
            reader.Dispose();
            deadline = DateTime.UtcNow.AddSeconds(30);
            while (((s = await status.GetStatusAsync(new GetStatusRequest())).RequestBytesHeld > 0 || s.ResponseBytesQueued > 0)
                   && DateTime.UtcNow < deadline)
                await Task.Delay(200);
            Assert.Equal((0, 0, 0), (s.RequestBytesHeld, s.ResponseBytesQueued, s.MutedConnections));

        }
        finally
        {
            await stopSending.CancelAsync();
            foreach (var socket in attackers) socket.Dispose();
            reader.Dispose();
            await Task.WhenAll(sends);
        }
    }

    /// <summary>Sends as much of <paramref name="body"/> as the gateway takes until stopped or closed.</summary>
    private static async Task SendUntilStoppedAsync(Socket socket, byte[] body, CancellationToken stop)
    {
        try
        {
            var sent = 0;
            while (sent < body.Length) sent += await socket.SendAsync(body.AsMemory(sent), SocketFlags.None, stop);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopped, or closed by the gateway (frame read timeout).
        }
    }

    private static async Task<Guid> TopicIdAsync(string bootstrap, string topic)
    {
        await using var connection = await RawKafkaConnection.ConnectAsync(bootstrap);
        var metadata = await connection.SendAsync<MetadataResponse>(new MetadataRequest
        {
            Topics = [new MetadataRequest.MetadataRequestTopic { Name = topic }],
        }, 12);
        return Assert.Single(metadata.Topics).TopicId;
    }

    private static byte[] EncodeFetch(int correlationId, string topic, Guid topicId)
    {
        const short version = 13;
        var request = new FetchRequest { ReplicaId = -1, MaxWaitMs = 0, MinBytes = 1, MaxBytes = FetchMaxBytes };
        var t = new FetchRequest.FetchTopic { Topic = topic, TopicId = topicId };
        t.Partitions.Add(new FetchRequest.FetchPartition { Partition = 0, FetchOffset = 0, PartitionMaxBytes = FetchMaxBytes });
        request.Topics.Add(t);
        var header = new RequestHeader { RequestApiKey = (short)ApiKey.Fetch, RequestApiVersion = version, CorrelationId = correlationId, ClientId = "non-reader" };
        var headerVersion = KafkaApis.RequestHeaderVersion(ApiKey.Fetch, version);
        var headerSize = header.ComputeSize(headerVersion);
        var bytes = new byte[4 + headerSize + request.ComputeSize(version)];
        BinaryPrimitives.WriteInt32BigEndian(bytes, bytes.Length - 4);
        var writer = new KafkaWriter(bytes.AsSpan(4));
        header.Write(ref writer, headerVersion);
        request.Write(ref writer, version);
        return bytes;
    }
}
