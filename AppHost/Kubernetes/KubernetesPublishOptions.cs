using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.AppHost.Kubernetes;

/// <summary>What `publish --kubernetes` writes: the cluster (the AppHost's model) plus where it runs in Kubernetes.</summary>
public sealed class KubernetesPublishOptions
{
    public const string DefaultNamespace = "streamplatform";
    public const string DefaultImageRegistry = "localhost:5000/streamplatform";
    public const string DefaultImageTag = "latest";
    public const string DefaultClusterDomain = "cluster.local";

    /// <summary>The collector the committed manifests send OTLP to (an OpenTelemetry Collector's conventional Service).</summary>
    public const string DefaultOtlpEndpoint = "http://otel-collector.observability.svc.cluster.local:4317";

    /// <summary>Folder the manifests are written to (created if missing).</summary>
    public string OutputDir { get; set; } = "";

    /// <summary>
    /// Sizes, broker configs, OTLP endpoint and environment name. Ports keep the AppHost's fixed
    /// layout (every pod has its own IP, so the ports need not differ, but keeping them equal to the
    /// local cluster's makes a port in a log mean the same thing everywhere). DataDir is unused:
    /// each stateful pod keeps its data in its PersistentVolumeClaim at <see cref="KubernetesHosting.DataMountPath"/>.
    /// </summary>
    public ClusterOptions Cluster { get; } = new()
    {
        DataDir = KubernetesHosting.DataMountPath,
        EnvironmentName = "Production",
        OtlpEndpoint = DefaultOtlpEndpoint,
    };

    public string Namespace { get; set; } = DefaultNamespace;

    /// <summary>Images are {ImageRegistry}/{controller|broker|gateway}:{ImageTag}.</summary>
    public string ImageRegistry { get; set; } = DefaultImageRegistry;

    public string ImageTag { get; set; } = DefaultImageTag;

    /// <summary>The cluster's DNS domain, the suffix of Service and pod names (kubelet --cluster-domain).</summary>
    public string ClusterDomain { get; set; } = DefaultClusterDomain;

    /// <summary>Size of each controller's and broker's PersistentVolumeClaim.</summary>
    public string StorageSize { get; set; } = "10Gi";

    /// <summary>StorageClass of the claims; null = the cluster's default class.</summary>
    public string? StorageClass { get; set; }
}
