using StreamPlatform.AppHost.Kubernetes;
using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.UnitTests.Kubernetes;

/// <summary>deploy/kubernetes is what the generator writes for the default topology, byte for byte.</summary>
public sealed class ManifestDriftTests
{
    [Fact]
    public void Committed_manifests_match_the_generator()
    {
        var directory = Path.Combine(ServiceBinaries.FromBuild().RepoRoot, "deploy", "kubernetes");
        var generated = KubernetesManifests.Generate(new KubernetesPublishOptions { OutputDir = directory });
        var regenerate = $"deploy/kubernetes is out of date with the generator; regenerate it from the repository root with `{KubernetesManifests.RegenerateCommand}` and commit the result.";
        Assert.True(
            generated.Select(f => f.FileName).Order().SequenceEqual(Directory.GetFiles(directory).Select(Path.GetFileName).Order()!),
            $"{regenerate} Files: generated {string.Join(", ", generated.Select(f => f.FileName))}; committed {string.Join(", ", Directory.GetFiles(directory).Select(Path.GetFileName))}.");
        foreach (var file in generated)
        {
            var committed = File.ReadAllText(Path.Combine(directory, file.FileName));
            Assert.True(committed == file.Yaml, $"{file.FileName}: {regenerate}");
        }
    }
}
