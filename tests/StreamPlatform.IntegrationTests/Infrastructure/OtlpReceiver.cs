using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace StreamPlatform.IntegrationTests.Infrastructure;

/// <summary>One span as an OTLP collector received it (ids in lower-case hex; parent "" for a root).</summary>
public sealed record ReceivedSpan(string ServiceName, string InstanceId, string TraceId, string SpanId, string ParentSpanId, string Name,
    IReadOnlyDictionary<string, string> Attributes);

/// <summary>One metric as received: the service and instance that sent it, its name and unit.</summary>
public sealed record ReceivedMetric(string ServiceName, string InstanceId, string Name, string Unit);

/// <summary>
/// A minimal OTLP/gRPC collector for tests, on a free port of 127.0.0.1: it accepts the trace,
/// metric and log Export calls the services' OpenTelemetry exporters make (the protocol they use
/// by default), decodes the few protobuf fields the tests look at and answers with an empty
/// export response. Everything else in the messages is skipped.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    // Kept bounded: a test cluster exports for a minute or so; past this the oldest are not needed.
    private const int SpansMax = 200_000;
    private const int MetricsMax = 200_000;

    private readonly WebApplication _app;
    private readonly ConcurrentQueue<ReceivedSpan> _spans = new();
    private readonly ConcurrentQueue<ReceivedMetric> _metrics = new();
    private int _logExports;

    private OtlpReceiver(WebApplication app) => _app = app;

    /// <summary>The address to give the services as OTEL_EXPORTER_OTLP_ENDPOINT.</summary>
    public string Endpoint { get; private set; } = "";

    public IReadOnlyCollection<ReceivedSpan> Spans => _spans.ToArray();
    public IReadOnlyCollection<ReceivedMetric> Metrics => _metrics.ToArray();
    public int LogExports => Volatile.Read(ref _logExports);

    public static async Task<OtlpReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        var app = builder.Build();
        var receiver = new OtlpReceiver(app);
        app.MapPost("/opentelemetry.proto.collector.trace.v1.TraceService/Export", ctx => receiver.HandleAsync(ctx, receiver.ReadTraces));
        app.MapPost("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", ctx => receiver.HandleAsync(ctx, receiver.ReadMetrics));
        app.MapPost("/opentelemetry.proto.collector.logs.v1.LogsService/Export", ctx => receiver.HandleAsync(ctx, _ => Interlocked.Increment(ref receiver._logExports)));
        await app.StartAsync();
        var address = app.Urls.Single();
        receiver.Endpoint = address.Replace("[::1]", "127.0.0.1", StringComparison.Ordinal);
        return receiver;
    }

    private async Task HandleAsync(HttpContext context, Action<ReadOnlyMemory<byte>> read)
    {
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body);
        var frame = body.GetBuffer().AsMemory(0, (int)body.Length);
        // gRPC framing: a compressed flag byte and a 4-byte big-endian length, then the message.
        var status = "0";
        if (frame.Length >= 5 && frame.Span[0] == 0 && BinaryPrimitives.ReadUInt32BigEndian(frame.Span[1..5]) == frame.Length - 5)
        {
            try { read(frame[5..]); }
            catch (InvalidDataException) { status = "3"; } // INVALID_ARGUMENT
        }
        else status = "3";
        context.Response.ContentType = "application/grpc";
        context.Response.AppendTrailer("grpc-status", status);
        if (status == "0")
            await context.Response.Body.WriteAsync(new byte[5]); // an empty Export*ServiceResponse
    }

    private void ReadTraces(ReadOnlyMemory<byte> request)
    {
        foreach (var resourceSpans in Fields(request, 1))
        {
            var (service, instance) = ReadResource(resourceSpans);
            foreach (var scopeSpans in Fields(resourceSpans, 2))
                foreach (var span in Fields(scopeSpans, 2))
                {
                    string traceId = "", spanId = "", parent = "", name = "";
                    var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
                    foreach (var (field, value) in Parse(span))
                    {
                        switch (field)
                        {
                            case 1: traceId = Convert.ToHexStringLower(value.Span); break;
                            case 2: spanId = Convert.ToHexStringLower(value.Span); break;
                            case 4: parent = Convert.ToHexStringLower(value.Span); break;
                            case 5: name = Encoding.UTF8.GetString(value.Span); break;
                            case 9: var (k, v) = ReadKeyValue(value); attributes[k] = v; break;
                        }
                    }
                    if (_spans.Count < SpansMax) _spans.Enqueue(new ReceivedSpan(service, instance, traceId, spanId, parent, name, attributes));
                }
        }
    }

    private void ReadMetrics(ReadOnlyMemory<byte> request)
    {
        foreach (var resourceMetrics in Fields(request, 1))
        {
            var (service, instance) = ReadResource(resourceMetrics);
            foreach (var scopeMetrics in Fields(resourceMetrics, 2))
                foreach (var metric in Fields(scopeMetrics, 2))
                {
                    string name = "", unit = "";
                    foreach (var (field, value) in Parse(metric))
                    {
                        if (field == 1) name = Encoding.UTF8.GetString(value.Span);
                        else if (field == 3) unit = Encoding.UTF8.GetString(value.Span);
                    }
                    if (_metrics.Count < MetricsMax) _metrics.Enqueue(new ReceivedMetric(service, instance, name, unit));
                }
        }
    }

    /// <summary>service.name and service.instance.id of a Resource{Spans,Metrics}'s resource (field 1).</summary>
    private static (string Service, string Instance) ReadResource(ReadOnlyMemory<byte> resourceSignals)
    {
        string service = "", instance = "";
        foreach (var resource in Fields(resourceSignals, 1))
            foreach (var attribute in Fields(resource, 1))
            {
                var (k, v) = ReadKeyValue(attribute);
                if (k == "service.name") service = v;
                else if (k == "service.instance.id") instance = v;
            }
        return (service, instance);
    }

    /// <summary>A KeyValue: its key, and its AnyValue as text (string, bool, int or double).</summary>
    private static (string Key, string Value) ReadKeyValue(ReadOnlyMemory<byte> keyValue)
    {
        string key = "", text = "";
        foreach (var (field, value) in Parse(keyValue))
        {
            if (field == 1) key = Encoding.UTF8.GetString(value.Span);
            else if (field == 2)
                foreach (var (anyField, any) in Parse(value))
                    text = anyField switch
                    {
                        1 => Encoding.UTF8.GetString(any.Span),
                        2 => (ReadVarint(any.Span, out _) != 0).ToString(),
                        3 => ((long)ReadVarint(any.Span, out _)).ToString(System.Globalization.CultureInfo.InvariantCulture),
                        4 => BitConverter.Int64BitsToDouble(BinaryPrimitives.ReadInt64LittleEndian(any.Span)).ToString(System.Globalization.CultureInfo.InvariantCulture),
                        _ => text,
                    };
        }
        return (key, text);
    }

    private static IEnumerable<ReadOnlyMemory<byte>> Fields(ReadOnlyMemory<byte> message, int number)
        => Parse(message).Where(f => f.Field == number).Select(f => f.Value);

    /// <summary>
    /// The fields of a protobuf message: length-delimited ones as their bytes, varints as their
    /// encoded bytes, fixed64/fixed32 as their 8 or 4 bytes. Malformed input: InvalidDataException.
    /// </summary>
    private static List<(int Field, ReadOnlyMemory<byte> Value)> Parse(ReadOnlyMemory<byte> message)
    {
        var fields = new List<(int, ReadOnlyMemory<byte>)>();
        var position = 0;
        while (position < message.Length)
        {
            var tag = ReadVarint(message.Span[position..], out var read);
            position += read;
            var field = (int)(tag >> 3);
            int length;
            switch (tag & 7)
            {
                case 0: ReadVarint(message.Span[position..], out length); break;
                case 1: length = 8; break;
                case 2:
                    var size = ReadVarint(message.Span[position..], out read);
                    position += read;
                    if (size > (ulong)(message.Length - position)) throw new InvalidDataException("A length-delimited field runs past its message.");
                    length = (int)size;
                    break;
                case 5: length = 4; break;
                default: throw new InvalidDataException($"Unsupported wire type {tag & 7}.");
            }
            if (length > message.Length - position) throw new InvalidDataException("A field runs past its message.");
            fields.Add((field, message.Slice(position, length)));
            position += length;
        }
        return fields;
    }

    private static ulong ReadVarint(ReadOnlySpan<byte> bytes, out int read)
    {
        ulong value = 0;
        for (read = 0; read < bytes.Length && read < 10; read++)
        {
            value |= (ulong)(bytes[read] & 0x7F) << (7 * read);
            if ((bytes[read] & 0x80) == 0) { read++; return value; }
        }
        throw new InvalidDataException("A varint runs past its message.");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
