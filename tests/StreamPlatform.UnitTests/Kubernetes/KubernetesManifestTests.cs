using k8s;
using k8s.Models;
using StreamPlatform.AppHost.Kubernetes;
using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.UnitTests.Kubernetes;

/// <summary>
/// The generated manifests, parsed back with KubernetesClient's typed models (what kubectl's
/// schema would accept), checked for the structure the cluster depends on.
/// </summary>
public sealed class KubernetesManifestTests
{
    private static List<object> Load(KubernetesPublishOptions options) =>
        KubernetesManifests.Generate(options)
            .Where(f => f.FileName != "kustomization.yaml")
            .SelectMany(f => KubernetesYaml.LoadAllFromString(f.Yaml))
            .ToList();

    private static KubernetesPublishOptions Options(int brokers = 3, int gateways = 1)
    {
        var options = new KubernetesPublishOptions { OutputDir = "unused" };
        options.Cluster.Brokers = brokers;
        options.Cluster.Gateways = gateways;
        return options;
    }

    private static Dictionary<string, V1EnvVar> Env(V1PodTemplateSpec template) =>
        template.Spec.Containers.Single().Env.ToDictionary(e => e.Name);

    [Fact]
    public void Every_document_parses_into_the_expected_kinds_and_names()
    {
        var objects = Load(Options(brokers: 3, gateways: 2));
        var names = objects.Select(o => o switch
        {
            IKubernetesObject<V1ObjectMeta> k => $"{k.Kind}/{k.Metadata.Name}",
            _ => throw new InvalidOperationException($"Untyped document {o.GetType()}"),
        }).ToList();
        Assert.Equal(
            [
                "Namespace/streamplatform",
                "Service/controller", "StatefulSet/controller", "PodDisruptionBudget/controller",
                "Service/broker", "StatefulSet/broker", "PodDisruptionBudget/broker",
                "Service/gateway-1", "Deployment/gateway-1",
                "Service/gateway-2", "Deployment/gateway-2",
                "Service/kafka", "PodDisruptionBudget/gateway",
            ],
            names);
        Assert.All(objects.OfType<IKubernetesObject<V1ObjectMeta>>().Where(o => o.Kind != "Namespace"),
            o => Assert.Equal("streamplatform", o.Metadata.NamespaceProperty));
    }

    [Fact]
    public void Controller_and_brokers_are_statefulsets_whose_pods_have_the_model_names_and_ids_from_their_ordinal()
    {
        var objects = Load(Options(brokers: 4));
        var topology = ClusterTopology.Create(Options(brokers: 4).Cluster);
        foreach (var (name, replicas, idVariable) in new[] { ("controller", 1, "Controller__NodeId"), ("broker", 4, "Broker__BrokerId") })
        {
            var set = objects.OfType<V1StatefulSet>().Single(s => s.Metadata.Name == name);
            Assert.Equal(replicas, set.Spec.Replicas);
            Assert.Equal(1, set.Spec.Ordinals.Start);
            Assert.Equal(name, set.Spec.ServiceName);
            // Pods {name}-1..{name}-n are the model's resource names.
            var podNames = Enumerable.Range(set.Spec.Ordinals.Start!.Value, replicas).Select(i => $"{name}-{i}");
            Assert.Equal(topology.Resources.Where(r => KubernetesHosting.ComponentName(r.Kind) == name).Select(r => r.Name), podNames);
            Assert.Equal(set.Spec.Selector.MatchLabels, set.Spec.Template.Metadata.Labels.Where(l => set.Spec.Selector.MatchLabels.ContainsKey(l.Key)).ToDictionary());

            var env = Env(set.Spec.Template);
            Assert.Equal($"metadata.labels['{KubernetesHosting.PodIndexLabel}']", env[idVariable].ValueFrom.FieldRef.FieldPath);
            Assert.Equal("/data", env[$"{(name == "broker" ? "Broker" : "Controller")}__DataDir"].Value);
            if (name == "broker")
                Assert.Equal("http://controller-1.controller.$(POD_NAMESPACE).svc.cluster.local:7011", env["services__controller__grpc__0"].Value);
            else
                Assert.DoesNotContain(env.Keys, k => k.StartsWith("services__", StringComparison.Ordinal));
            // Variables used in $(...) are defined before their users (Kubernetes expands only earlier ones).
            var order = set.Spec.Template.Spec.Containers.Single().Env.Select(e => e.Name).ToList();
            Assert.True(order.IndexOf("POD_NAME") < order.IndexOf("OTEL_RESOURCE_ATTRIBUTES"));

            var claim = Assert.Single(set.Spec.VolumeClaimTemplates);
            Assert.Equal("data", claim.Metadata.Name);
            Assert.Equal(["ReadWriteOnce"], claim.Spec.AccessModes);
            Assert.Equal("10Gi", claim.Spec.Resources.Requests["storage"].ToString());
            Assert.Contains(set.Spec.Template.Spec.Containers.Single().VolumeMounts, m => m.Name == "data" && m.MountPath == "/data");

            var service = objects.OfType<V1Service>().Single(s => s.Metadata.Name == name);
            Assert.Equal("None", service.Spec.ClusterIP);
            Assert.True(service.Spec.PublishNotReadyAddresses);
            Assert.Equal(set.Spec.Selector.MatchLabels, service.Spec.Selector);
            var containerPorts = set.Spec.Template.Spec.Containers.Single().Ports.ToDictionary(p => p.Name, p => p.ContainerPort);
            Assert.All(service.Spec.Ports, p => Assert.Equal(containerPorts[p.TargetPort.Value], p.Port));
            Assert.Contains(service.Spec.Ports, p => p.Name == "grpc");

            var budget = objects.OfType<V1PodDisruptionBudget>().Single(b => b.Metadata.Name == name);
            Assert.Equal(set.Spec.Selector.MatchLabels, budget.Spec.Selector.MatchLabels);
        }

        var brokerEnv = Env(objects.OfType<V1StatefulSet>().Single(s => s.Metadata.Name == "broker").Spec.Template);
        Assert.Equal("http://$(POD_NAME).broker.$(POD_NAMESPACE).svc.cluster.local:7111", brokerEnv["Broker__AdvertisedGrpcEndpoint"].Value);
        Assert.Equal("http://0.0.0.0:7111", brokerEnv["Kestrel__Endpoints__grpc__Url"].Value);
        Assert.Equal("Http2", brokerEnv["Kestrel__Endpoints__grpc__Protocols"].Value);
    }

