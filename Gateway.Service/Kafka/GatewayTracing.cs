using System.Diagnostics;
using StreamPlatform.Protos.Kafka;
using StreamPlatform.Protos.Kafka.Messages;
using StreamPlatform.ServiceDefaults;

namespace StreamPlatform.Gateway.Kafka;

/// <summary>
/// The gateway's "StreamPlatform.Gateway" activity source: one server span per Kafka request,
/// named "kafka &lt;Api&gt;" (e.g. "kafka Produce"), with the OpenTelemetry messaging attributes.
/// Its context reaches the brokers with the calls the handler makes (gRPC headers for unary
/// calls, the traceparent field of a message on the pipelined produce stream), so a produce is
/// one trace from here through the broker's append.
/// Cheap when nobody listens: <see cref="StartRequest"/> returns null without allocating, and
/// attributes are only computed for a span that records them.
/// </summary>
public static class GatewayTracing
{
    public const string SourceName = "StreamPlatform.Gateway";
    public static readonly ActivitySource Source = Telemetry.CreateActivitySource("Gateway");

    // Span names per api key, built once: no string per request.
    private static readonly string[] SpanNames = BuildSpanNames();

    private static string[] BuildSpanNames()
    {
        var names = new string[Enum.GetValues<ApiKey>().Max(k => (int)k) + 1];
        foreach (var key in Enum.GetValues<ApiKey>()) names[(int)key] = $"kafka {key}";
        return names;
    }

    /// <summary>The span of one Kafka request, or null when no listener samples it.</summary>
    public static Activity? StartRequest(ApiKey api, IKafkaRequest request, short apiVersion, string? clientId, string connectionId)
    {
        if (!Source.HasListeners()) return null;
        var index = (int)api;
        var name = index >= 0 && index < SpanNames.Length && SpanNames[index] is { } known ? known : $"kafka {api}";
        var activity = Source.StartActivity(name, ActivityKind.Server);
        if (activity is null || !activity.IsAllDataRequested) return activity;
        activity.SetTag("messaging.system", "kafka");
        activity.SetTag("messaging.operation.name", api.ToString());
        activity.SetTag("kafka.api_key", (int)api);
        activity.SetTag("kafka.api_version", (int)apiVersion);
        if (!string.IsNullOrEmpty(clientId)) activity.SetTag("messaging.client.id", clientId);
        activity.SetTag("kafka.connection.id", connectionId);
        switch (request)
        {
            case ProduceRequest produce:
                activity.SetTag("messaging.operation.type", "send");
                SetDestination(activity, produce.TopicData.Select(t => t.Name));
                if (produce.TransactionalId is { Length: > 0 } transactionalId) activity.SetTag("kafka.transactional_id", transactionalId);
                activity.SetTag("kafka.acks", (int)produce.Acks);
                break;
            case FetchRequest fetch:
                activity.SetTag("messaging.operation.type", "receive");
                // From v13 topics are named by id only.
                SetDestination(activity, fetch.Topics.Select(t => t.Topic.Length > 0 ? t.Topic : t.TopicId.ToString()));
                break;
        }
        return activity;
    }

    /// <summary>Records the response's error code (the first partition error for Produce and Fetch) and ends nothing: the caller disposes the span.</summary>
    public static void Completed(Activity? activity, IKafkaResponse? response)
    {
        if (activity is null || !activity.IsAllDataRequested) return;
        var error = response switch
        {
            ProduceResponse produce => FirstError(produce.Responses.SelectMany(t => t.PartitionResponses).Select(p => p.ErrorCode)),
            FetchResponse fetch => fetch.ErrorCode != 0 ? fetch.ErrorCode : FirstError(fetch.Responses.SelectMany(t => t.Partitions).Select(p => p.ErrorCode)),
            _ => (short)0,
        };
        activity.SetTag("kafka.error_code", (int)error);
        if (error != 0)
        {
            activity.SetTag("error.type", ((ErrorCode)error).ToString());
            activity.SetStatus(ActivityStatusCode.Error);
        }
    }

    /// <summary>The handler failed (answered UNKNOWN_SERVER_ERROR or closed the connection).</summary>
    public static void Failed(Activity? activity, Exception exception)
    {
        if (activity is null) return;
        activity.SetTag("error.type", exception.GetType().FullName);
        activity.SetStatus(ActivityStatusCode.Error, exception.Message);
    }

    private static void SetDestination(Activity activity, IEnumerable<string> topics)
    {
        var distinct = topics.Distinct().ToArray();
        if (distinct.Length == 1) activity.SetTag("messaging.destination.name", distinct[0]);
        else if (distinct.Length > 1) activity.SetTag("kafka.topics", string.Join(',', distinct));
    }

    private static short FirstError(IEnumerable<short> codes)
    {
        foreach (var code in codes) if (code != 0) return code;
        return 0;
    }
}
