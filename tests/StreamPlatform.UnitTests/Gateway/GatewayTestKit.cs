using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using StreamPlatform.Gateway;
using StreamPlatform.Gateway.Apis;
using StreamPlatform.Gateway.Cluster;
using StreamPlatform.Gateway.Kafka;
using StreamPlatform.Gateway.Routing;
using StreamPlatform.Protos.Grpc;
using StreamPlatform.Protos.Grpc.Clients;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.ServiceDefaults;

namespace StreamPlatform.UnitTests.Gateway;

/// <summary>
/// The gateway's real handlers over hand-built metadata. The controller channel points nowhere
/// and is never called by these tests (auto-creation is off unless a test turns it on).
/// </summary>
internal sealed class GatewayTestKit : IAsyncDisposable
{
    public GatewayOptions Options { get; } = new() { NodeId = 7, KafkaPort = 19092, MaxFrameBytes = 1024 * 1024, MaxInFlightRequestsPerConnection = 8 };
    public MetadataWatcher Watcher { get; }
    public TopicAdmin Admin { get; }
    public BrokerClientPool Brokers { get; } = new();
    public GatewayMetrics Metrics { get; } = new();
    public StreamPlatform.Gateway.Security.IAuthorizer Authorizer { get; set; } = new StreamPlatform.Gateway.Security.AllowAllAuthorizer();
    private readonly ControllerConnection _controller;

    public GatewayTestKit()
    {
        _controller = new ControllerConnection(GrpcChannels.Create(new Uri("http://127.0.0.1:9")));
        Watcher = new MetadataWatcher(_controller.Channel, "test", NullLogger.Instance);
        Admin = new TopicAdmin(_controller, Watcher, Microsoft.Extensions.Options.Options.Create(Options), TimeProvider.System, NullLogger<TopicAdmin>.Instance);
    }

    public ApiRegistry Registry(params IApiHandler[] extra)
    {
        var o = Microsoft.Extensions.Options.Options.Create(Options);
        var handlers = new List<IApiHandler>
        {
            new MetadataApi(Admin, o, Authorizer),
            new ProduceApi(Admin, Brokers, o, Authorizer, NullLogger<ProduceApi>.Instance),
            new FetchApi(Admin, Brokers, o, TimeProvider.System, NullLogger<FetchApi>.Instance),
            new ListOffsetsApi(Admin, Brokers, o, TimeProvider.System, NullLogger<ListOffsetsApi>.Instance),
            new DescribeConfigsApi(Admin, o),
            new DescribeClusterApi(Admin, o, Authorizer),
        };
        foreach (var h in extra)
        {
            handlers.RemoveAll(x => x.Key == h.Key);
            handlers.Add(h);
        }
        return new ApiRegistry(handlers);
    }

    /// <summary>Two brokers (1, 2), two gateways (10, 11), topic "orders" with 3 partitions led by 1, 2, 1.</summary>
    public static MetadataSnapshot Snapshot(bool autoCreate = false)
    {
        var snapshot = new MetadataSnapshot
        {
            MetadataEpoch = 5,
            ClusterId = "test-cluster",
            ControllerId = 0,
            Brokers =
            {
                new BrokerInfo { BrokerId = 1, GrpcEndpoint = "http://127.0.0.1:9", BrokerEpoch = 1 },
                new BrokerInfo { BrokerId = 2, GrpcEndpoint = "http://127.0.0.1:9", BrokerEpoch = 1 },
                new BrokerInfo { BrokerId = 3, GrpcEndpoint = "http://127.0.0.1:9", BrokerEpoch = 1, Fenced = true },
            },
            Gateways =
            {
                new GatewayInfo { NodeId = 11, KafkaHost = "127.0.0.1", KafkaPort = 19093 },
                new GatewayInfo { NodeId = 10, KafkaHost = "127.0.0.1", KafkaPort = 19092 },
                new GatewayInfo { NodeId = 12, KafkaHost = "127.0.0.1", KafkaPort = 19094, Fenced = true },
            },
        };
        snapshot.BrokerConfigs["auto.create.topics.enable"] = autoCreate ? "true" : "false";
        var topic = new TopicInfo
        {
            Name = "orders",
            TopicId = TopicIds.ToByteString(OrdersId),
            ReplicationFactor = 2,
        };
        topic.Configs["retention.ms"] = "1000";
        topic.Partitions.Add(Partition(0, 1, 4, [1, 2], [1, 2]));
        topic.Partitions.Add(Partition(1, 2, 3, [2, 1], [2]));
        topic.Partitions.Add(Partition(2, 3, 9, [3, 1], [3])); // leader fenced
        snapshot.Topics.Add(topic);
        return snapshot;
    }

    public static readonly Guid OrdersId = Guid.Parse("6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f");

    private static PartitionInfo Partition(int index, int leader, int epoch, int[] replicas, int[] isr)
    {
        var p = new PartitionInfo { Partition = index, Leader = leader, LeaderEpoch = epoch };
        p.Replicas.AddRange(replicas);
        p.Isr.AddRange(isr);
        return p;
    }

    public async ValueTask DisposeAsync()
    {
        await Watcher.DisposeAsync();
        Brokers.Dispose();
        _controller.Dispose();
        Metrics.Dispose();
    }
}

