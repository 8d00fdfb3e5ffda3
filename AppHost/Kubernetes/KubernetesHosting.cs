using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.AppHost.Kubernetes;

/// <summary>
/// Names and addresses of the cluster's services in Kubernetes, and the <see cref="HostingContext"/>
/// that fills the model's environment with them (the local AppHost uses HostingContext.Local).
/// Controllers and brokers are StatefulSets named after their kind ("controller", "broker") with
/// ordinals starting at 1, so their pods are named exactly as the model names the resources
/// (controller-1, broker-1, broker-2, ...) and are reached at {pod}.{kind}.{namespace}.svc.{domain}
/// through the headless Service of the same name. Each gateway is a Deployment with a Service named
/// after it (gateway-1, ...): the address it advertises to Kafka clients.
/// </summary>
public static class KubernetesHosting
{
    /// <summary>Where each controller and broker pod mounts its PersistentVolumeClaim.</summary>
    public const string DataMountPath = "/data";

    /// <summary>Where the Dockerfiles put the published service (the image's WORKDIR).</summary>
    public const string AppPath = "/app";

    /// <summary>Kestrel and the Kafka listener bind every interface of the pod (port-forward connects through 127.0.0.1 in the pod).</summary>
    public const string ListenHost = "0.0.0.0";

    /// <summary>The Service every gateway sits behind: the bootstrap address for Kafka clients.</summary>
    public const string BootstrapServiceName = "kafka";

    /// <summary>Downward-API variables every pod gets first, so later values can use $(POD_NAME) etc.</summary>
    public const string PodNameVariable = "POD_NAME";
    public const string PodNamespaceVariable = "POD_NAMESPACE";
    public const string PodIpVariable = "POD_IP";

    /// <summary>The pod's ordinal in its StatefulSet (a label the StatefulSet controller sets; Kubernetes 1.28+).</summary>
    public const string PodIndexLabel = "apps.kubernetes.io/pod-index";

    /// <summary>Environment values are resolved per pod by Kubernetes ($(VAR) expansion), so one template serves every replica.</summary>
    public static string PodNameReference => $"$({PodNameVariable})";

    public static string NamespaceReference => $"$({PodNamespaceVariable})";

    /// <summary>The StatefulSet (and its headless Service) of a stateful kind: "controller", "broker".</summary>
    public static string StatefulSetName(ServiceKind kind) => kind switch
    {
        ServiceKind.Controller => "controller",
        ServiceKind.Broker => "broker",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Only controllers and brokers run as StatefulSets."),
    };

    public static string ComponentName(ServiceKind kind) => kind.ToString().ToLowerInvariant();

    public static string ImageName(KubernetesPublishOptions options, ServiceKind kind) =>
        $"{options.ImageRegistry.TrimEnd('/')}/{ComponentName(kind)}";

    /// <summary>
    /// The DNS name of a resource as other pods reach it: a stateful pod's stable name through its
    /// headless Service, or a gateway's own Service. <paramref name="namespaceName"/> may be
    /// <see cref="NamespaceReference"/> so the manifests work in whatever namespace they are applied to.
    /// </summary>
    public static string DnsName(ServiceResource resource, string namespaceName, string clusterDomain) => resource.Kind switch
    {
        ServiceKind.Gateway => $"{resource.Name}.{namespaceName}.svc.{clusterDomain}",
        _ => $"{resource.Name}.{StatefulSetName(resource.Kind)}.{namespaceName}.svc.{clusterDomain}",
    };

    /// <summary>
    /// The hosting context of one pod template. <paramref name="template"/> is the resource whose
    /// environment becomes the template: a StatefulSet's replicas share it, so its own advertised
    /// host is $(POD_NAME).{kind}.$(POD_NAMESPACE).svc.{domain}, which Kubernetes resolves per pod.
    /// </summary>
    public static HostingContext ForTemplate(ServiceResource template, string clusterDomain) => new(
        ListenHost,
        target => target == template && template.Kind != ServiceKind.Gateway
            ? $"{PodNameReference}.{StatefulSetName(template.Kind)}.{NamespaceReference}.svc.{clusterDomain}"
            : DnsName(target, NamespaceReference, clusterDomain),
        _ => DataMountPath);
}
