using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using k8s;
using k8s.Models;
using StreamPlatform.AppHost.Kubernetes;
using StreamPlatform.AppHost.Orchestration;
using Xunit.Abstractions;

namespace StreamPlatform.IntegrationTests.Cluster;

/// <summary>
/// Starts the cluster from what the generated Kubernetes manifests say, without Kubernetes: every
/// pod (StatefulSet replica i, Deployment) runs its container's command with its container's
/// environment and ports. Stand-ins, and only these: each pod gets its own loopback address
/// 127.x.y.z as its pod IP and network namespace (Linux routes all of 127/8 to lo), so 0.0.0.0 in a
/// listen address becomes that address; cluster DNS is replaced by substituting each Service's and
/// stateful pod's DNS name in the environment with the address of the pod behind it (a ClusterIP
/// Service stands for its only pod: each gateway Service selects one pod); the downward API values
/// (pod name, namespace, IP, pod-index label) are filled in as the kubelet would, $(VAR) expanded
/// the same way; /app in the command is the service's build output and the /data volume claim a
/// temp folder. A Kafka client then produces and consumes through the bootstrap Service's address.
/// </summary>
public sealed partial class KubernetesManifestRunTests(ITestOutputHelper output)
{
    private const int RecordCount = 300;
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(90);

    private sealed record Pod(string Name, string Address, V1Container Container, IReadOnlyDictionary<string, string> Labels,
        IReadOnlyList<string> ClaimMounts, string? DnsName);

