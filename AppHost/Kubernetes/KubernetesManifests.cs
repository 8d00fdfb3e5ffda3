using k8s;
using k8s.Models;
using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.AppHost.Kubernetes;

/// <summary>
/// Turns the AppHost's model (<see cref="ClusterTopology"/>, <see cref="ServiceEnvironment"/>) into
/// Kubernetes objects (KubernetesClient's typed models) and YAML files:
/// namespace.yaml; controller.yaml and broker.yaml (headless Service, StatefulSet with ordinals from
/// 1 and a PersistentVolumeClaim per pod, PodDisruptionBudget); gateway-N.yaml (Service and
/// Deployment per gateway: the host:port that gateway advertises to Kafka clients); kafka.yaml
/// (the bootstrap Service over every gateway, and the gateways' PodDisruptionBudget); and
/// kustomization.yaml.
/// </summary>
public static class KubernetesManifests
{
    public const string NameLabel = "app.kubernetes.io/name";
    public const string ComponentLabel = "app.kubernetes.io/component";
    public const string PartOfLabel = "app.kubernetes.io/part-of";

    /// <summary>The model's resource name of a gateway pod (gateway-1, ...): selects one gateway's pod.</summary>
    public const string ResourceLabel = "streamplatform/resource";

    public const string AppName = "streamplatform";

    /// <summary>
    /// The .NET images' non-root "app" user (UID 1654, $APP_UID in mcr.microsoft.com/dotnet/aspnet).
    /// A number, so Kubernetes can check runAsNonRoot; fsGroup makes the claims writable for it.
    /// </summary>
    public const long AppUserId = 1654;

    public const string RegenerateCommand = "dotnet run --project AppHost -- publish --kubernetes deploy/kubernetes";

    private const string TmpVolume = "tmp";
    private const string DataVolume = "data";

    /// <summary>Generates every file. Throws <see cref="ArgumentException"/> on bad options (from the topology).</summary>
    public static IReadOnlyList<KubernetesManifestFile> Generate(KubernetesPublishOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var topology = ClusterTopology.Create(options.Cluster);
        var files = new List<KubernetesManifestFile>
        {
            File("namespace.yaml", Namespace(options)),
            File("controller.yaml", StatefulComponent(options, topology, ServiceKind.Controller)),
            File("broker.yaml", StatefulComponent(options, topology, ServiceKind.Broker)),
        };
        foreach (var gateway in topology.Gateways)
            files.Add(File($"{gateway.Name}.yaml", Gateway(options, topology, gateway)));
        files.Add(File($"{KubernetesHosting.BootstrapServiceName}.yaml", Bootstrap(options, topology)));
        files.Add(new KubernetesManifestFile("kustomization.yaml", Kustomization(options, files)));
        return files;
    }

    /// <summary>Writes the files into <paramref name="directory"/>, replacing files of the same names.</summary>
    public static IReadOnlyList<string> Write(KubernetesPublishOptions options, string directory)
    {
        var files = Generate(options);
        Directory.CreateDirectory(directory);
        var written = new List<string>();
        foreach (var file in files)
        {
            var path = Path.Combine(directory, file.FileName);
            System.IO.File.WriteAllText(path, file.Yaml);
            written.Add(path);
        }
        return written;
    }

    private static KubernetesManifestFile File(string name, IEnumerable<object> objects)
    {
        var header = $"# Generated from the AppHost's cluster model by `{RegenerateCommand}`.\n" +
                     "# Do not edit: change the model or the generator and regenerate (a test compares this file).\n";
        var documents = objects.Select(o => KubernetesYaml.Serialize(o).TrimEnd('\n') + "\n");
        return new KubernetesManifestFile(name, header + string.Join("---\n", documents));
    }

    private static List<object> Namespace(KubernetesPublishOptions options) =>
    [
        new V1Namespace
        {
            ApiVersion = "v1",
            Kind = "Namespace",
            Metadata = new V1ObjectMeta { Name = options.Namespace, Labels = new Dictionary<string, string> { [PartOfLabel] = AppName } },
        },
    ];

    private static Dictionary<string, string> Labels(ServiceKind kind, string? resource = null)
    {
        var labels = new Dictionary<string, string>
        {
            [NameLabel] = AppName,
            [ComponentLabel] = KubernetesHosting.ComponentName(kind),
        };
        if (resource is not null)
            labels[ResourceLabel] = resource;
        return labels;
    }

    private static V1ObjectMeta Meta(string name, string namespaceName, Dictionary<string, string> labels) => new()
    {
        Name = name,
        NamespaceProperty = namespaceName,
        Labels = new Dictionary<string, string>(labels) { [PartOfLabel] = AppName },
    };

