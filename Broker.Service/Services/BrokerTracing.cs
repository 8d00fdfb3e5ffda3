using System.Diagnostics;
using StreamPlatform.Protos.Grpc.Broker;
using StreamPlatform.ServiceDefaults;

namespace StreamPlatform.Broker.Services;

/// <summary>
/// The broker's "StreamPlatform.Broker" activity source. A produce gets a "Produce append" span
/// (the leader's log appends of every partition of the request) and, when acks=-1 leaves it
/// waiting for its followers, a "Produce replicate" span from the append until the commit (or its
/// failure). Both are children of the gateway's "kafka Produce" span, whose context comes in the
/// request's traceparent field (the pipelined stream) or the call's headers (unary Produce).
/// Nothing is allocated when no listener samples them.
/// </summary>
internal static class BrokerTracing
{
    public const string SourceName = "StreamPlatform.Broker";
    public static readonly ActivitySource Source = Telemetry.CreateActivitySource("Broker");

    /// <summary>
    /// The append span of <paramref name="request"/>, or null. <paramref name="headerContextAllowed"/>:
    /// without a traceparent field, fall back to Activity.Current (the unary call's server span);
    /// false on the stream, whose call-wide span must not adopt every request.
    /// </summary>
    public static Activity? StartAppend(ProduceRequest request, bool headerContextAllowed)
    {
        if (!Source.HasListeners()) return null;
        Activity? activity;
        if (request.Traceparent.Length > 0)
        {
            // A malformed value (not ours) is ignored rather than failing the produce.
            if (!ActivityContext.TryParse(request.Traceparent, null, isRemote: true, out var parent)) return null;
            activity = Source.StartActivity("Produce append", ActivityKind.Server, parent);
        }
        else if (headerContextAllowed && Activity.Current is not null)
            activity = Source.StartActivity("Produce append", ActivityKind.Server);
        else
            return null;
        if (activity is null || !activity.IsAllDataRequested) return activity;
        activity.SetTag("messaging.system", "kafka");
        activity.SetTag("messaging.operation.type", "send");
        activity.SetTag("kafka.acks", request.Acks);
        activity.SetTag("kafka.partition_count", request.Partitions.Count);
        if (request.Partitions.Count > 0)
        {
            var topic = request.Partitions[0].Topic;
            var oneTopic = true;
            foreach (var p in request.Partitions) oneTopic &= p.Topic == topic;
            if (oneTopic) activity.SetTag("messaging.destination.name", topic);
            if (request.Partitions.Count == 1) activity.SetTag("messaging.destination.partition.id", request.Partitions[0].Partition.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        return activity;
    }

    /// <summary>Ends the append span with the first partition error (0 when every partition was appended).</summary>
    public static void AppendDone(Activity? activity, IEnumerable<PartitionProduceResult?> results)
    {
        if (activity is null) return;
        if (activity.IsAllDataRequested) SetError(activity, results);
        activity.Dispose();
    }

    /// <summary>Restores the caller's Activity.Current after a span ended (stopping sets it to the span's parent object, null for a remote parent).</summary>
    public static void Restore(Activity? previous)
    {
        if (Activity.Current != previous) Activity.Current = previous;
    }

    /// <summary>The replication wait of an acks=-1 request, a sibling after the append (same parent), or null.</summary>
    public static Activity? StartReplicate(Activity? append)
    {
        if (append is null) return null;
        var previous = Activity.Current;
        var activity = Source.StartActivity("Produce replicate", ActivityKind.Internal, append.ParentId ?? default(string));
        // Timed only: it ends on whichever thread sees the commit, and must not become the current span here.
        Restore(previous);
        activity?.SetTag("messaging.system", "kafka");
        return activity;
    }

    public static void ReplicateDone(Activity? activity, IEnumerable<PartitionProduceResult?> results)
    {
        if (activity is null) return;
        var previous = Activity.Current;
        if (activity.IsAllDataRequested) SetError(activity, results);
        activity.Dispose();
        Restore(previous);
    }

    private static void SetError(Activity activity, IEnumerable<PartitionProduceResult?> results)
    {
        var error = 0;
        foreach (var r in results)
            if (r is { ErrorCode: not 0 } failed) { error = failed.ErrorCode; break; }
        activity.SetTag("kafka.error_code", error);
        if (error != 0)
        {
            activity.SetTag("error.type", ((StreamPlatform.Protos.Kafka.Messages.ErrorCode)error).ToString());
            activity.SetStatus(ActivityStatusCode.Error);
        }
    }
}
