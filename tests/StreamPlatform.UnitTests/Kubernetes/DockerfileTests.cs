using StreamPlatform.AppHost.Orchestration;

namespace StreamPlatform.UnitTests.Kubernetes;

/// <summary>
/// No Docker engine runs here, so the Dockerfiles are checked for the structure the manifests rely
/// on: an SDK build stage, an ASP.NET runtime stage, a non-root numeric user, and an entry point
/// that runs the project's own dll (the manifests' container command names the same dll).
/// </summary>
public sealed class DockerfileTests
{
    [Theory]
    [InlineData("Controller.Service")]
    [InlineData("Broker.Service")]
    [InlineData("Gateway.Service")]
    public void Dockerfile_is_multi_stage_non_root_and_runs_the_project_dll(string project)
    {
        var root = ServiceBinaries.FromBuild().RepoRoot;
        var lines = File.ReadAllLines(Path.Combine(root, project, "Dockerfile"))
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .ToList();

        var stages = lines.Where(l => l.StartsWith("FROM ", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, stages.Count);
        Assert.Matches(@"^FROM mcr\.microsoft\.com/dotnet/sdk:10\.0 AS build$", stages[0]);
        Assert.Matches(@"^FROM mcr\.microsoft\.com/dotnet/aspnet:10\.0 AS final$", stages[1]);
        Assert.Contains(lines, l => l.StartsWith($"RUN dotnet publish {project}/{project}.csproj -c Release", StringComparison.Ordinal));
        Assert.Contains("COPY --from=build /app ./", lines);

        var finalStage = lines.Skip(lines.IndexOf(stages[1])).ToList();
        var user = Assert.Single(finalStage, l => l.StartsWith("USER ", StringComparison.Ordinal));
        var uid = user["USER ".Length..].Trim();
        Assert.True(long.TryParse(uid, out var id) && id > 0, $"USER must be a non-root numeric id, got '{uid}'.");
        Assert.Equal(StreamPlatform.AppHost.Kubernetes.KubernetesManifests.AppUserId, id);
        Assert.True(finalStage.IndexOf(user) < finalStage.FindIndex(l => l.StartsWith("ENTRYPOINT", StringComparison.Ordinal)));
        Assert.Equal($"ENTRYPOINT [\"dotnet\", \"{project}.dll\"]", finalStage[^1]);
        Assert.Contains("WORKDIR /app", finalStage);

        // The dll name the entry point runs is what the project builds.
        Assert.True(File.Exists(Path.Combine(root, project, $"{project}.csproj")));
        var csproj = File.ReadAllText(Path.Combine(root, project, $"{project}.csproj"));
        var assemblyName = System.Text.RegularExpressions.Regex.Match(csproj, "<AssemblyName>([^<]+)</AssemblyName>");
        Assert.Equal(project, assemblyName.Success ? assemblyName.Groups[1].Value : project);
    }

    [Fact]
    public void Dockerignore_keeps_build_output_and_data_out_of_the_context()
    {
        var lines = File.ReadAllLines(Path.Combine(ServiceBinaries.FromBuild().RepoRoot, ".dockerignore"));
        Assert.Contains("**/bin/", lines);
        Assert.Contains("**/obj/", lines);
        Assert.Contains(".data/", lines);
    }
}