    /// <summary>
    /// Controller or brokers: a headless Service (stable pod DNS names, also while a pod is not
    /// ready: peers and the controller must reach a broker that is still catching up), a
    /// StatefulSet whose pods are named like the model's resources, and a PodDisruptionBudget.
    /// </summary>
    private static List<object> StatefulComponent(KubernetesPublishOptions options, ClusterTopology topology, ServiceKind kind)
    {
        var replicas = topology.Resources.Where(r => r.Kind == kind).ToList();
        // Every replica runs the first one's template: same ports (each pod has its own IP), and
        // the per-pod values (id, advertised host, instance name) resolved by Kubernetes.
        var template = replicas[0];
        var name = KubernetesHosting.StatefulSetName(kind);
        var selector = Labels(kind);

        var service = new V1Service
        {
            ApiVersion = "v1",
            Kind = "Service",
            Metadata = Meta(name, options.Namespace, selector),
            Spec = new V1ServiceSpec
            {
                ClusterIP = "None",
                PublishNotReadyAddresses = true,
                Selector = selector,
                Ports = template.Endpoints.Select(e => new V1ServicePort
                {
                    Name = e.Name, Port = e.Port, TargetPort = e.Name, Protocol = "TCP",
                    AppProtocol = e.Http2Only ? "kubernetes.io/h2c" : "http",
                }).ToList(),
            },
        };

        var claim = new V1PersistentVolumeClaim
        {
            ApiVersion = "v1",
            Kind = "PersistentVolumeClaim",
            Metadata = new V1ObjectMeta { Name = DataVolume, Labels = selector },
            Spec = new V1PersistentVolumeClaimSpec
            {
                AccessModes = ["ReadWriteOnce"],
                StorageClassName = options.StorageClass,
                Resources = new V1VolumeResourceRequirements
                {
                    Requests = new Dictionary<string, ResourceQuantity> { ["storage"] = new(options.StorageSize) },
                },
            },
        };

        var statefulSet = new V1StatefulSet
        {
            ApiVersion = "apps/v1",
            Kind = "StatefulSet",
            Metadata = Meta(name, options.Namespace, selector),
            Spec = new V1StatefulSetSpec
            {
                ServiceName = name,
                Replicas = replicas.Count,
                // Pods controller-1, broker-1..N: the model's names, and the ids the services use.
                Ordinals = new V1StatefulSetOrdinals { Start = 1 },
                // Brokers start together: none waits for another to be ready (a broker's readiness
                // does not need its peers; ordered start would only make a restart slower).
                PodManagementPolicy = "Parallel",
                UpdateStrategy = new V1StatefulSetUpdateStrategy { Type = "RollingUpdate" },
                Selector = new V1LabelSelector { MatchLabels = selector },
                PersistentVolumeClaimRetentionPolicy = new V1StatefulSetPersistentVolumeClaimRetentionPolicy
                {
                    // Data outlives the StatefulSet and scale-downs: deleting a broker's log is a decision for a person.
                    WhenDeleted = "Retain",
                    WhenScaled = "Retain",
                },
                VolumeClaimTemplates = [claim],
                Template = PodTemplate(options, topology, template, selector, stateful: true),
            },
        };

        return [service, statefulSet, DisruptionBudget(name, options.Namespace, selector)];
    }

    /// <summary>
    /// One gateway: its own Service (the host:port it advertises, so a Kafka client told about
    /// gateway-2 reaches gateway-2) and a one-pod Deployment. Recreate, not a rolling update: two
    /// pods of one gateway at once would register the same node id with two addresses.
    /// </summary>
    private static List<object> Gateway(KubernetesPublishOptions options, ClusterTopology topology, ServiceResource gateway)
    {
        var selector = Labels(ServiceKind.Gateway, gateway.Name);
        var kafka = gateway.GetEndpoint(EndpointNames.Kafka);
        var service = new V1Service
        {
            ApiVersion = "v1",
            Kind = "Service",
            Metadata = Meta(gateway.Name, options.Namespace, selector),
            Spec = new V1ServiceSpec
            {
                Type = "ClusterIP",
                Selector = selector,
                Ports = [new V1ServicePort { Name = kafka.Name, Port = kafka.Port, TargetPort = kafka.Name, Protocol = "TCP" }],
            },
        };
        var deployment = new V1Deployment
        {
            ApiVersion = "apps/v1",
            Kind = "Deployment",
            Metadata = Meta(gateway.Name, options.Namespace, selector),
            Spec = new V1DeploymentSpec
            {
                Replicas = 1,
                Strategy = new V1DeploymentStrategy { Type = "Recreate" },
                Selector = new V1LabelSelector { MatchLabels = selector },
                Template = PodTemplate(options, topology, gateway, selector, stateful: false),
            },
        };
        return [service, deployment];
    }

