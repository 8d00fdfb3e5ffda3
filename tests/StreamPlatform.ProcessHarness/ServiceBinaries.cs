using System.Reflection;

namespace StreamPlatform.AppHost.Orchestration;

/// <summary>
/// Finds each service's build output: {RepoRoot}/{Project}/bin/{Configuration}/{TargetFramework}/{Project}.dll.
/// RepoRoot, Configuration and TargetFramework come from assembly metadata written by AppHost.csproj
/// at build time, so the AppHost and the tests run what was built alongside them.
/// </summary>
public sealed class ServiceBinaries
{
    public ServiceBinaries(string repoRoot, string configuration, string targetFramework)
    {
        RepoRoot = repoRoot;
        Configuration = configuration;
        TargetFramework = targetFramework;
    }

    public string RepoRoot { get; }

    public string Configuration { get; }

    public string TargetFramework { get; }

    /// <summary>The values baked into this assembly when it was built.</summary>
    public static ServiceBinaries FromBuild()
    {
        var metadata = typeof(ServiceBinaries).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .ToDictionary(a => a.Key, a => a.Value ?? "", StringComparer.Ordinal);
        string Get(string key) => metadata.TryGetValue(key, out var value) && value.Length > 0
            ? value
            : throw new InvalidOperationException($"Assembly metadata {key} is missing; AppHost.csproj sets it at build time.");
        return new ServiceBinaries(Get("StreamPlatform.RepoRoot"), Get("StreamPlatform.Configuration"),
            Get("StreamPlatform.TargetFramework"));
    }

    public string ServiceDllPath(ServiceResource resource) =>
        Path.Combine(RepoRoot, resource.ProjectName, "bin", Configuration, TargetFramework, resource.ProjectName + ".dll");

    /// <summary>The dll path, or a clear error telling the user to build first.</summary>
    public string RequireServiceDll(ServiceResource resource)
    {
        var path = ServiceDllPath(resource);
        if (!File.Exists(path))
        {
            throw new OrchestrationException(
                $"{resource.ProjectName} is not built: {path} does not exist. Build first, e.g. " +
                $"'dotnet build AppHost -c {Configuration}' from {RepoRoot} (dotnet run --project AppHost builds it for you).");
        }
        return path;
    }

    /// <summary>
    /// The dotnet host to run the services with: DOTNET_HOST_PATH (set by the dotnet CLI for
    /// run/test), this process if it is dotnet itself, DOTNET_ROOT/dotnet, or dotnet on PATH.
    /// </summary>
    public static string FindDotnetHost()
    {
        var exe = OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet";
        var hostPath = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(hostPath) && File.Exists(hostPath))
            return hostPath;
        var processPath = Environment.ProcessPath;
        if (processPath is not null && Path.GetFileName(processPath) == exe)
            return processPath;
        var root = Environment.GetEnvironmentVariable("DOTNET_ROOT");
        if (!string.IsNullOrEmpty(root) && File.Exists(Path.Combine(root, exe)))
            return Path.Combine(root, exe);
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator))
        {
            if (dir.Length > 0 && File.Exists(Path.Combine(dir, exe)))
                return Path.Combine(dir, exe);
        }
        throw new OrchestrationException("Cannot find the dotnet host (set DOTNET_HOST_PATH or put dotnet on PATH).");
    }
}