    [Fact]
    public void Each_gateway_advertises_its_own_service_and_the_bootstrap_service_reaches_every_gateway()
    {
        var objects = Load(Options(gateways: 3));
        var deployments = objects.OfType<V1Deployment>().ToList();
        Assert.Equal(["gateway-1", "gateway-2", "gateway-3"], deployments.Select(d => d.Metadata.Name));
        var bootstrap = objects.OfType<V1Service>().Single(s => s.Metadata.Name == "kafka");
        for (var j = 1; j <= 3; j++)
        {
            var deployment = deployments[j - 1];
            Assert.Equal(1, deployment.Spec.Replicas);
            Assert.Equal("Recreate", deployment.Spec.Strategy.Type);
            var env = Env(deployment.Spec.Template);
            Assert.Equal($"{j}", env["Gateway__NodeId"].Value);
            Assert.Equal($"gateway-{j}.$(POD_NAMESPACE).svc.cluster.local", env["Gateway__AdvertisedHost"].Value);
            Assert.Equal("0.0.0.0", env["Gateway__KafkaListenAddress"].Value);
            var kafkaPort = int.Parse(env["Gateway__KafkaPort"].Value, System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(9092 + j - 1, kafkaPort);

            // The advertised host:port is this gateway's Service, which selects only this gateway's pod.
            var service = objects.OfType<V1Service>().Single(s => s.Metadata.Name == $"gateway-{j}");
            var port = Assert.Single(service.Spec.Ports);
            Assert.Equal(kafkaPort, port.Port);
            Assert.Equal("kafka", port.TargetPort.Value);
            Assert.Equal(service.Spec.Selector, deployment.Spec.Selector.MatchLabels);
            Assert.All(service.Spec.Selector, l => Assert.Equal(l.Value, deployment.Spec.Template.Metadata.Labels[l.Key]));
            Assert.Contains(deployment.Spec.Template.Spec.Containers.Single().Ports, p => p.Name == "kafka" && p.ContainerPort == kafkaPort);
            Assert.All(bootstrap.Spec.Selector, l => Assert.Equal(l.Value, deployment.Spec.Template.Metadata.Labels[l.Key]));
            Assert.DoesNotContain(deployments.Where(d => d != deployment),
                d => service.Spec.Selector.All(l => d.Spec.Template.Metadata.Labels.TryGetValue(l.Key, out var v) && v == l.Value));
        }
        Assert.Equal("kafka", Assert.Single(bootstrap.Spec.Ports).TargetPort.Value);
    }

    [Fact]
    public void Every_pod_is_probed_secured_sized_and_sends_telemetry_to_the_collector()
    {
        var options = Options();
        options.Cluster.OtlpEndpoint = "http://collector.monitoring:4317";
        var objects = Load(options);
        var templates = objects.OfType<V1StatefulSet>().Select(s => s.Spec.Template)
            .Concat(objects.OfType<V1Deployment>().Select(d => d.Spec.Template)).ToList();
        Assert.Equal(3, templates.Count);
        foreach (var template in templates)
        {
            var container = template.Spec.Containers.Single();
            Assert.Equal("/health", container.ReadinessProbe.HttpGet.Path);
            Assert.Equal("/alive", container.LivenessProbe.HttpGet.Path);
            Assert.Equal("http", container.ReadinessProbe.HttpGet.Port.Value);
            Assert.Contains(container.Ports, p => p.Name == "http");
            Assert.True(container.Resources.Requests.ContainsKey("cpu"));
            Assert.True(container.Resources.Requests.ContainsKey("memory"));
            Assert.True(template.Spec.SecurityContext.RunAsNonRoot);
            Assert.NotEqual(0, template.Spec.SecurityContext.RunAsUser);
            Assert.False(container.SecurityContext.AllowPrivilegeEscalation);
            Assert.Equal(["dotnet", $"/app/{container.Name[0].ToString().ToUpperInvariant()}{container.Name[1..]}.Service.dll"], container.Command);
            Assert.StartsWith($"{KubernetesPublishOptions.DefaultImageRegistry}/{container.Name}:", container.Image);
            var env = Env(template);
            Assert.Equal("http://collector.monitoring:4317", env["OTEL_EXPORTER_OTLP_ENDPOINT"].Value);
            Assert.Equal(container.Name, env["OTEL_SERVICE_NAME"].Value);
            Assert.Equal("metadata.name", env["POD_NAME"].ValueFrom.FieldRef.FieldPath);
            Assert.Equal("status.podIP", env["POD_IP"].ValueFrom.FieldRef.FieldPath);
            // Nothing local leaks into the manifests: addresses are the pod's or a Service's.
            Assert.DoesNotContain(env.Values, e => e.Value?.Contains("127.0.0.1", StringComparison.Ordinal) == true);
        }
    }

    [Fact]
    public void Publish_options_reach_the_manifests_and_bad_options_are_refused_with_a_message()
    {
        var options = KubernetesPublishCommand.Parse(
            ["--kubernetes", "out", "--brokers", "5", "--namespace", "kafka-prod", "--image-registry", "ghcr.io/me/sp",
             "--image-tag", "1.2.3", "--otlp-endpoint", "none", "--broker-config", "num.partitions=6"], out var help, out var error);
        Assert.False(help);
        Assert.Null(error);
        var objects = Load(options!);
        Assert.Equal("kafka-prod", objects.OfType<V1Namespace>().Single().Metadata.Name);
        var broker = objects.OfType<V1StatefulSet>().Single(s => s.Metadata.Name == "broker");
        Assert.Equal(5, broker.Spec.Replicas);
        Assert.Equal("ghcr.io/me/sp/broker:1.2.3", broker.Spec.Template.Spec.Containers.Single().Image);
        Assert.DoesNotContain(Env(broker.Spec.Template).Keys, k => k == "OTEL_EXPORTER_OTLP_ENDPOINT");
        var controllerEnv = Env(objects.OfType<V1StatefulSet>().Single(s => s.Metadata.Name == "controller").Spec.Template);
        Assert.Equal("6", controllerEnv["Controller__BrokerConfigs__num.partitions"].Value);
        Assert.Equal("3", controllerEnv["Controller__BrokerConfigs__offsets.topic.replication.factor"].Value);

        Assert.Null(KubernetesPublishCommand.Parse(["--brokers", "2"], out _, out error));
        Assert.Contains("--kubernetes", error);
        Assert.Null(KubernetesPublishCommand.Parse(["--kubernetes", "o", "--namespace", "Bad_Name"], out _, out error));
        Assert.Contains("DNS label", error);
        Assert.Null(KubernetesPublishCommand.Parse(["--kubernetes", "o", "--brokers", "0"], out _, out error));
        Assert.Null(KubernetesPublishCommand.Parse(["--kubernetes", "o", "--storage-size", "lots"], out _, out error));
        Assert.Null(KubernetesPublishCommand.Parse(["--kubernetes", "o", "--frobnicate"], out _, out error));
        Assert.Contains("--frobnicate", error);
        KubernetesPublishCommand.Parse(["--help"], out help, out _);
        Assert.True(help);
    }
}