    /// <summary>
    /// The bootstrap Service over every gateway (clients start here; Metadata then names each
    /// gateway's own Service), and one PodDisruptionBudget for all gateways. Its port is the first
    /// gateway's Kafka port; the named target port reaches whichever port each gateway listens on.
    /// </summary>
    private static List<object> Bootstrap(KubernetesPublishOptions options, ClusterTopology topology)
    {
        var first = topology.Gateways.First().GetEndpoint(EndpointNames.Kafka);
        var selector = Labels(ServiceKind.Gateway);
        var service = new V1Service
        {
            ApiVersion = "v1",
            Kind = "Service",
            Metadata = Meta(KubernetesHosting.BootstrapServiceName, options.Namespace, selector),
            Spec = new V1ServiceSpec
            {
                Type = "ClusterIP",
                Selector = selector,
                Ports = [new V1ServicePort { Name = first.Name, Port = first.Port, TargetPort = first.Name, Protocol = "TCP" }],
            },
        };
        return [service, DisruptionBudget(KubernetesHosting.ComponentName(ServiceKind.Gateway), options.Namespace, selector)];
    }

    private static V1PodDisruptionBudget DisruptionBudget(string name, string namespaceName, Dictionary<string, string> selector) => new()
    {
        ApiVersion = "policy/v1",
        Kind = "PodDisruptionBudget",
        Metadata = Meta(name, namespaceName, selector),
        Spec = new V1PodDisruptionBudgetSpec
        {
            // One voluntary disruption (node drain) at a time: with replication factor 3 and
            // min.insync.replicas 2 a partition keeps accepting acks=all writes.
            MaxUnavailable = 1,
            Selector = new V1LabelSelector { MatchLabels = selector },
        },
    };

    private static V1PodTemplateSpec PodTemplate(KubernetesPublishOptions options, ClusterTopology topology,
        ServiceResource template, Dictionary<string, string> labels, bool stateful)
    {
        var mounts = new List<V1VolumeMount> { new() { Name = TmpVolume, MountPath = "/tmp" } };
        if (stateful)
            mounts.Add(new V1VolumeMount { Name = DataVolume, MountPath = KubernetesHosting.DataMountPath });
        var container = new V1Container
        {
            Name = KubernetesHosting.ComponentName(template.Kind),
            Image = $"{KubernetesHosting.ImageName(options, template.Kind)}:{options.ImageTag}",
            ImagePullPolicy = "IfNotPresent",
            // The same as the image's ENTRYPOINT, stated here so the manifests alone say what runs.
            Command = ["dotnet", $"{KubernetesHosting.AppPath}/{template.ProjectName}.dll"],
            WorkingDir = KubernetesHosting.AppPath,
            Ports = template.Endpoints.Select(e => new V1ContainerPort { Name = e.Name, ContainerPort = e.Port, Protocol = "TCP" }).ToList(),
            Env = Environment(options, topology, template, stateful),
            Resources = Resources(template.Kind),
            // Ready (in the Services, counted by the disruption budget) once every health check passes.
            ReadinessProbe = HttpProbe("/health", periodSeconds: 5, failureThreshold: 3),
            // Restarted when the process stops answering at all.
            LivenessProbe = HttpProbe("/alive", periodSeconds: 10, failureThreshold: 6),
            // A broker reloading a large log may take a while before it serves HTTP: liveness starts after this.
            StartupProbe = HttpProbe("/alive", periodSeconds: 2, failureThreshold: 150),
            SecurityContext = new V1SecurityContext
            {
                AllowPrivilegeEscalation = false,
                ReadOnlyRootFilesystem = true,
                RunAsNonRoot = true,
                Capabilities = new V1Capabilities { Drop = ["ALL"] },
            },
            VolumeMounts = mounts,
        };
        return new V1PodTemplateSpec
        {
            Metadata = new V1ObjectMeta { Labels = new Dictionary<string, string>(labels) { [PartOfLabel] = AppName } },
            Spec = new V1PodSpec
            {
                // No {SERVICE}_PORT variables: a Service named "kafka" would otherwise inject KAFKA_PORT etc.
                EnableServiceLinks = false,
                // The services stop cleanly on SIGTERM within a few seconds (logs flushed, gRPC streams closed).
                TerminationGracePeriodSeconds = 30,
                SecurityContext = new V1PodSecurityContext
                {
                    RunAsNonRoot = true,
                    RunAsUser = AppUserId,
                    RunAsGroup = AppUserId,
                    FsGroup = AppUserId,
                    SeccompProfile = new V1SeccompProfile { Type = "RuntimeDefault" },
                },
                Containers = [container],
                // The root filesystem is read-only; .NET and ASP.NET write temporary files here.
                Volumes = [new V1Volume { Name = TmpVolume, EmptyDir = new V1EmptyDirVolumeSource() }],
            },
        };
    }

