using System.Diagnostics.Metrics;
using StreamPlatform.Controller.Metadata;
using StreamPlatform.ServiceDefaults;

namespace StreamPlatform.Controller.Hosting;

/// <summary>The "StreamPlatform.Controller" meter.</summary>
public sealed class ControllerMetrics : IDisposable
{
    private readonly Meter _meter = Telemetry.CreateMeter("Controller");
    private readonly UpDownCounter<long> _watchers;

    public ControllerMetrics(MetadataController controller)
    {
        _meter.CreateObservableGauge("streamplatform.controller.metadata_epoch", () => controller.State.Epoch, description: "Metadata epoch of the committed state.");
        _meter.CreateObservableGauge("streamplatform.controller.brokers.live", () => controller.State.Brokers.Values.Count(b => !b.Fenced), description: "Registered, unfenced brokers.");
        _meter.CreateObservableGauge("streamplatform.controller.brokers.fenced", () => controller.State.Brokers.Values.Count(b => b.Fenced), description: "Registered, fenced brokers.");
        _meter.CreateObservableGauge("streamplatform.controller.gateways.live", () => controller.State.Gateways.Values.Count(g => !g.Fenced), description: "Registered, unfenced gateways.");
        _meter.CreateObservableGauge("streamplatform.controller.topics", () => controller.State.Topics.Count, description: "Topics.");
        _meter.CreateObservableGauge("streamplatform.controller.partitions.offline",
            () => controller.State.Topics.Values.Sum(t => t.Partitions.Count(p => p.Leader == -1)), description: "Partitions without a leader.");
        _meter.CreateObservableGauge("streamplatform.controller.partitions.under_replicated",
            () => controller.State.Topics.Values.Sum(t => t.Partitions.Count(p => p.Isr.Length < p.Replicas.Length - p.Adding.Length)),
            description: "Partitions whose ISR lacks one of their (non-adding) replicas.");
        _meter.CreateObservableGauge("streamplatform.controller.partitions.preferred_imbalance",
            () => controller.State.Topics.Values.Sum(t => t.Partitions.Count(p => p.Leader != p.Replicas[0])),
            description: "Partitions not led by their preferred (first) replica (Kafka's PreferredReplicaImbalanceCount).");
        _meter.CreateObservableGauge("streamplatform.controller.partitions.reassigning",
            () => controller.State.Topics.Values.Sum(t => t.Partitions.Count(p => p.Reassigning)), description: "Partitions with a reassignment in progress.");
        _watchers = _meter.CreateUpDownCounter<long>("streamplatform.controller.watchers", description: "Open WatchMetadata streams.");
    }

    public void WatcherStarted() => _watchers.Add(1);
    public void WatcherStopped() => _watchers.Add(-1);

    public void Dispose() => _meter.Dispose();
}
