namespace StreamPlatform.AppHost.Kubernetes;

/// <summary>One file of the generated manifests: its name in the output folder and its YAML text.</summary>
public sealed record KubernetesManifestFile(string FileName, string Yaml);