    private static V1Probe HttpProbe(string path, int periodSeconds, int failureThreshold) => new()
    {
        HttpGet = new V1HTTPGetAction { Path = path, Port = EndpointNames.Http },
        PeriodSeconds = periodSeconds,
        TimeoutSeconds = 2,
        FailureThreshold = failureThreshold,
    };

    /// <summary>Requests size the scheduler's placement; memory is also limited so one runaway pod cannot starve a node.</summary>
    private static V1ResourceRequirements Resources(ServiceKind kind)
    {
        var (cpu, memory, memoryLimit) = kind switch
        {
            ServiceKind.Controller => ("250m", "256Mi", "1Gi"),
            ServiceKind.Broker => ("1", "1Gi", "4Gi"),
            ServiceKind.Gateway => ("500m", "512Mi", "2Gi"),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        return new V1ResourceRequirements
        {
            Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new(cpu), ["memory"] = new(memory) },
            Limits = new Dictionary<string, ResourceQuantity> { ["memory"] = new(memoryLimit) },
        };
    }

    /// <summary>
    /// The model's environment for <paramref name="template"/> (ServiceEnvironment, the same code
    /// the AppHost runs), after three downward-API variables it may refer to. For a StatefulSet the
    /// node id comes from the pod's ordinal label, so replica i is controller-i / broker-i.
    /// </summary>
    private static List<V1EnvVar> Environment(KubernetesPublishOptions options, ClusterTopology topology,
        ServiceResource template, bool stateful)
    {
        var env = new List<V1EnvVar>
        {
            FieldRef(KubernetesHosting.PodNameVariable, "metadata.name"),
            FieldRef(KubernetesHosting.PodNamespaceVariable, "metadata.namespace"),
            FieldRef(KubernetesHosting.PodIpVariable, "status.podIP"),
        };
        var hosting = KubernetesHosting.ForTemplate(template, options.ClusterDomain);
        foreach (var (name, value) in ServiceEnvironment.Build(topology, template, hosting))
        {
            if (stateful && name is "Controller__NodeId" or "Broker__BrokerId")
            {
                env.Add(FieldRef(name, $"metadata.labels['{KubernetesHosting.PodIndexLabel}']"));
                continue;
            }
            if (name == "OTEL_RESOURCE_ATTRIBUTES")
            {
                // The model names the instance after the resource; a StatefulSet's pods share one template.
                var instance = stateful ? KubernetesHosting.PodNameReference : template.Name;
                env.Add(new V1EnvVar
                {
                    Name = name,
                    Value = $"service.instance.id={instance},k8s.pod.name={KubernetesHosting.PodNameReference},k8s.namespace.name={KubernetesHosting.NamespaceReference}",
                });
                continue;
            }
            env.Add(new V1EnvVar { Name = name, Value = value });
        }
        return env;
    }

    private static V1EnvVar FieldRef(string name, string fieldPath) =>
        new() { Name = name, ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = fieldPath } } };

    private static string Kustomization(KubernetesPublishOptions options, IEnumerable<KubernetesManifestFile> files)
    {
        var lines = new List<string>
        {
            $"# Generated from the AppHost's cluster model by `{RegenerateCommand}`.",
            "# Apply with: kubectl apply -k <this folder>. Change the images with `kustomize edit set image`.",
            "apiVersion: kustomize.config.k8s.io/v1beta1",
            "kind: Kustomization",
            $"namespace: {options.Namespace}",
            "resources:",
        };
        lines.AddRange(files.Select(f => $"- {f.FileName}"));
        lines.Add("images:");
        foreach (var kind in new[] { ServiceKind.Controller, ServiceKind.Broker, ServiceKind.Gateway })
        {
            lines.Add($"- name: {KubernetesHosting.ImageName(options, kind)}");
            lines.Add($"  newTag: {options.ImageTag}");
        }
        return string.Join("\n", lines) + "\n";
    }
}