/// <summary>A Kafka client over an in-memory duplex pipe pair, driving a real <see cref="KafkaConnection"/>.</summary>
internal sealed class PipeClient : IAsyncDisposable
{
    private readonly PipeWriter _out;
    private readonly PipeReader _in;
    private readonly IDisposable? _socket;
    // The connection's ConnectionClosed: fired when this client goes away, as Kestrel does.
    private readonly CancellationTokenSource? _closed;
    public Task Connection { get; }
    /// <summary>The server side (null for a TCP client).</summary>
    public KafkaConnection? Kafka { get; }

    /// <param name="time">The connection's clock (its read timeouts), the system's unless given.</param>
    /// <param name="authenticated">False: the connection starts unauthenticated (as on a SASL listener).</param>
    /// <param name="clientGone">Also fires the connection's "client went away" token (Kestrel's ConnectionClosed), which <see cref="DisposeAsync"/> fires in any case.</param>
    public PipeClient(ApiRegistry registry, GatewayOptions options, GatewayMetrics metrics, RequestMemoryBudget? budget = null,
        TimeProvider? time = null, bool authenticated = true, Microsoft.Extensions.Logging.ILogger? logger = null, CancellationToken clientGone = default)
    {
        var toServer = new Pipe();
        var toClient = new Pipe();
        _out = toServer.Writer;
        _in = toClient.Reader;
        var transport = new DuplexPipe(toServer.Reader, toClient.Writer);
        _closed = CancellationTokenSource.CreateLinkedTokenSource(clientGone);
        Kafka = new KafkaConnection(transport, registry, options, metrics, logger ?? NullLogger.Instance, "test-conn", budget, time, authenticated);
        Connection = Kafka.RunAsync(_closed.Token);
    }

    /// <summary>A client over a real TCP connection to a running gateway.</summary>
    public PipeClient(System.Net.Sockets.Socket socket)
    {
        var stream = new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
        _socket = stream;
        _out = PipeWriter.Create(stream);
        _in = PipeReader.Create(stream);
        Connection = Task.CompletedTask;
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }

    public static byte[] EncodeRequest(ApiKey apiKey, short version, int correlationId, IKafkaRequest body)
    {
        var header = new RequestHeader { RequestApiKey = (short)apiKey, RequestApiVersion = version, CorrelationId = correlationId, ClientId = "unit" };
        var headerVersion = KafkaApis.RequestHeaderVersion(apiKey, version);
        var headerSize = header.ComputeSize(headerVersion);
        var bodySize = body.ComputeSize(version);
        var bytes = new byte[4 + headerSize + bodySize];
        BinaryPrimitives.WriteInt32BigEndian(bytes, headerSize + bodySize);
        var w1 = new KafkaWriter(bytes.AsSpan(4, headerSize));
        header.Write(ref w1, headerVersion);
        var w2 = new KafkaWriter(bytes.AsSpan(4 + headerSize, bodySize));
        body.Write(ref w2, version);
        return bytes;
    }

    public async Task SendRawAsync(byte[] bytes)
    {
        await _out.WriteAsync(bytes);
    }

    public Task SendAsync(ApiKey apiKey, short version, int correlationId, IKafkaRequest body)
        => SendRawAsync(EncodeRequest(apiKey, version, correlationId, body));

    /// <summary>The next response frame (correlation id and body), or null when the server closed the connection.</summary>
    public async Task<(int CorrelationId, ReadOnlyMemory<byte> Body)?> ReadFrameAsync(short headerVersion)
    {
        var reader = _in;
        while (true)
        {
            var result = await reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            var buffer = result.Buffer;
            if (FrameReader.TryReadFrame(ref buffer, int.MaxValue, out var frame, out _) == FrameStatus.Complete)
            {
                var bytes = frame.ToArray();
                reader.AdvanceTo(buffer.Start);
                var correlationId = BinaryPrimitives.ReadInt32BigEndian(bytes);
                var headerSize = headerVersion >= 1 ? 5 : 4;
                return (correlationId, bytes.AsMemory(headerSize));
            }
            reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted) return null;
        }
    }

    public async Task<(int CorrelationId, T Body)> ReadAsync<T>(ApiKey apiKey, short version) where T : IKafkaResponse, new()
    {
        var frame = await ReadFrameAsync(KafkaApis.ResponseHeaderVersion(apiKey, version))
                    ?? throw new InvalidOperationException("connection closed");
        var body = new T();
        var reader = new KafkaReader(frame.Body);
        body.Read(ref reader, version);
        return (frame.CorrelationId, body);
    }

    /// <summary>True once the server has completed its output (closed the connection).</summary>
    public async Task<bool> IsClosedAsync()
    {
        var result = await _in.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        var closed = result.IsCompleted && result.Buffer.IsEmpty;
        _in.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        return closed;
    }

    /// <summary>
    /// The client goes away as a TCP client does under Kestrel: the connection's input completes
    /// (FIN) and then its ConnectionClosed fires (Kestrel's socket transport fires it as soon as its
    /// receive loop ends, whether or not the application is reading, e.g. while it is muted
    /// waiting for request budget). Then waits for the connection to end. Idempotent.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        await _out.CompleteAsync();
        if (_closed is not null) await _closed.CancelAsync();
        await Connection.WaitAsync(TimeSpan.FromSeconds(10));
        _socket?.Dispose();
    }
}