    [Fact]
    public async Task ClusterStartedFromTheManifestsServesProduceAndConsumeThroughTheBootstrapService()
    {
        var options = new KubernetesPublishOptions { OutputDir = "unused" };
        options.Cluster.Brokers = 3;
        options.Cluster.Gateways = 2;
        // No collector runs here; the telemetry variables are checked by the unit tests.
        options.Cluster.OtlpEndpoint = null;
        var objects = KubernetesManifests.Generate(options)
            .Where(f => f.FileName != "kustomization.yaml")
            .SelectMany(f => KubernetesYaml.LoadAllFromString(f.Yaml))
            .ToList();
        var ns = objects.OfType<V1Namespace>().Single().Metadata.Name;
        var suffix = $".{ns}.svc.{options.ClusterDomain}";

        // A random 127.x.y.0/24 block, so parallel runs and other tests' 127.0.0.1 listeners do not collide.
        var block = $"127.{Random.Shared.Next(100, 250)}.{Random.Shared.Next(1, 255)}";
        var pods = new List<Pod>();
        foreach (var set in objects.OfType<V1StatefulSet>())
        {
            var claims = set.Spec.VolumeClaimTemplates.Select(c => c.Metadata.Name).ToHashSet();
            for (var ordinal = set.Spec.Ordinals.Start!.Value; ordinal < set.Spec.Ordinals.Start + set.Spec.Replicas; ordinal++)
            {
                var name = $"{set.Metadata.Name}-{ordinal}";
                var labels = new Dictionary<string, string>(set.Spec.Template.Metadata.Labels)
                {
                    [KubernetesHosting.PodIndexLabel] = ordinal.ToString(CultureInfo.InvariantCulture),
                };
                var container = set.Spec.Template.Spec.Containers.Single();
                pods.Add(new Pod(name, $"{block}.{pods.Count + 1}", container, labels,
                    container.VolumeMounts.Where(m => claims.Contains(m.Name)).Select(m => m.MountPath).ToList(),
                    $"{name}.{set.Spec.ServiceName}{suffix}"));
            }
        }
        foreach (var deployment in objects.OfType<V1Deployment>())
        {
            Assert.Equal(1, deployment.Spec.Replicas);
            pods.Add(new Pod($"{deployment.Metadata.Name}-0", $"{block}.{pods.Count + 1}", deployment.Spec.Template.Spec.Containers.Single(),
                new Dictionary<string, string>(deployment.Spec.Template.Metadata.Labels), [], null));
        }

        // Cluster DNS: stateful pods by their stable names, ClusterIP Services by the pod they select.
        var dns = pods.Where(p => p.DnsName is not null).ToDictionary(p => p.DnsName!, p => p.Address);
        var serviceAddress = new Dictionary<string, (string Address, int Port)>();
        foreach (var service in objects.OfType<V1Service>().Where(s => s.Spec.ClusterIP != "None"))
        {
            var selected = pods.Where(p => service.Spec.Selector.All(l => p.Labels.TryGetValue(l.Key, out var v) && v == l.Value)).ToList();
            Assert.NotEmpty(selected);
            var target = selected[0];
            // The stand-in has no port translation: the Service port must be the port the pod listens on.
            var port = service.Spec.Ports.Single();
            Assert.Equal(port.Port, target.Container.Ports.Single(p => p.Name == port.TargetPort.Value).ContainerPort);
            dns[$"{service.Metadata.Name}{suffix}"] = target.Address;
            serviceAddress[service.Metadata.Name] = (target.Address, port.Port);
        }

        var root = Path.Combine(Path.GetTempPath(), "streamplatform-tests", "k8s-" + Guid.NewGuid().ToString("N"));
        var binaries = ServiceBinaries.FromBuild();
        var processes = new List<(Pod Pod, Process Process, ConcurrentQueue<string> Log)>();
        try
        {
            foreach (var pod in pods)
                processes.Add(await StartPodAsync(pod, ns, dns, root, binaries));

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
            foreach (var (pod, process, log) in processes)
                await WaitReadyAsync(http, pod, process, log);

            var (bootstrapHost, bootstrapPort) = serviceAddress[KubernetesHosting.BootstrapServiceName];
            var bootstrap = $"{bootstrapHost}:{bootstrapPort}";
            using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build())
            {
                // Kafka's Metadata lists the gateways as brokers, each at the address it advertises:
                // its own Service's DNS name, which resolves to that gateway's pod.
                var metadata = admin.GetMetadata(TimeSpan.FromSeconds(20));
                var expected = pods.Where(p => p.Container.Name == "gateway")
                    .Select(p => $"{p.Address}:{p.Container.Ports.Single(x => x.Name == "kafka").ContainerPort}").Order();
                Assert.Equal(expected, metadata.Brokers.Select(b => $"{b.Host}:{b.Port}").Order());
                await admin.CreateTopicsAsync([new TopicSpecification { Name = "k8s-manifests", NumPartitions = 3, ReplicationFactor = 3 }]);
            }

            using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = bootstrap, Acks = Acks.All }).Build())
            {
                for (var i = 0; i < RecordCount; i++)
                    producer.Produce("k8s-manifests", new Message<string, string> { Key = $"k{i}", Value = $"v{i}" });
                Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(60)));
            }

            var seen = new HashSet<string>();
            using (var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
                   {
                       BootstrapServers = bootstrap,
                       GroupId = "k8s-manifests-" + Guid.NewGuid().ToString("N"),
                       AutoOffsetReset = AutoOffsetReset.Earliest,
                   }).Build())
            {
                consumer.Subscribe("k8s-manifests");
                var deadline = DateTime.UtcNow.AddSeconds(60);
                while (seen.Count < RecordCount && DateTime.UtcNow < deadline)
                {
                    var result = consumer.Consume(TimeSpan.FromSeconds(1));
                    if (result?.Message is { } message)
                    {
                        Assert.Equal("v" + message.Key[1..], message.Value);
                        seen.Add(message.Key);
                    }
                }
                consumer.Close();
            }
            Assert.Equal(RecordCount, seen.Count);
        }
        catch
        {
            foreach (var (pod, _, log) in processes)
                output.WriteLine($"--- {pod.Name} ({pod.Address}) last output:\n{string.Join("\n", log.TakeLast(40))}");
            throw;
        }
        finally
        {
            foreach (var (_, process, _) in processes)
                ProcessControl.KillNow(process);
            foreach (var (_, process, _) in processes)
            {
                using var exitWait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await process.WaitForExitAsync(exitWait.Token);
                process.Dispose();
            }
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>Starts one pod's container as the kubelet would, with the stand-ins the class describes.</summary>
    private static async Task<(Pod, Process, ConcurrentQueue<string>)> StartPodAsync(Pod pod, string ns,
        IReadOnlyDictionary<string, string> dns, string root, ServiceBinaries binaries)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var variable in pod.Container.Env)
        {
            string value;
            if (variable.ValueFrom?.FieldRef?.FieldPath is { } field)
            {
                value = field switch
                {
                    "metadata.name" => pod.Name,
                    "metadata.namespace" => ns,
                    "status.podIP" => pod.Address,
                    _ when LabelField().Match(field) is { Success: true } m => pod.Labels[m.Groups[1].Value],
                    _ => throw new InvalidOperationException($"{pod.Name}: downward API field {field} has no stand-in in this test."),
                };
            }
            else
            {
                // $(VAR) of an earlier variable, as Kubernetes expands it.
                value = VariableReference().Replace(variable.Value ?? "", m => env.TryGetValue(m.Groups[1].Value, out var v) ? v : m.Value);
            }
            // Cluster DNS stand-in: longest names first, so a pod name is not cut by its Service's name.
            foreach (var (name, address) in dns.OrderByDescending(d => d.Key.Length))
                value = value.Replace(name, address, StringComparison.Ordinal);
            // The pod's own network namespace: "every interface" is its address.
            value = value.Replace("0.0.0.0", pod.Address, StringComparison.Ordinal);
            foreach (var mount in pod.ClaimMounts)
            {
                if (value == mount || value.StartsWith(mount + "/", StringComparison.Ordinal))
                    value = Path.Combine(root, pod.Name) + value[mount.Length..];
            }
            env[variable.Name] = value;
        }
        Assert.DoesNotContain(env.Values, v => v.Contains(".svc.", StringComparison.Ordinal) || v.Contains("$(", StringComparison.Ordinal));
        Directory.CreateDirectory(Path.Combine(root, pod.Name));

        // The command is ["dotnet", "/app/<Project>.dll"]; /app is that project's build output here.
        var command = pod.Container.Command;
        Assert.Equal("dotnet", command[0]);
        var appPrefix = pod.Container.WorkingDir + "/";
        Assert.StartsWith(appPrefix, command[1]);
        var project = Path.GetFileNameWithoutExtension(command[1]);
        var dll = Path.Combine(binaries.RepoRoot, project, "bin", binaries.Configuration, binaries.TargetFramework, project + ".dll");
        Assert.True(File.Exists(dll), $"{dll} is not built.");

        var info = new ProcessStartInfo(ServiceBinaries.FindDotnetHost())
        {
            WorkingDirectory = Path.GetDirectoryName(dll)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(dll);
        foreach (var arg in command.Skip(2).Concat(pod.Container.Args ?? []))
            info.ArgumentList.Add(arg);
        // The container starts with only its own environment; keep what the host needs to run dotnet.
        foreach (var inherited in info.Environment.Keys.ToList())
        {
            if (inherited.StartsWith("OTEL_", StringComparison.Ordinal) || inherited.StartsWith("ASPNETCORE_", StringComparison.Ordinal)
                || inherited.StartsWith("DOTNET_", StringComparison.Ordinal) && inherited != "DOTNET_ROOT" || inherited.StartsWith("services__", StringComparison.Ordinal))
                info.Environment.Remove(inherited);
        }
        foreach (var (name, value) in env)
            info.Environment[name] = value;

        var log = new ConcurrentQueue<string>();
        void Append(string? line)
        {
            if (line is null)
                return;
            log.Enqueue(line);
            // A named limit on what is kept per pod: the last lines explain a failure.
            while (log.Count > LogLinesMax && log.TryDequeue(out _))
            {
            }
        }
        var process = await ProcessControl.StartAsync(info);
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return (pod, process, log);
    }

    private const int LogLinesMax = 200;

    /// <summary>The container's readiness probe, polled until it passes (the pod is Ready).</summary>
    private async Task WaitReadyAsync(HttpClient http, Pod pod, Process process, ConcurrentQueue<string> log)
    {
        var probe = pod.Container.ReadinessProbe.HttpGet;
        var port = pod.Container.Ports.Single(p => p.Name == probe.Port.Value).ContainerPort;
        var url = $"http://{pod.Address}:{port}{probe.Path}";
        var deadline = DateTime.UtcNow + ReadyTimeout;
        while (true)
        {
            if (process.HasExited)
                throw new InvalidOperationException($"{pod.Name} exited with {process.ExitCode} before it was ready.");
            try
            {
                using var response = await http.GetAsync(url);
                if (response.IsSuccessStatusCode)
                {
                    output.WriteLine($"{pod.Name} ready at {pod.Address}");
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet.
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{pod.Name}: {url} did not answer 2xx within {ReadyTimeout.TotalSeconds} s. Last output:\n{string.Join("\n", log.TakeLast(20))}");
            await Task.Delay(200);
        }
    }

    [GeneratedRegex(@"^metadata\.labels\['([^']+)'\]$")]
    private static partial Regex LabelField();

    [GeneratedRegex(@"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")]
    private static partial Regex VariableReference();
}
